// Attention Proximity Entropy on the device, streamed over tiles of rows of A (see metrics.hpp for the definition
// and the policies; the Eigen implementation there is the reference this one is tested against).
//
// With Qg = Σ_{h reading g} Q_h (the queries summed per key head, [N, Hkv·d] with the key heads side by side),
// Kg the keys [N, Hkv·d] and c = 1 / (H · sqrt(d)):
//   A = (c/2) (Qg Kgᵀ + Kg Qgᵀ) = (c/2) U Vᵀ,   U = [Qg | Kg],  V = [Kg | Qg]   (N × 2·Hkv·d)
// so one row tile of A is one matrix product [T, 2·Hkv·d] × [2·Hkv·d, N]. In float16/bfloat16 the operands stay in
// the model's dtype; Qg, a sum of G heads, is split into two parts in that dtype, Qg ≈ hi + lo (hi = Qg rounded,
// lo = Qg − hi rounded), so that U = [hi | lo | Kg | Kg] and V = [Kg | Kg | hi | lo] carry Qg to about twice the
// dtype's precision (G = 1 needs no split: Qg is Q). On CUDA the product runs in that dtype with float32
// accumulation and a float32 result (aten::mm.dtype, torch 2.8+); elsewhere V is widened to float32 once, which
// gives the same products (each a product of two values of the dtype, exact in float32).
//
// Every policy turns row i into weights w_ij ≥ 0 over j ≠ i, and then
//   iAPE_i = −Σ_j p_ij log p_ij,  p = w / Σw   =   log(Σ_j w_ij) − (Σ_j w_ij log w_ij) / Σ_j w_ij
// (the scale c/2 cancels except under softmax), a handful of passes over the float32 tile, in place; the shift
// policy follows the original code's formula instead, −Σ_j p_ij log(p_ij + 1e-10) with w = A − min + 1e-8.
// Where the library was built with its CUDA kernels (ATTNPROX_CUDA_KERNELS), a CUDA tile goes to one fused kernel
// instead (kernels.cu): two or three reads of each row in place of about a dozen ATen passes that write the tile
// between reads (as ATen passes, the shift policy, which needs p and log(p + 1e-10) apart, took 4.5 times one GEMM
// at 32k tokens). The environment variable ATTNPROX_CUDA_KERNELS=0, read at each APE, turns the kernels off: for
// comparing the two paths (tests/gpu/check_cuda.py, benchmarks/gpu_qwen3_8b.py).
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/InferenceMode.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>

#include "internal.hpp"
#if ATTNPROX_CUDA_KERNELS
#include "kernels.hpp"
#endif

namespace attnprox {

namespace {

/// Elements of one float32 tile of A (256 MiB): rows per tile = this / N.
constexpr int64_t kTileElements = int64_t{1} << 26;

/// torch's mm with a float32 result from float16/bfloat16 operands (aten::mm.dtype, CUDA, torch 2.8 and later),
/// found at run time so that the library builds against every libtorch; empty where this libtorch lacks it.
std::optional<c10::OperatorHandle> mm_to_float32() {
  static const std::optional<c10::OperatorHandle> op = [] {
    auto handle = c10::Dispatcher::singleton().findSchema({"aten::mm", "dtype"});
    return handle ? std::optional<c10::OperatorHandle>(*handle) : std::nullopt;
  }();
  return op;
}

/// Whether tile products with a float32 result run in the model's float16/bfloat16 on this device (CUDA with
/// aten::mm.dtype); elsewhere the same operands are widened to float32 once, which gives the same products.
bool reduced_products(const at::Device& device) {
  return device.is_cuda() && mm_to_float32().has_value();
}

/// The tile a [T, K] × bᵀ with b [N, K] → [T, N] float32; `b_float` is b in float32 where products in the reduced
/// dtype cannot run (undefined otherwise).
at::Tensor product(const at::Tensor& a, const at::Tensor& b, const at::Tensor& b_float) {
  if (a.scalar_type() == at::kFloat) return at::mm(a, b.t());
  if (b_float.defined()) return at::mm(a.to(at::kFloat), b_float.t());
  static std::atomic<bool> warned{false};
  try {
    return mm_to_float32()
        ->typed<at::Tensor(const at::Tensor&, const at::Tensor&, at::ScalarType)>()
        .call(a, b.t(), at::kFloat);
  } catch (const c10::Error& e) {
    if (!warned.exchange(true)) {
      logger().warn("aten::mm with a float32 result failed ({}); APE widens its operands to float32",
                    torch_message(e));
    }
    return at::mm(a.to(at::kFloat), b.t().to(at::kFloat));
  }
}

/// The operands U [N, K] and V [N, K] of A ∝ U Vᵀ (see the top of this file): float32 for a float32 model, else in
/// the model's dtype with Qg split into hi + lo.
std::pair<at::Tensor, at::Tensor> operands(const at::Tensor& queries, const at::Tensor& keys) {
  const int64_t heads = queries.size(0), kv_heads = keys.size(0), n = keys.size(1), d = keys.size(2);
  const int64_t group = heads / kv_heads;
  const at::ScalarType dtype = keys.scalar_type();
  const bool reduced = dtype == at::kHalf || dtype == at::kBFloat16;
  const at::ScalarType work = reduced ? dtype : at::kFloat;
  // [Hkv, N, d] → [N, Hkv·d]
  auto side_by_side = [&](const at::Tensor& t) { return t.permute({1, 0, 2}).reshape({n, kv_heads * d}); };
  const at::Tensor kg = side_by_side(keys).to(work);
  if (group == 1) {  // Qg = Q: exact in the model's dtype
    const at::Tensor qg = side_by_side(queries).to(work);
    return {at::cat({qg, kg}, 1), at::cat({kg, qg}, 1)};
  }
  const at::Tensor qg32 = side_by_side(grouped_queries(queries, kv_heads, at::kFloat));
  if (!reduced) return {at::cat({qg32, kg}, 1), at::cat({kg, qg32}, 1)};
  const at::Tensor hi = qg32.to(work);
  const at::Tensor lo = (qg32 - hi.to(at::kFloat)).to(work);
  return {at::cat({hi, lo, kg, kg}, 1), at::cat({kg, kg, hi, lo}, 1)};
}

/// Whether the tiles of one APE on `device` go to the fused kernel: the library has it, the device is CUDA and
/// ATTNPROX_CUDA_KERNELS is not "0" (read once per APE).
bool fused_tiles(const at::Device& device) {
#if ATTNPROX_CUDA_KERNELS
  const char* value = std::getenv("ATTNPROX_CUDA_KERNELS");
  return device.is_cuda() && (value == nullptr || std::strcmp(value, "0") != 0);
#else
  (void)device;
  return false;
#endif
}

/// iAPE of rows first.. of A from their tile `a` = A·(2/c) [T, N] (float32, overwritten unless `fused`): (entropy
/// [T] float64, defined [T] bool). `fused`: by the fused kernel (fused_tiles), else by ATen operations.
std::pair<at::Tensor, at::Tensor> tile_entropy(at::Tensor a, int64_t first, double half_c, metrics::ApePolicy policy,
                                               [[maybe_unused]] bool fused) {
#if ATTNPROX_CUDA_KERNELS
  if (fused) return cuda::tile_entropy(a.contiguous(), first, half_c, policy);
#endif
  const float inf = std::numeric_limits<float>::infinity();
  const int64_t rows = a.size(0);
  at::Tensor diagonal = a.narrow(1, first, rows).diagonal();  // the entries j = i
  at::Tensor defined;
  switch (policy) {
    case metrics::ApePolicy::kLiteral:  // w = A as it is; a row with a negative entry is undefined
      diagonal.fill_(0.0f);
      defined = at::amin(a, 1).ge(0.0f);
      break;
    case metrics::ApePolicy::kShift: {  // the original code's: w = A − min_{k≠i} A_ik + 1e-8, −Σ p log(p + 1e-10)
      a.mul_(half_c);  // A itself: the offsets are in its units
      diagonal.fill_(inf);
      a.sub_(at::amin(a, 1, /*keepdim=*/true)).add_(metrics::kShiftOffset);
      diagonal.fill_(0.0f);
      const at::Tensor total = a.sum(1, /*keepdim=*/false, at::kDouble);
      a.div_(total.to(at::kFloat).unsqueeze(1));  // p, 0 on the diagonal
      const at::Tensor logs = (a + static_cast<float>(metrics::kShiftLogOffset)).log_();
      const at::Tensor entropy = a.mul_(logs).sum(1, /*keepdim=*/false, at::kDouble).neg_();
      return {entropy, total.gt(0.0).logical_and(at::isfinite(total)).logical_and(at::isfinite(entropy))};
    }
    case metrics::ApePolicy::kClamp:  // w = max(A, 0)
      a.clamp_min_(0.0f);
      diagonal.fill_(0.0f);
      break;
    case metrics::ApePolicy::kSoftmax: {  // w = exp(A − max_{k≠i} A_ik): the softmax's numerators
      a.mul_(half_c);
      diagonal.fill_(-inf);
      a.sub_(at::amax(a, 1, /*keepdim=*/true)).exp_();
      break;
    }
  }
  const at::Tensor total = a.sum(1).to(at::kDouble);           // Σ_j w_ij
  const at::Tensor weighted = a.xlogy_(a).sum(1).to(at::kDouble);  // Σ_j w_ij log w_ij, in place
  const at::Tensor entropy = total.log() - weighted / total;
  const at::Tensor ok = total.gt(0.0).logical_and(at::isfinite(total));
  return {entropy, defined.defined() ? ok.logical_and(defined) : ok};
}

}  // namespace

ApeResult Result::ape(int layer, metrics::ApePolicy policy, const ProximityOptions& options) const {
  const Manifest& m = *data_->manifest;
  const size_t slot = m.slot(layer);
  const int64_t n = num_tokens();
  if (n < 2) {
    throw Error(ErrorCode::kInvalidArgument,
                "Attention Proximity Entropy needs at least 2 tokens (it averages over the other tokens); this "
                "text has " +
                    std::to_string(n));
  }
  const auto inputs = proximity_inputs(slot, options.rope);
  const at::Tensor &queries = inputs.first, &keys = inputs.second;
  c10::InferenceMode guard;
  return guarded("ape", [&] {
    const double half_c = 0.5 / (m.num_heads * std::sqrt(static_cast<double>(keys.size(2))));
    const auto [u, v] = operands(queries, keys);
    const at::Tensor v_float =
        u.scalar_type() == at::kFloat || reduced_products(keys.device()) ? at::Tensor() : v.to(at::kFloat);
    const int64_t tile = std::max<int64_t>(1, std::min<int64_t>(n, kTileElements / n));
    const bool fused = fused_tiles(keys.device());
    at::Tensor tokens = at::empty({n}, keys.options().dtype(at::kDouble));
    at::Tensor defined = at::empty({n}, keys.options().dtype(at::kBool));
    for (int64_t first = 0; first < n; first += tile) {
      const int64_t rows = std::min(tile, n - first);
      auto [entropy, ok] =
          tile_entropy(product(u.narrow(0, first, rows), v, v_float), first, half_c, policy, fused);
      tokens.narrow(0, first, rows).copy_(entropy);
      defined.narrow(0, first, rows).copy_(ok);
    }
    ApeResult out;
    out.policy = policy;
    const int64_t defined_rows = defined.sum().item<int64_t>();
    out.undefined_rows = n - defined_rows;
    tokens.masked_fill_(defined.logical_not(), std::numeric_limits<double>::quiet_NaN());
    if (defined_rows > 0) {
      finite(tokens.masked_select(defined), "ape");  // undefined rows are NaN by definition, the others are finite
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
