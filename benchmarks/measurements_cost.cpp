// What the measurements cost beside the model's own forward, and how much memory they take.
//
//   measurements_cost time MODEL N [N ...]       for each N: the forward (Model::run) and every measurement of one
//                                                text, medians, and their ratio to the forward
//   measurements_cost memory MODEL N WHAT        the peak resident memory (VmHWM) after the run, then after one
//                                                measurement WHAT (ap, ap_tokens, subset, ape, stats, links), in a
//                                                fresh process each: an N × N matrix would show as N²·4 bytes
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "attnprox/engine.hpp"

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double time_ms(const std::function<void()>& f) {
  const auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

/// Peak resident set size so far, in MiB.
double peak_mib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return -1;
}

std::vector<int64_t> random_ids(int64_t n, int64_t vocab) {
  at::manual_seed(0);
  const at::Tensor t = at::randint(0, vocab, {n}, at::kLong);
  return {t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + n};
}

std::map<std::string, std::function<void(const attnprox::Result&)>> measurements() {
  return {
      {"ap", [](const attnprox::Result& r) { (void)r.ap(); }},
      {"ap_tokens", [](const attnprox::Result& r) { (void)r.ap_tokens(); }},
      {"subset",
       [](const attnprox::Result& r) {
         (void)r.subset_proximity({0, r.num_tokens() / 2, r.num_tokens() - 1});
       }},
      {"ape", [](const attnprox::Result& r) { (void)r.ape(); }},
      {"stats", [](const attnprox::Result& r) { (void)r.attention_stats(); }},
      {"links", [](const attnprox::Result& r) { (void)r.linking_heads(0, r.num_tokens() - 1); }},
  };
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s time MODEL N [N ...] | memory MODEL N WHAT\n", argv[0]);
    return 2;
  }
  const std::string mode = argv[1];
  attnprox::Model model = attnprox::Model::load(argv[2]);
  const int64_t vocab = model.manifest().vocab_size;
  if (mode == "memory") {
    const int64_t n = std::stoll(argv[3]);
    const std::string what = argv[4];
    attnprox::Result r = model.run(random_ids(n, vocab));
    const double before = peak_mib();
    measurements().at(what)(r);
    const double after = peak_mib();
    std::printf(
        "memory N=%lld %-9s peak after run %8.1f MiB, after measurement %8.1f MiB, growth %7.1f MiB "
        "(an N x N float32 matrix: %.1f MiB)\n",
        static_cast<long long>(n), what.c_str(), before, after, after - before,
        static_cast<double>(n) * n * 4 / 1048576.0);
    return 0;
  }
  std::printf("model %s: %s, %d layers, H=%d, d=%d; libtorch %s, %d thread(s)\n", argv[2],
              model.manifest().family.c_str(), model.manifest().num_layers, model.manifest().num_heads,
              model.manifest().head_dim, attnprox::torch_version().c_str(), at::get_num_threads());
  for (int k = 3; k < argc; ++k) {
    const int64_t n = std::stoll(argv[k]);
    const std::vector<int64_t> ids = random_ids(n, vocab);
    const int repeats = n <= 1024 ? 7 : n <= 4096 ? 3 : 1;
    (void)model.run(ids);  // warm-up
    std::vector<double> forward;
    for (int r = 0; r < repeats; ++r) forward.push_back(time_ms([&] { (void)model.run(ids); }));
    attnprox::Result result = model.run(ids);
    double total = 0;
    std::printf("N=%lld  forward (Model::run) %.1f ms\n", static_cast<long long>(n), median(forward));
    for (const auto& [name, f] : measurements()) {
      f(result);  // warm-up
      std::vector<double> t;
      for (int r = 0; r < repeats; ++r) t.push_back(time_ms([&] { f(result); }));
      total += median(t);
      std::printf("  %-10s %9.2f ms  (%5.2f%% of the forward)\n", name.c_str(), median(t),
                  100 * median(t) / median(forward));
    }
    std::printf("  all        %9.2f ms  (%5.2f%% of the forward)%s\n", total, 100 * total / median(forward),
                n == 512 ? (total <= 0.05 * median(forward) ? "  target <= 5% at N=512: met"
                                                            : "  target <= 5% at N=512: NOT met")
                         : "");
  }
  return 0;
}
