// Attention weights rebuilt from Q and K (docs/measurements.md §2) against a brute-force double-precision loop and
// hand-computed cases.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "attnprox/engine.hpp"
#include "test_support.hpp"

namespace attnprox {
namespace {

using testing::expect_error;

/// P[h][i][j] by the definition, one scalar at a time, in double.
std::vector<double> brute_force(const at::Tensor& q_in, const at::Tensor& k_in, const AttentionSpec& spec) {
  const at::Tensor q = q_in.to(at::kDouble).contiguous(), k = k_in.to(at::kDouble).contiguous();
  const int64_t heads = q.size(0), kv_heads = k.size(0), n = q.size(1), nk = k.size(1), d = q.size(2);
  const double* qp = q.data_ptr<double>();
  const double* kp = k.data_ptr<double>();
  std::vector<double> out(heads * n * nk);
  for (int64_t h = 0; h < heads; ++h) {
    const int64_t g = h / (heads / kv_heads);
    for (int64_t i = 0; i < n; ++i) {
      std::vector<double> logits;
      std::vector<bool> visible;
      for (int64_t j = 0; j < nk; ++j) {
        double dot = 0;
        for (int64_t e = 0; e < d; ++e) dot += qp[(h * n + i) * d + e] * kp[(g * nk + j) * d + e];
        double x = spec.scaling * dot;
        if (spec.softcap) x = *spec.softcap * std::tanh(x / *spec.softcap);
        x /= spec.temperature;
        bool ok = true;
        if (spec.causal)
          ok = j <= i && (!spec.sliding_window || i - j < *spec.sliding_window);
        else if (spec.sliding_window)
          ok = std::abs(i - j) <= *spec.sliding_window;
        logits.push_back(x);
        visible.push_back(ok);
      }
      double top = spec.sinks.empty() ? -INFINITY : spec.sinks[h] / spec.temperature;
      for (int64_t j = 0; j < nk; ++j)
        if (visible[j]) top = std::max(top, logits[j]);
      double total = spec.sinks.empty() ? 0.0 : std::exp(spec.sinks[h] / spec.temperature - top);
      for (int64_t j = 0; j < nk; ++j)
        if (visible[j]) total += std::exp(logits[j] - top);
      for (int64_t j = 0; j < nk; ++j) {
        out[(h * n + i) * nk + j] = visible[j] ? std::exp(logits[j] - top) / total : 0.0;
      }
    }
  }
  return out;
}

double max_difference(const at::Tensor& got, const std::vector<double>& want) {
  const at::Tensor flat = got.to(at::kDouble).contiguous().view(-1);
  EXPECT_EQ(flat.numel(), static_cast<int64_t>(want.size()));
  double worst = 0;
  for (int64_t k = 0; k < flat.numel(); ++k) worst = std::max(worst, std::abs(flat[k].item<double>() - want[k]));
  return worst;
}

struct Case {
  const char* name;
  int64_t heads, kv_heads, n, d;
  AttentionSpec spec;
};

AttentionSpec spec_with(bool causal, std::optional<int64_t> window = {}, std::optional<double> softcap = {},
                        std::vector<double> sinks = {}, double temperature = 1.0, double scaling = 0.35) {
  AttentionSpec s;
  s.scaling = scaling;
  s.causal = causal;
  s.sliding_window = window;
  s.softcap = softcap;
  s.sinks = std::move(sinks);
  s.temperature = temperature;
  return s;
}

TEST(AttentionWeights, MatchTheDefinitionOnRandomQueriesAndKeys) {
  const std::vector<Case> cases = {
      {"causal MHA", 4, 4, 9, 8, spec_with(true)},
      {"bidirectional MHA", 3, 3, 7, 5, spec_with(false)},
      {"causal GQA 8/2", 8, 2, 11, 4, spec_with(true)},
      {"bidirectional MQA 6/1", 6, 1, 6, 3, spec_with(false)},
      {"causal sliding window 3", 4, 2, 12, 8, spec_with(true, 3)},
      {"bidirectional sliding window 2", 2, 2, 10, 4, spec_with(false, 2)},
      {"soft-cap 5", 4, 2, 8, 8, spec_with(true, {}, 5.0)},
      {"sinks", 4, 2, 8, 8, spec_with(true, {}, {}, {0.5, -1.0, 2.0, 0.0})},
      {"temperature 2.5", 4, 4, 8, 8, spec_with(true, {}, {}, {}, 2.5)},
      {"temperature 0.3", 2, 1, 8, 8, spec_with(false, {}, {}, {}, 0.3)},
      {"everything", 6, 3, 13, 4, spec_with(true, 5, 4.0, {1, 0, -1, 2, 0.5, -0.5}, 1.7)},
      {"one token", 2, 1, 1, 4, spec_with(true)},
  };
  at::manual_seed(7);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    at::Tensor q = at::randn({c.heads, c.n, c.d}) * 2;
    at::Tensor k = at::randn({c.kv_heads, c.n, c.d}) * 2;
    at::Tensor got = attention_weights(q, k, c.spec);
    EXPECT_EQ(got.sizes(), at::IntArrayRef({c.heads, c.n, c.n}));
    EXPECT_EQ(got.scalar_type(), at::kFloat);
    EXPECT_LT(max_difference(got, brute_force(q, k, c.spec)), 2e-6);
  }
}

TEST(AttentionWeights, HandComputedTwoTokens) {
  // One head, d = 1: q = (1, 2), k = (1, -1), scaling 1.
  at::Tensor q = at::tensor({1.0f, 2.0f}).view({1, 2, 1});
  at::Tensor k = at::tensor({1.0f, -1.0f}).view({1, 2, 1});
  // Bidirectional: row 0 logits (1, -1) → (e²/(e²+1), 1/(e²+1)); row 1 logits (2, -2) → (e⁴/(e⁴+1), 1/(e⁴+1)).
  at::Tensor p = attention_weights(q, k, spec_with(false, {}, {}, {}, 1.0, 1.0));
  const double e2 = std::exp(2.0), e4 = std::exp(4.0);
  EXPECT_NEAR(p[0][0][0].item<double>(), e2 / (e2 + 1), 1e-7);
  EXPECT_NEAR(p[0][0][1].item<double>(), 1 / (e2 + 1), 1e-7);
  EXPECT_NEAR(p[0][1][0].item<double>(), e4 / (e4 + 1), 1e-7);
  // Causal: token 0 sees only itself.
  p = attention_weights(q, k, spec_with(true, {}, {}, {}, 1.0, 1.0));
  EXPECT_DOUBLE_EQ(p[0][0][0].item<double>(), 1.0);
  EXPECT_DOUBLE_EQ(p[0][0][1].item<double>(), 0.0);
  // A sink of logit 1 beside token 0's own logit 1 takes half of its attention.
  p = attention_weights(q, k, spec_with(true, {}, {}, {1.0}, 1.0, 1.0));
  EXPECT_NEAR(p[0][0][0].item<double>(), 0.5, 1e-7);
  // Temperature 2 halves the logits: row 0 bidirectional becomes softmax(0.5, -0.5).
  p = attention_weights(q, k, spec_with(false, {}, {}, {}, 2.0, 1.0));
  EXPECT_NEAR(p[0][0][0].item<double>(), std::exp(1.0) / (std::exp(1.0) + 1), 1e-7);
}

TEST(AttentionWeights, LowPrecisionInputsAreComputedInFloat32) {
  at::manual_seed(3);
  at::Tensor q = at::randn({4, 6, 8}).to(at::kBFloat16), k = at::randn({2, 6, 8}).to(at::kBFloat16);
  at::Tensor got = attention_weights(q, k, spec_with(true));
  EXPECT_EQ(got.scalar_type(), at::kFloat);
  // The reference sees the same bfloat16 values, so the only difference is float32 against double arithmetic.
  EXPECT_LT(max_difference(got, brute_force(q, k, spec_with(true))), 2e-6);
}

TEST(AttentionWeights, RejectsInconsistentInputs) {
  at::Tensor q = at::randn({4, 5, 8}), k = at::randn({2, 5, 8});
  expect_error(ErrorCode::kInvalidArgument, "multiple of key heads", [&] {
    attention_weights(q, at::randn({3, 5, 8}), spec_with(true));
  });
  expect_error(ErrorCode::kInvalidArgument, "head size 8, keys 4", [&] {
    attention_weights(q, at::randn({2, 5, 4}), spec_with(true));
  });
  expect_error(ErrorCode::kInvalidArgument, "needs queries [H, N, d]",
               [&] { attention_weights(q.view({-1}), k, spec_with(true)); });
  expect_error(ErrorCode::kInvalidArgument, "2 sink logits for 4 query heads", [&] {
    attention_weights(q, k, spec_with(true, {}, {}, {1.0, 2.0}));
  });
  expect_error(ErrorCode::kInvalidArgument, "temperature must be a positive",
               [&] { attention_weights(q, k, spec_with(true, {}, {}, {}, 0.0)); });
  expect_error(ErrorCode::kInvalidArgument, "temperature must be a positive",
               [&] { attention_weights(q, k, spec_with(true, {}, {}, {}, std::numeric_limits<double>::quiet_NaN())); });
  expect_error(ErrorCode::kInvalidArgument, "sliding window must be at least 1",
               [&] { attention_weights(q, k, spec_with(true, 0)); });
}

}  // namespace
}  // namespace attnprox
