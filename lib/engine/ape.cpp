// Attention Proximity Entropy on the device, streamed over tiles of rows of A (see metrics.hpp for the definition
// and the policies; the Eigen implementation there is the reference this one is tested against).
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <cmath>
#include <limits>

#include "internal.hpp"

namespace attnprox {

namespace {

/// iAPE of rows first_row.. of A, given as a tile `a` [T, N] (float64); `off` marks the entries j ≠ i.
/// Returns (entropy [T], defined [T]).
std::pair<at::Tensor, at::Tensor> tile_entropy(const at::Tensor& a, const at::Tensor& off, metrics::ApePolicy policy) {
  const double inf = std::numeric_limits<double>::infinity();
  at::Tensor weights, defined;
  switch (policy) {
    case metrics::ApePolicy::kLiteral:
      weights = a.masked_fill(off.logical_not(), 0.0);
      defined = a.lt(0).logical_and(off).any(1).logical_not();
      break;
    case metrics::ApePolicy::kShift: {
      const at::Tensor lowest = std::get<0>(a.masked_fill(off.logical_not(), inf).min(1, /*keepdim=*/true));
      weights = (a - lowest).masked_fill_(off.logical_not(), 0.0);
      defined = at::ones({a.size(0)}, a.options().dtype(at::kBool));
      break;
    }
    case metrics::ApePolicy::kClamp:
      weights = a.clamp_min(0.0).masked_fill_(off.logical_not(), 0.0);
      defined = at::ones({a.size(0)}, a.options().dtype(at::kBool));
      break;
    case metrics::ApePolicy::kSoftmax: {
      const at::Tensor p = at::softmax(a.masked_fill(off.logical_not(), -inf), 1);
      return {at::special_xlogy(p, p).sum(1).neg_(), at::ones({a.size(0)}, a.options().dtype(at::kBool))};
    }
  }
  const at::Tensor total = weights.sum(1, /*keepdim=*/true);
  defined = defined.logical_and(total.squeeze(1).gt(0)).logical_and(at::isfinite(total.squeeze(1)));
  const at::Tensor p = weights / total.clamp_min(std::numeric_limits<double>::min());
  return {at::special_xlogy(p, p).sum(1).neg_(), defined};
}

}  // namespace

ApeResult Result::ape(int layer, metrics::ApePolicy policy) const {
  const Manifest& m = *data_->manifest;
  const size_t slot = m.slot(layer);
  const int64_t n = num_tokens();
  if (n < 2) {
    throw Error(ErrorCode::kInvalidArgument,
                "Attention Proximity Entropy needs at least 2 tokens (it averages over the other tokens); this "
                "text has " +
                    std::to_string(n));
  }
  c10::InferenceMode guard;
  return guarded("ape", [&] {
    // A = (c/2) U Vᵀ with U = [Qg | Kg], V = [Kg | Qg] (N × 2·Hkv·d): A_ij = (c/2)(Qg_i·Kg_j + Kg_i·Qg_j).
    const at::Tensor keys = data_->keys[slot].to(at::kFloat);
    const int64_t kv_heads = keys.size(0), d = keys.size(2);
    const double c = 1.0 / (m.num_heads * std::sqrt(static_cast<double>(d)));
    const at::Tensor qg =
        grouped_queries(data_->queries[slot], kv_heads, at::kFloat).permute({1, 0, 2}).reshape({n, -1});
    const at::Tensor kg = keys.permute({1, 0, 2}).reshape({n, -1});
    const at::Tensor u = at::cat({qg, kg}, 1), v = at::cat({kg, qg}, 1);
    const int64_t tile = std::max<int64_t>(1, std::min<int64_t>(n, (int64_t{1} << 22) / n));
    at::Tensor tokens = at::empty({n}, keys.options().dtype(at::kDouble));
    at::Tensor defined = at::empty({n}, keys.options().dtype(at::kBool));
    const at::Tensor columns = at::arange(n, keys.options().dtype(at::kLong)).unsqueeze(0);
    for (int64_t first = 0; first < n; first += tile) {
      const int64_t rows = std::min(tile, n - first);
      const at::Tensor a = at::mm(u.narrow(0, first, rows), v.t()).to(at::kDouble).mul_(0.5 * c);
      const at::Tensor off = columns.ne(at::arange(first, first + rows, columns.options()).unsqueeze(1));
      auto [entropy, ok] = tile_entropy(a, off, policy);
      tokens.narrow(0, first, rows).copy_(entropy);
      defined.narrow(0, first, rows).copy_(ok);
    }
    ApeResult out;
    out.policy = policy;
    const int64_t defined_rows = defined.sum().item<int64_t>();
    out.undefined_rows = n - defined_rows;
    tokens.masked_fill_(defined.logical_not(), std::numeric_limits<double>::quiet_NaN());
    if (defined_rows > 0) {
      const double mean = tokens.masked_select(defined).mean().item<double>();
      out.value = mean;
      // Length correction by log(N−1), the entropy of a uniform row; N = 2 leaves one outcome: 0.
      out.normalized = n > 2 ? mean / std::log(static_cast<double>(n - 1)) : 0.0;
    }
    out.tokens = tokens;
    out.defined = defined;
    return out;
  });
}

}  // namespace attnprox
