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

/// A[i][j] by the definition: A_h = Q_h K_{g(h)}ᵀ / sqrt(d), A_raw = mean_h, A = (A_raw + A_rawᵀ)/2, in double,
/// from the queries and keys before RoPE (`rope` false, the proximity family's default) or after it.
std::vector<std::vector<double>> brute_force_proximity(const Result& r, int layer, bool rope = false) {
  const at::Tensor q = r.queries(layer, rope).to(at::kDouble).contiguous();
  const at::Tensor k = r.keys(layer, rope).to(at::kDouble).contiguous();
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
    for (int layer : model.manifest().captured_layers()) for (bool rope : {false, true}) {
      SCOPED_TRACE(rope ? "after RoPE" : "before RoPE");
      const auto want = brute_force_proximity(r, layer, rope);
      const int64_t n = r.num_tokens();
      at::Tensor a = r.proximity(layer, {rope}).to(at::kDouble);
      at::Tensor ap_tokens = r.ap_tokens(layer, {rope});
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
      EXPECT_NEAR(r.ap(layer, {rope}), ap, 1e-9 * (1 + std::abs(ap)));
    }
  }
}

/// x [H, N, d] rotated as a model does (docs/model-file.md, "rope"), written out element by element in double
/// from float32 angles.
at::Tensor rotated(const at::Tensor& x, const RotaryEmbedding& r) {
  const at::Tensor wide = x.to(at::kDouble).contiguous();
  at::Tensor out = wide.clone();
  auto in = wide.accessor<double, 3>();
  auto o = out.accessor<double, 3>();
  const int64_t half = r.rotary_dim / 2;
  for (int64_t h = 0; h < x.size(0); ++h) {
    for (int64_t t = 0; t < x.size(1); ++t) {
      for (int64_t k = 0; k < half; ++k) {
        const float angle = static_cast<float>(t) * static_cast<float>(r.inv_freq[k]);
        const double c = r.attention_scaling * std::cos(static_cast<double>(angle));
        const double s = r.attention_scaling * std::sin(static_cast<double>(angle));
        const int64_t ia = r.layout == RotaryEmbedding::Layout::kRotateHalf ? k : 2 * k;
        const int64_t ib = r.layout == RotaryEmbedding::Layout::kRotateHalf ? k + half : 2 * k + 1;
        o[h][t][ia] = in[h][t][ia] * c - in[h][t][ib] * s;
        o[h][t][ib] = in[h][t][ib] * c + in[h][t][ia] * s;
      }
    }
  }
  return out.to(at::kFloat);
}

TEST(Rope, UnrotateUndoesTheRotation) {
  at::manual_seed(5);
  const at::Tensor x = at::randn({3, 40, 10});
  for (auto layout : {RotaryEmbedding::Layout::kRotateHalf, RotaryEmbedding::Layout::kInterleaved}) {
    for (int dim : {10, 6}) {  // the whole head, and partial rotary (the last 4 dimensions not rotated)
      RotaryEmbedding r;
      r.layout = layout;
      r.rotary_dim = dim;
      r.attention_scaling = dim == 6 ? 1.25 : 1.0;
      for (int k = 0; k < dim / 2; ++k) r.inv_freq.push_back(std::pow(10000.0, -2.0 * k / dim));
      const at::Tensor turned = rotated(x, r);
      EXPECT_GT((turned - x).abs().max().item<double>(), 0.5);  // the rotation does change x
      const at::Tensor back = unrotate(turned, r);
      EXPECT_EQ(back.scalar_type(), at::kFloat);
      EXPECT_LT((back - x).abs().max().item<double>(), 1e-5) << "dim " << dim;
      if (dim < 10) {
        EXPECT_TRUE(at::equal(back.narrow(2, dim, 10 - dim), x.narrow(2, dim, 10 - dim)));
      }
    }
  }
}

TEST(Rope, QueriesBeforeRopeOnRotaryAndNonRotaryModels) {
  Result llama = Model::load(model_path("llama.apx")).run({4, 8, 15, 16, 23, 42});
  const at::Tensor after = llama.queries(-1), before = llama.queries(-1, /*rope=*/false);
  EXPECT_EQ(before.sizes(), after.sizes());
  // Position 0 is not turned; every later one is.
  EXPECT_LT((before.narrow(1, 0, 1) - after.narrow(1, 0, 1)).abs().max().item<double>(), 1e-6);
  EXPECT_GT((before.narrow(1, 1, 5) - after.narrow(1, 1, 5)).abs().max().item<double>(), 1e-3);
  // The rotation keeps each pair's length, so a head vector's norm is the same before and after.
  EXPECT_TRUE(at::allclose(before.norm(2, -1), after.norm(2, -1), 1e-4, 1e-6));
  EXPECT_NE(llama.ap(), llama.ap(-1, {true}));
  Result gpt2 = Model::load(model_path("gpt2.apx")).run({4, 8, 15, 16});
  EXPECT_TRUE(at::equal(gpt2.keys(-1, false), gpt2.keys(-1)));
  EXPECT_EQ(gpt2.ap(), gpt2.ap(-1, {true}));
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
