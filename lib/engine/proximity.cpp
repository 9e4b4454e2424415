// Attention Proximity (docs/measurements.md §3-§5) from a layer's queries and keys.
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

#include <algorithm>
#include <cmath>

#include "internal.hpp"

namespace attnprox {
at::Tensor grouped_queries(const at::Tensor& queries, int64_t kv_heads, at::ScalarType dtype) {
  const int64_t heads = queries.size(0), n = queries.size(1), d = queries.size(2);
  // Summed in `dtype` as read (no widened copy of every head first).
  return queries.reshape({kv_heads, heads / kv_heads, n, d}).sum(1, /*keepdim=*/false, dtype);
}

namespace {
/// Tokens per chunk of the O(N·H·d) measurements, so that a chunk of one layer's queries in float64 stays near
/// 128 MiB however long the text: AP on 262,144 tokens of a 32-head, d = 128 model would otherwise widen 8 GiB.
int64_t chunk_tokens(int64_t heads, int64_t d) {
  return std::max<int64_t>(1, (int64_t{1} << 27) / (8 * std::max<int64_t>(1, heads * d)));
}

/// Σ over the tokens of Qg and of K, [Hkv, 1, d] each in float64, a chunk of tokens at a time.
std::pair<at::Tensor, at::Tensor> token_sums(const at::Tensor& queries, const at::Tensor& keys) {
  const int64_t kv_heads = keys.size(0), n = keys.size(1), d = keys.size(2);
  const int64_t chunk = chunk_tokens(queries.size(0), d);
  at::Tensor query_sum = at::zeros({kv_heads, 1, d}, keys.options().dtype(at::kDouble));
  at::Tensor key_sum = at::zeros({kv_heads, 1, d}, keys.options().dtype(at::kDouble));
  for (int64_t first = 0; first < n; first += chunk) {
    const int64_t count = std::min(chunk, n - first);
    query_sum.add_(grouped_queries(queries.narrow(1, first, count), kv_heads, at::kDouble).sum(1, true));
    key_sum.add_(keys.narrow(1, first, count).to(at::kDouble).sum(1, true));
  }
  return {query_sum, key_sum};
}
}  // namespace

at::Tensor Result::proximity(int layer, const ProximityOptions& options) const {
  const Manifest& m = *data_->manifest;
  const size_t slot = m.slot(layer);
  const auto inputs = proximity_inputs(slot, options.rope);
  const at::Tensor &queries = inputs.first, &keys = inputs.second;
  c10::InferenceMode guard;
  return guarded("proximity", [&] {
    const int64_t kv_heads = keys.size(0), n = keys.size(1), d = keys.size(2);
    const double c = 1.0 / (m.num_heads * std::sqrt(static_cast<double>(d)));
    // Σ_g Qg Kgᵀ as one product: [N, Hkv·d] × [Hkv·d, N].
    at::Tensor qg = grouped_queries(queries, kv_heads, at::kFloat).permute({1, 0, 2}).reshape({n, -1});
    at::Tensor kg = keys.to(at::kFloat).permute({1, 0, 2}).reshape({n, -1});
    at::Tensor raw = at::matmul(qg, kg.t()).mul_(c);
    return finite(raw.add(raw.t()).mul_(0.5), "proximity");
  });
}

at::Tensor Result::ap_tokens(int layer, const ProximityOptions& options) const {
  const Manifest& m = *data_->manifest;
  const size_t slot = m.slot(layer);
  const int64_t n = num_tokens();
  if (n < 2) {
    throw Error(ErrorCode::kInvalidArgument,
                "Attention Proximity needs at least 2 tokens (it averages over the other tokens); this text has " +
                    std::to_string(n));
  }
  const auto inputs = proximity_inputs(slot, options.rope);
  const at::Tensor &queries = inputs.first, &keys = inputs.second;  // [H, N, d], [Hkv, N, d]
  c10::InferenceMode guard;
  return guarded("ap_tokens", [&] {
    const int64_t kv_heads = keys.size(0), d = keys.size(2);
    const double c = 1.0 / (m.num_heads * std::sqrt(static_cast<double>(d)));
    const auto [query_sum, key_sum] = token_sums(queries, keys);  // [Hkv, 1, d] each
    at::Tensor out = at::empty({n}, keys.options().dtype(at::kDouble));
    const int64_t chunk = chunk_tokens(queries.size(0), d);
    for (int64_t first = 0; first < n; first += chunk) {
      const int64_t count = std::min(chunk, n - first);
      const at::Tensor qg = grouped_queries(queries.narrow(1, first, count), kv_heads, at::kDouble);
      const at::Tensor k = keys.narrow(1, first, count).to(at::kDouble);
      const at::Tensor row = (qg * key_sum).sum(at::IntArrayRef{0, 2});  // [count]
      const at::Tensor col = (k * query_sum).sum(at::IntArrayRef{0, 2});
      const at::Tensor diag = (qg * k).sum(at::IntArrayRef{0, 2});
      out.narrow(0, first, count).copy_((row + col).mul_(0.5).sub_(diag).mul_(c / static_cast<double>(n - 1)));
    }
    return finite(out, "ap_tokens");
  });
}

double Result::ap(int layer, const ProximityOptions& options) const {
  at::Tensor tokens = ap_tokens(layer, options);
  c10::InferenceMode guard;
  return tokens.mean().item<double>();
}

at::Tensor Result::subset_proximity(const std::vector<int64_t>& subset, int layer,
                                    const ProximityOptions& options) const {
  const Manifest& m = *data_->manifest;
  const size_t slot = m.slot(layer);
  const int64_t n = num_tokens();
  if (subset.empty()) throw Error(ErrorCode::kInvalidArgument, "the subset is empty: no token positions given");
  std::vector<int64_t> positions;
  for (int64_t i : subset) {
    if (i < 0 || i >= n) {
      throw Error(ErrorCode::kOutOfRange, "token " + std::to_string(i) + " in the subset, the text has " +
                                              std::to_string(n) + " tokens (0.." + std::to_string(n - 1) + ")");
    }
    if (std::find(positions.begin(), positions.end(), i) == positions.end()) positions.push_back(i);  // a set
  }
  const auto inputs = proximity_inputs(slot, options.rope);
  const at::Tensor &queries = inputs.first, &keys = inputs.second;  // [H, N, d], [Hkv, N, d]
  c10::InferenceMode guard;
  return guarded("subset_proximity", [&] {
    // Σ_{i∈S} A_ij = (c/2) Σ_g (ΣS Qg · Kg_j + Qg_j · ΣS Kg)
    const int64_t kv_heads = keys.size(0), d = keys.size(2);
    const double c = 1.0 / (m.num_heads * std::sqrt(static_cast<double>(d)));
    const at::Tensor index = at::tensor(positions, at::kLong).to(keys.device());
    const at::Tensor query_sum =
        grouped_queries(queries.index_select(1, index), kv_heads, at::kDouble).sum(1, /*keepdim=*/true);
    const at::Tensor key_sum = keys.index_select(1, index).to(at::kDouble).sum(1, /*keepdim=*/true);  // [Hkv, 1, d]
    at::Tensor total = at::empty({n}, keys.options().dtype(at::kDouble));
    const int64_t chunk = chunk_tokens(queries.size(0), d);
    for (int64_t first = 0; first < n; first += chunk) {
      const int64_t count = std::min(chunk, n - first);
      const at::Tensor qg = grouped_queries(queries.narrow(1, first, count), kv_heads, at::kDouble);
      const at::Tensor k = keys.narrow(1, first, count).to(at::kDouble);
      total.narrow(0, first, count)
          .copy_((k * query_sum).sum(at::IntArrayRef{0, 2}) + (qg * key_sum).sum(at::IntArrayRef{0, 2}));
    }
    return finite(total.mul_(0.5 * c / static_cast<double>(positions.size())), "subset_proximity");
  });
}

at::Tensor Result::average_proximity(const std::vector<int>& layers, const std::vector<int>& heads,
                                     bool symmetric, const ProximityOptions& options) const {
  const Manifest& m = *data_->manifest;
  const std::vector<size_t> slots = layer_slots(m, layers);
  std::vector<int64_t> chosen = checked_heads(m, heads);
  if (chosen.empty()) {
    for (int h = 0; h < m.num_heads; ++h) chosen.push_back(h);
  }
  c10::InferenceMode guard;
  return guarded("average_proximity", [&] {
    // mean over (l, h) of Q_h K_{g(h)}ᵀ / sqrt(d) = (1 / (L·|heads|·sqrt d)) Σ_l Σ_g (Σ_{chosen h in g} Q_h) K_gᵀ
    at::Tensor sum;
    for (size_t slot : slots) {
      const auto inputs = proximity_inputs(slot, options.rope);
      const at::Tensor &queries = inputs.first, &keys = inputs.second;
      const int64_t kv_heads = keys.size(0), n = keys.size(1);
      const at::Tensor chosen_heads = at::tensor(chosen, at::kLong).to(keys.device());
      const at::Tensor groups = at::floor_divide(chosen_heads, m.num_heads / kv_heads);
      at::Tensor qg = at::zeros({kv_heads, n, keys.size(2)}, keys.options().dtype(at::kFloat));
      qg.index_add_(0, groups, queries.index_select(0, chosen_heads).to(at::kFloat));
      at::Tensor layer_sum = at::matmul(qg, keys.to(at::kFloat).transpose(1, 2)).sum(0);
      sum = sum.defined() ? sum.add_(layer_sum) : layer_sum;
    }
    const double d = static_cast<double>(m.head_dim);
    sum.div_(static_cast<double>(slots.size() * chosen.size()) * std::sqrt(d));
    return finite(symmetric ? sum.add(sum.t()).mul_(0.5) : sum, "average_proximity");
  });
}

}  // namespace attnprox
