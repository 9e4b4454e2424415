// The C ABI: measurements on arrays (the section "measurements on arrays" of include/attnprox/attnprox.h).
#include "internal.hpp"

using namespace attnprox::capi;

namespace {
/// The statistics of caller weights [n, keys] with the visibility the arguments give.
attnprox::metrics::AttentionStats weight_stats(const double* weights, int64_t n, int64_t keys, int32_t causal,
                                               int64_t sliding_window) {
  attnprox::metrics::Visibility visibility;
  visibility.causal = causal != 0;
  if (sliding_window > 0) visibility.sliding_window = sliding_window;
  return attnprox::metrics::attention_stats(Eigen::MatrixXd(matrix(weights, n, keys)), visibility);
}
}  // namespace

extern "C" {

apx_status apx_metrics_proximity(const apx_queries_keys* qk, double* out, size_t capacity, size_t* needed) {
  return call([&] {
    with_queries_keys(qk, [&](const auto& v) {
      const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> a = attnprox::metrics::proximity(v);
      deliver(a.data(), static_cast<size_t>(a.size()), out, capacity, needed);
    });
  });
}

apx_status apx_metrics_ap(const apx_queries_keys* qk, double* ap) {
  return call([&] {
    need(ap, "ap");
    with_queries_keys(qk, [&](const auto& v) { *ap = attnprox::metrics::ap(v); });
  });
}

apx_status apx_metrics_ap_tokens(const apx_queries_keys* qk, double* out, size_t capacity, size_t* needed) {
  return call([&] {
    with_queries_keys(qk, [&](const auto& v) {
      const Eigen::VectorXd values = attnprox::metrics::ap_tokens(v);
      deliver(values.data(), static_cast<size_t>(values.size()), out, capacity, needed);
    });
  });
}

apx_status apx_metrics_subset_proximity(const apx_queries_keys* qk, const int64_t* subset, size_t count, double* out,
                                        size_t capacity, size_t* needed) {
  return call([&] {
    const std::vector<int64_t> s = elements(subset, count, "subset");
    with_queries_keys(qk, [&](const auto& v) {
      const Eigen::VectorXd values = attnprox::metrics::subset_proximity(v, s);
      deliver(values.data(), static_cast<size_t>(values.size()), out, capacity, needed);
    });
  });
}

apx_status apx_metrics_ape(const apx_queries_keys* qk, apx_ape_policy policy, apx_ape_report* report, double* tokens,
                           size_t capacity, size_t* needed) {
  return call([&] {
    check_report(report, "report");
    const auto p = policy_of(policy);
    with_queries_keys(qk, [&](const auto& v) {
      const attnprox::metrics::Ape a = attnprox::metrics::ape(v, p);
      deliver(a.tokens.data(), static_cast<size_t>(a.tokens.size()), tokens, capacity, needed);
      fill_report(report, a.value, a.normalized, a.undefined_rows, p);
    });
  });
}

apx_status apx_metrics_ap_tokens_of(const double* a, int64_t n, double* out, size_t capacity, size_t* needed) {
  return call([&] {
    const Eigen::MatrixXd m = matrix(a, n, n);
    const Eigen::VectorXd values = attnprox::metrics::ap_tokens(m);
    deliver(values.data(), static_cast<size_t>(values.size()), out, capacity, needed);
  });
}

apx_status apx_metrics_ape_of(const double* a, int64_t n, apx_ape_policy policy, apx_ape_report* report, double* tokens,
                              size_t capacity, size_t* needed) {
  return call([&] {
    check_report(report, "report");
    const auto p = policy_of(policy);
    const attnprox::metrics::Ape result = attnprox::metrics::ape(Eigen::MatrixXd(matrix(a, n, n)), p);
    deliver(result.tokens.data(), static_cast<size_t>(result.tokens.size()), tokens, capacity, needed);
    fill_report(report, result.value, result.normalized, result.undefined_rows, p);
  });
}

apx_status apx_metrics_attention_stats(const double* weights, int64_t n, int64_t keys, int32_t causal,
                                       int64_t sliding_window, apx_attention_stats* stats, double* entropy,
                                       double* normalized_entropy, size_t capacity) {
  return call([&] {
    check_report(stats, "stats");
    const attnprox::metrics::AttentionStats s = weight_stats(weights, n, keys, causal, sliding_window);
    deliver(s.entropy.data(), static_cast<size_t>(s.entropy.size()), entropy, capacity, nullptr);
    deliver(s.normalized_entropy.data(), static_cast<size_t>(s.normalized_entropy.size()), normalized_entropy, capacity,
            nullptr);
    report_out(stats_report(s), stats, "stats");
  });
}

apx_status apx_metrics_attention_summary(const double* weights, int64_t n, int64_t keys, int32_t causal,
                                         int64_t sliding_window, apx_attention_stats* stats) {
  return call([&] {
    check_report(stats, "stats");
    report_out(stats_report(weight_stats(weights, n, keys, causal, sliding_window)), stats, "stats");
  });
}

apx_status apx_metrics_attention_entropy(const double* weights, int64_t n, int64_t keys, int32_t causal,
                                         int64_t sliding_window, int32_t normalized, double* out, size_t capacity,
                                         size_t* needed) {
  return call([&] {
    const attnprox::metrics::AttentionStats s = weight_stats(weights, n, keys, causal, sliding_window);
    const Eigen::VectorXd& values = normalized ? s.normalized_entropy : s.entropy;
    deliver(values.data(), static_cast<size_t>(values.size()), out, capacity, needed);
  });
}

apx_status apx_metrics_attention_maxima(const double* weights, int64_t n, int64_t keys, int32_t causal,
                                        int64_t sliding_window, double* max_weights, int64_t* argmax_keys,
                                        size_t capacity, size_t* needed) {
  return call([&] {
    if (max_weights || argmax_keys) {
      need(max_weights, "max_weights");
      need(argmax_keys, "argmax_keys");
    }
    const attnprox::metrics::AttentionStats s = weight_stats(weights, n, keys, causal, sliding_window);
    deliver(s.max_weights.data(), static_cast<size_t>(s.max_weights.size()), max_weights, capacity, needed);
    deliver(s.argmax_keys.data(), static_cast<size_t>(s.argmax_keys.size()), argmax_keys, capacity, needed);
  });
}

}  // extern "C"
