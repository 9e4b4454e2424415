// Proximity matrix and Attention Proximity (docs/measurements.md §3-§5) against brute force over the definition, on
// queries and keys from a real run (GQA and MHA models).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "attnprox/engine.hpp"
#include "test_support.hpp"

namespace attnprox {
namespace {

using testing::expect_error;
using testing::model_path;

/// A[i][j] by the definition: A_h = Q_h K_{g(h)}ᵀ / sqrt(d), A_raw = mean_h, A = (A_raw + A_rawᵀ)/2, in double.
std::vector<std::vector<double>> brute_force_proximity(const Result& r, int layer) {
  const at::Tensor q = r.queries(layer).to(at::kDouble).contiguous(), k = r.keys(layer).to(at::kDouble).contiguous();
  const int64_t heads = q.size(0), kv_heads = k.size(0), n = q.size(1), d = q.size(2);
  auto qa = q.accessor<double, 3>();
  auto ka = k.accessor<double, 3>();
  std::vector<std::vector<double>> raw(n, std::vector<double>(n, 0.0)), a = raw;
  for (int64_t h = 0; h < heads; ++h) {
    const int64_t g = h / (heads / kv_heads);
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double dot = 0;
        for (int64_t e = 0; e < d; ++e) dot += qa[h][i][e] * ka[g][j][e];
        raw[i][j] += dot / std::sqrt(static_cast<double>(d)) / heads;
      }
    }
  }
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) a[i][j] = (raw[i][j] + raw[j][i]) / 2;
  return a;
}

TEST(Proximity, MatrixAndApMatchTheDefinition) {
  for (const char* name : {"llama.apx", "qwen3.apx", "bert.apx", "gpt2.apx"}) {
    SCOPED_TRACE(name);
    Model model = Model::load(model_path(name));
    Result r = model.run({11, 3, 29, 3, 50, 7, 7, 81, 2});
    for (int layer : model.manifest().captured_layers()) {
      const auto want = brute_force_proximity(r, layer);
      const int64_t n = r.num_tokens();
      at::Tensor a = r.proximity(layer).to(at::kDouble);
      at::Tensor ap_tokens = r.ap_tokens(layer);
      EXPECT_EQ(ap_tokens.scalar_type(), at::kDouble);
      double ap = 0;
      for (int64_t i = 0; i < n; ++i) {
        double off_diagonal = 0;
        for (int64_t j = 0; j < n; ++j) {
          EXPECT_NEAR(a[i][j].item<double>(), want[i][j], 1e-4 * (1 + std::abs(want[i][j])));
          if (j != i) off_diagonal += want[i][j];
        }
        const double ap_i = off_diagonal / (n - 1);
        EXPECT_NEAR(ap_tokens[i].item<double>(), ap_i, 1e-9 * (1 + std::abs(ap_i)));
        ap += ap_i / n;
      }
      EXPECT_NEAR(r.ap(layer), ap, 1e-9 * (1 + std::abs(ap)));
    }
  }
}

TEST(Proximity, IsSymmetric) {
  Result r = Model::load(model_path("llama.apx")).run({4, 8, 15, 16, 23, 42});
  at::Tensor a = r.proximity();
  EXPECT_TRUE(at::equal(a, a.t()));
}

TEST(Proximity, TwoTokensAndOneToken) {
  Model model = Model::load(model_path("gpt2.apx"));
  Result two = model.run({5, 9});
  // N = 2: each token's AP is its single off-diagonal entry, the same for both.
  at::Tensor a = two.proximity();
  at::Tensor tokens = two.ap_tokens();
  EXPECT_NEAR(tokens[0].item<double>(), a[0][1].item<double>(), 1e-6);
  EXPECT_NEAR(tokens[1].item<double>(), a[0][1].item<double>(), 1e-6);
  EXPECT_NEAR(two.ap(), a[0][1].item<double>(), 1e-6);
  Result one = model.run(std::vector<int64_t>{5});
  EXPECT_EQ(one.proximity().sizes(), at::IntArrayRef({1, 1}));
  expect_error(ErrorCode::kInvalidArgument, "needs at least 2 tokens", [&] { one.ap(); });
  expect_error(ErrorCode::kInvalidArgument, "needs at least 2 tokens", [&] { one.ap_tokens(); });
}

}  // namespace
}  // namespace attnprox
