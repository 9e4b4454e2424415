// The Eigen measurements (no libtorch) on hand-computed cases, and agreement between the computation from queries
// and keys and the one from the proximity matrix.
#include "attnprox/metrics.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "../expect_error.hpp"
#include "attnprox/error.hpp"

namespace attnprox::metrics {
namespace {

double h(std::initializer_list<double> p) {
  double out = 0;
  for (double x : p) out -= x > 0 ? x * std::log(x) : 0;
  return out;
}

TEST(Metrics, HandComputedThreeTokens) {
  Eigen::MatrixXd a(3, 3);
  a << 0, 1, 2, 1, 0, 3, 2, 3, 0;
  const Eigen::VectorXd ap_i = ap_tokens(a);
  EXPECT_DOUBLE_EQ(ap_i[0], 1.5);
  EXPECT_DOUBLE_EQ(ap_i[2], 2.5);
  EXPECT_DOUBLE_EQ(ap(a), 2.0);
  const Eigen::VectorXd subset = subset_proximity(a, {2, 0, 2});
  EXPECT_DOUBLE_EQ(subset[1], 2.0);
  const Ape literal = ape(a, ApePolicy::kLiteral);
  EXPECT_NEAR(literal.tokens[0], h({1.0 / 3, 2.0 / 3}), 1e-12);
  EXPECT_NEAR(literal.tokens[1], h({0.25, 0.75}), 1e-12);
  EXPECT_EQ(literal.undefined_rows, 0);
  EXPECT_NEAR(*literal.normalized, *literal.value / std::log(2.0), 1e-12);
  Eigen::MatrixXd b(3, 3);
  b << 0, -1, 2, -1, 0, 1, 2, 1, 0;
  const Ape strict = ape(b, ApePolicy::kLiteral);
  EXPECT_EQ(strict.undefined_rows, 2);
  EXPECT_TRUE(std::isnan(strict.tokens[0]));
  EXPECT_NEAR(*strict.value, h({2.0 / 3, 1.0 / 3}), 1e-12);
  // shift, the original code's formula: w = A − min + 1e-8, p = w / Σw, −Σ p log(p + 1e-10). Row 1 of `a` is
  // (1, 3) → w = (1e-8, 2 + 1e-8).
  const Ape shifted = ape(a, ApePolicy::kShift);
  const double w0 = 1e-8, w1 = 2 + 1e-8, p0 = w0 / (w0 + w1), p1 = w1 / (w0 + w1);
  EXPECT_NEAR(shifted.tokens[1], -(p0 * std::log(p0 + 1e-10) + p1 * std::log(p1 + 1e-10)), 1e-15);
  EXPECT_GT(shifted.tokens[1], 1e-8);  // not the plain formula's 0
  EXPECT_EQ(shifted.undefined_rows, 0);
  // All entries equal: the plain formula has nothing left; the original's offset makes the row uniform.
  const Ape all_equal = ape(Eigen::MatrixXd::Ones(3, 3), ApePolicy::kShift);
  EXPECT_EQ(all_equal.undefined_rows, 0);
  EXPECT_NEAR(*all_equal.value, -std::log(0.5 + 1e-10), 1e-15);
  // A matrix with a non-finite entry is refused (no measurement takes NaN or Inf in, docs/limits.md).
  Eigen::MatrixXd c = Eigen::MatrixXd::Ones(3, 3);
  c(0, 1) = c(1, 0) = std::numeric_limits<double>::infinity();
  testing::expect_error(ErrorCode::kInvalidArgument, "the proximity matrix must be finite: a NaN or Inf was found",
                        [&] { ape(c, ApePolicy::kShift); });
}

TEST(Metrics, QueriesKeysAgreeWithTheMatrix) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  const int64_t heads = 6, kv_heads = 2, n = 23, d = 5;
  std::vector<float> q(heads * n * d), k(kv_heads * n * d);
  for (float& x : q) x = normal(rng);
  for (float& x : k) x = normal(rng);
  QueriesKeys<float> qk{q.data(), k.data(), heads, kv_heads, n, d};
  const Eigen::MatrixXd a = proximity(qk);
  EXPECT_TRUE(a.isApprox(a.transpose()));
  // A[i][j] by the definition for one entry
  double sum = 0;
  for (int64_t hh = 0; hh < heads; ++hh) {
    const int64_t g = hh / (heads / kv_heads);
    double dot1 = 0, dot2 = 0;
    for (int64_t e = 0; e < d; ++e) {
      dot1 += double(q[(hh * n + 3) * d + e]) * k[(g * n + 8) * d + e];
      dot2 += double(q[(hh * n + 8) * d + e]) * k[(g * n + 3) * d + e];
    }
    sum += (dot1 + dot2) / 2;
  }
  EXPECT_NEAR(a(3, 8), sum / heads / std::sqrt(double(d)), 1e-12);
  EXPECT_TRUE(ap_tokens(qk).isApprox(ap_tokens(a), 1e-12));
  EXPECT_TRUE(subset_proximity(qk, {1, 4, 4}).isApprox(subset_proximity(a, {1, 4}), 1e-12));
  for (ApePolicy policy : {ApePolicy::kLiteral, ApePolicy::kShift, ApePolicy::kClamp, ApePolicy::kSoftmax}) {
    const Ape from_qk = ape(qk, policy), from_a = ape(a, policy);
    EXPECT_EQ(from_qk.undefined_rows, from_a.undefined_rows);
    for (int64_t i = 0; i < n; ++i) {
      if (from_a.defined[i]) {
        EXPECT_NEAR(from_qk.tokens[i], from_a.tokens[i], 1e-10);
      }
    }
  }
}

TEST(Metrics, LowPrecisionInputsAreWidened) {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal;
  const int64_t heads = 4, kv_heads = 2, n = 9, d = 8;
  std::vector<Eigen::bfloat16> q16(heads * n * d), k16(kv_heads * n * d);
  std::vector<double> q64(q16.size()), k64(k16.size());
  for (size_t i = 0; i < q16.size(); ++i) q64[i] = static_cast<float>(q16[i] = Eigen::bfloat16(normal(rng)));
  for (size_t i = 0; i < k16.size(); ++i) k64[i] = static_cast<float>(k16[i] = Eigen::bfloat16(normal(rng)));
  QueriesKeys<Eigen::bfloat16> low{q16.data(), k16.data(), heads, kv_heads, n, d};
  QueriesKeys<double> wide{q64.data(), k64.data(), heads, kv_heads, n, d};
  EXPECT_TRUE(ap_tokens(low).isApprox(ap_tokens(wide), 1e-14));
  EXPECT_NEAR(*ape(low).value, *ape(wide).value, 1e-12);
}

TEST(Metrics, AttentionStatistics) {
  Eigen::MatrixXd p(3, 3);
  p << 1, 0, 0, 0.5, 0.5, 0, 0.2, 0.3, 0.5;
  const AttentionStats s = attention_stats(p, Visibility{true, std::nullopt});
  EXPECT_DOUBLE_EQ(s.entropy[0], 0.0);
  EXPECT_NEAR(s.entropy[1], std::log(2.0), 1e-12);
  EXPECT_DOUBLE_EQ(s.normalized_entropy[0], 0.0);  // one visible key
  EXPECT_NEAR(s.normalized_entropy[1], 1.0, 1e-12);
  EXPECT_NEAR(s.normalized_entropy[2], h({0.2, 0.3, 0.5}) / std::log(3.0), 1e-12);
  // Query 0 sees one key (weight 1): the largest weight is over queries 1 and 2, the first 0.5 at (1, 0).
  EXPECT_DOUBLE_EQ(s.max_weight, 0.5);
  EXPECT_EQ(s.max_query, 1);
  EXPECT_EQ(s.max_key, 0);
  EXPECT_EQ(s.max_weights, Eigen::Vector3d(1.0, 0.5, 0.5));
  EXPECT_EQ(s.argmax_keys[0], 0);
  EXPECT_EQ(s.argmax_keys[1], 0);  // ties: the first key
  EXPECT_EQ(s.argmax_keys[2], 2);
  EXPECT_EQ(s.most_attended, 0);  // receives 1.7
  // One query alone sees one key: then the largest weight is its.
  const AttentionStats single = attention_stats(Eigen::MatrixXd::Ones(1, 1), Visibility{true, std::nullopt});
  EXPECT_DOUBLE_EQ(single.max_weight, 1.0);
  const auto arcs = top_arcs(p, 2, 2);
  EXPECT_EQ(arcs[0].key, 2);
  EXPECT_EQ(arcs[1].key, 1);
  // Causal: query 1 sees keys 0 and 1 only, so asking for 3 arcs gives 2.
  Eigen::MatrixXd leaky = p;
  leaky(1, 2) = 0.25;  // a weight where the mask is: never listed
  const auto visible = top_arcs(leaky, 1, 3, Visibility{true, std::nullopt});
  ASSERT_EQ(visible.size(), 2u);
  EXPECT_EQ(visible[0].key, 0);
  EXPECT_EQ(visible[1].key, 1);
  EXPECT_EQ(top_arcs(leaky, 1, 3).size(), 3u);  // bidirectional: every key
  EXPECT_TRUE(Visibility({true, 2}).sees(5, 4));
  EXPECT_FALSE(Visibility({true, 2}).sees(5, 3));
  EXPECT_TRUE(Visibility({false, 2}).sees(5, 7));
  EXPECT_FALSE(Visibility({false, 2}).sees(5, 8));
  EXPECT_EQ(Visibility({true, 2}).visible_keys(5, 10), 2);   // causal window: i − j < 2
  EXPECT_EQ(Visibility({false, 2}).visible_keys(5, 10), 5);  // bidirectional: |i − j| ≤ 2
  // Links of tokens 0 and 2: max(P[0, 2], P[2, 0]) is 0.2 in p and in pᵀ, 0.7 in q; strongest first, and equal
  // scores in the order the matrices were given.
  Eigen::MatrixXd q = p;
  q(0, 2) = 0.7;
  for (const bool transposed_first : {false, true}) {
    const Eigen::MatrixXd first = transposed_first ? Eigen::MatrixXd(p.transpose()) : p;
    const Eigen::MatrixXd last = transposed_first ? p : Eigen::MatrixXd(p.transpose());
    const auto links = rank_links({first, q, last}, 0, 2);
    ASSERT_EQ(links.size(), 3u);
    EXPECT_EQ(links[0].index, 1);
    EXPECT_DOUBLE_EQ(links[0].score, 0.7);
    EXPECT_EQ(links[1].index, 0);
    EXPECT_DOUBLE_EQ(links[1].score, 0.2);
    EXPECT_EQ(links[2].index, 2);
    EXPECT_DOUBLE_EQ(links[2].score, 0.2);
  }
  const auto reversed = rank_links({q.transpose(), p}, 2, 0);  // the same links, a and b swapped
  EXPECT_EQ(reversed[0].index, 0);
  EXPECT_DOUBLE_EQ(reversed[0].score, 0.7);
  testing::expect_error(ErrorCode::kOutOfRange, "tokens 0 and 3 requested, the text has 3 tokens",
                        [&] { rank_links({p}, 0, 3); });
  testing::expect_error(ErrorCode::kOutOfRange, "query token 3 requested, the text has 3 tokens",
                        [&] { top_arcs(p, 3, 1); });
  testing::expect_error(ErrorCode::kInvalidArgument, "k must be at least 1", [&] { top_arcs(p, 0, 0); });
  testing::expect_error(ErrorCode::kInvalidArgument,
                        "APE policy \"none\" is not one of literal, shift, clamp, softmax",
                        [] { parse_ape_policy("none"); });
  EXPECT_EQ(parse_ape_policy(to_string(ApePolicy::kClamp)), ApePolicy::kClamp);
}

}  // namespace
}  // namespace attnprox::metrics
