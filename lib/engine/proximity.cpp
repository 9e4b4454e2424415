// Attention Proximity (SPEC §3) from a layer's queries and keys.
//
// With Q_h [N, d] the queries of head h, K_g [N, d] the keys of key head g, and c = 1 / (H · sqrt(d)):
//   A_raw = c · Σ_h Q_h K_{g(h)}ᵀ = c · Σ_g Qg Kgᵀ   where Qg = Σ_{h reading g} Q_h (the product is linear in Q)
//   A     = (A_raw + A_rawᵀ) / 2
//   Σ_{j≠i} A_ij = (row_i + col_i) / 2 − A_raw[i, i]
//     row_i = c · Σ_g Qg[i] · (Σ_j Kg[j]),  col_i = c · Σ_g (Σ_j Qg[j]) · Kg[i],  A_raw[i, i] = c · Σ_g Qg[i] · Kg[i]
//   AP_i  = Σ_{j≠i} A_ij / (N − 1),  AP = mean_i AP_i
// so AP and AP_i cost O(N·H·d) and never build an N×N matrix.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <cmath>

#include "internal.hpp"

namespace attnprox {
namespace {

/// Qg: the queries summed over the heads that read each key head, [Hkv, N, d], in `dtype`.
at::Tensor grouped_queries(const at::Tensor& queries, int64_t kv_heads, at::ScalarType dtype) {
  const int64_t heads = queries.size(0), n = queries.size(1), d = queries.size(2);
  return queries.to(dtype).reshape({kv_heads, heads / kv_heads, n, d}).sum(1);
}

}  // namespace

at::Tensor Result::proximity(int layer) const {
  const Manifest& m = *data_->manifest;
  const size_t slot = m.slot(layer);
  c10::InferenceMode guard;
  return guarded("proximity", [&] {
    const at::Tensor& keys = data_->keys[slot];
    const int64_t kv_heads = keys.size(0), n = keys.size(1), d = keys.size(2);
    const double c = 1.0 / (m.num_heads * std::sqrt(static_cast<double>(d)));
    // Σ_g Qg Kgᵀ as one product: [N, Hkv·d] × [Hkv·d, N].
    at::Tensor qg = grouped_queries(data_->queries[slot], kv_heads, at::kFloat).permute({1, 0, 2}).reshape({n, -1});
    at::Tensor kg = keys.to(at::kFloat).permute({1, 0, 2}).reshape({n, -1});
    at::Tensor raw = at::matmul(qg, kg.t()).mul_(c);
    return raw.add(raw.t()).mul_(0.5);
  });
}

at::Tensor Result::ap_tokens(int layer) const {
  const Manifest& m = *data_->manifest;
  const size_t slot = m.slot(layer);
  const int64_t n = num_tokens();
  if (n < 2) {
    throw Error(ErrorCode::kInvalidArgument,
                "Attention Proximity needs at least 2 tokens (it averages over the other tokens); this text has " +
                    std::to_string(n));
  }
  c10::InferenceMode guard;
  return guarded("ap_tokens", [&] {
    const at::Tensor keys = data_->keys[slot].to(at::kDouble);  // [Hkv, N, d]
    const int64_t d = keys.size(2);
    const double c = 1.0 / (m.num_heads * std::sqrt(static_cast<double>(d)));
    const at::Tensor qg = grouped_queries(data_->queries[slot], keys.size(0), at::kDouble);  // [Hkv, N, d]
    const at::Tensor key_sum = keys.sum(1, /*keepdim=*/true);                                // [Hkv, 1, d]
    const at::Tensor query_sum = qg.sum(1, /*keepdim=*/true);                                // [Hkv, 1, d]
    const at::Tensor row = (qg * key_sum).sum(at::IntArrayRef{0, 2});                        // [N]
    const at::Tensor col = (keys * query_sum).sum(at::IntArrayRef{0, 2});
    const at::Tensor diag = (qg * keys).sum(at::IntArrayRef{0, 2});
    return ((row + col).mul_(0.5).sub_(diag)).mul_(c / static_cast<double>(n - 1));
  });
}

double Result::ap(int layer) const {
  at::Tensor tokens = ap_tokens(layer);
  c10::InferenceMode guard;
  return tokens.mean().item<double>();
}

}  // namespace attnprox
