// Fused CUDA kernels of the engine, built where libtorch has CUDA and a CUDA compiler is found
// (ATTNPROX_CUDA_KERNELS, lib/CMakeLists.txt); elsewhere the same work runs as ATen operations (ape.cpp, rope.cpp).
//
// tile_entropy: one tile of APE's rows (ape.cpp) read from memory a few times per row instead of the dozen ATen passes
// that write and read the [T, N] float32 tile in between. Each block takes one row of the tile: pass 1 its minimum
// or maximum over the other tokens (where the policy needs one), pass 2 the total Σ_j w_ij (and Σ_j w_ij log w_ij),
// pass 3 (the shift policy only) −Σ_j p_ij log(p_ij + 1e-10). The values are the ATen path's, operation by
// operation in float32 (w, p and the logarithms), with sums accumulated in float64 (the ATen path sums in float32
// and widens the sum): the two agree to float32 rounding, and both are checked against float64 NumPy on the GPU
// (tests/gpu/check_cuda.py).
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>

#include "attnprox/measures.hpp"
#include "kernels.hpp"

namespace attnprox::cuda {

namespace {

constexpr int kThreads = 512;
constexpr int kWarps = kThreads / 32;

// The policies as the kernel sees them (metrics::ApePolicy, mapped by tile_entropy below).
enum Policy : int { kLiteral, kShift, kClamp, kSoftmax };

template <typename T, typename Op>
__device__ T warp_reduce(T value, Op op) {
  for (int offset = 16; offset > 0; offset /= 2) value = op(value, __shfl_xor_sync(0xffffffffu, value, offset));
  return value;
}

/// The block's reduction of `value` (every thread gets it); `scratch` holds kWarps values.
template <typename T, typename Op>
__device__ T block_reduce(T value, Op op, T identity, T* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  value = warp_reduce(value, op);
  __syncthreads();  // scratch may still be read by a previous reduction
  if (lane == 0) scratch[warp] = value;
  __syncthreads();
  value = lane < kWarps ? scratch[lane] : identity;
  return warp_reduce(value, op);
}

struct Min {
  __device__ float operator()(float a, float b) const { return fminf(a, b); }
};
struct Max {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};
struct Add {
  __device__ double operator()(double a, double b) const { return a + b; }
};
struct Or {
  __device__ int operator()(int a, int b) const { return a | b; }
};

// Products and sums in float32 round as the ATen operations do (no contraction into fused multiply-adds).
__device__ __forceinline__ float mul(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ float add(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ float sub(float a, float b) { return __fsub_rn(a, b); }

/// w_ij of one entry j ≠ i, from the tile's value `x` (A·(2/c)); `bound` is pass 1's minimum or maximum, `offset`
/// the shift policy's 1e-8 (metrics::kShiftOffset, in float32).
__device__ __forceinline__ float weight(int policy, float x, float half_c, float bound, float offset) {
  switch (policy) {
    case kLiteral:
      return x;
    case kShift:  // (A − min) + 1e-8, A = x·(c/2)
      return add(sub(mul(x, half_c), bound), offset);
    case kClamp:  // max(x, 0) that keeps a NaN, as clamp_min does (fmaxf would drop it)
      return x < 0.0f ? 0.0f : x;
    default:  // kSoftmax: exp(A − max)
      return expf(sub(mul(x, half_c), bound));
  }
}

__device__ __forceinline__ double xlogx(float w) {  // as at::xlogy(w, w): 0 at w = 0
  return w == 0.0f ? 0.0 : static_cast<double>(mul(w, logf(w)));
}

__global__ void __launch_bounds__(kThreads)
    tile_entropy_kernel(const float* __restrict__ tile, int64_t n, int64_t first, int policy, float half_c,
                        float offset, float log_offset, double* __restrict__ entropy, bool* __restrict__ defined) {
  __shared__ float scratch_f[kWarps];
  __shared__ double scratch_d[kWarps];
  __shared__ int scratch_i[kWarps];
  const int64_t row = blockIdx.x;
  const float* a = tile + row * n;
  const int64_t diagonal = first + row;
  const float inf = __int_as_float(0x7f800000);

  // Pass 1: the minimum (literal: is any w negative; shift: the offset) or the maximum (softmax) over j ≠ i, of A
  // in the policy's units (x for literal, x·(c/2) for shift and softmax, rounded as ATen rounds the product).
  float bound = 0.0f;
  int nan_seen = 0;  // fminf/fmaxf skip NaN where ATen's amin/amax propagate it: a NaN makes the row undefined
  if (policy != kClamp) {
    const bool is_max = policy == kSoftmax;
    float local = is_max ? -inf : inf;
    for (int64_t j = threadIdx.x; j < n; j += kThreads) {
      if (j == diagonal) continue;
      const float x = __ldg(a + j);
      const float v = policy == kLiteral ? x : mul(x, half_c);
      nan_seen |= isnan(v);
      local = is_max ? fmaxf(local, v) : fminf(local, v);
    }
    bound = is_max ? block_reduce(local, Max{}, -inf, scratch_f) : block_reduce(local, Min{}, inf, scratch_f);
    nan_seen = block_reduce(nan_seen, Or{}, 0, scratch_i);
  }

  // Pass 2: Σ_j w_ij and, but for shift, Σ_j w_ij log w_ij (j ≠ i; w_ii = 0).
  const float weight_bound = policy == kLiteral ? 0.0f : bound;
  double total = 0.0, weighted = 0.0;
  for (int64_t j = threadIdx.x; j < n; j += kThreads) {
    if (j == diagonal) continue;
    const float w = weight(policy, __ldg(a + j), half_c, weight_bound, offset);
    total += w;
    if (policy != kShift) weighted += xlogx(w);
  }
  total = block_reduce(total, Add{}, 0.0, scratch_d);
  if (policy != kShift) weighted = block_reduce(weighted, Add{}, 0.0, scratch_d);

  double value;
  bool ok = total > 0.0 && isfinite(total) && !nan_seen;
  if (policy == kShift) {
    // Pass 3: −Σ_j p_ij log(p_ij + 1e-10), p = w / Σw (in float32, as the original code and the ATen path).
    const float total_f = static_cast<float>(total);
    double sum = 0.0;
    for (int64_t j = threadIdx.x; j < n; j += kThreads) {
      if (j == diagonal) continue;
      const float p = __fdiv_rn(weight(policy, __ldg(a + j), half_c, bound, offset), total_f);
      sum += static_cast<double>(mul(p, logf(add(p, log_offset))));
    }
    value = -block_reduce(sum, Add{}, 0.0, scratch_d);
    ok = ok && isfinite(value);
  } else {
    value = log(total) - weighted / total;
    if (policy == kLiteral) ok = ok && bound >= 0.0f;
  }
  if (threadIdx.x == 0) {
    entropy[row] = value;
    defined[row] = ok;
  }
}

}  // namespace

std::pair<at::Tensor, at::Tensor> tile_entropy(const at::Tensor& tile, int64_t first, double half_c,
                                               metrics::ApePolicy ape_policy) {
  TORCH_CHECK(tile.is_cuda() && tile.scalar_type() == at::kFloat && tile.dim() == 2 && tile.is_contiguous(),
              "tile_entropy: a contiguous float32 CUDA tile [T, N]");
  int policy = kShift;
  switch (ape_policy) {
    case metrics::ApePolicy::kLiteral: policy = kLiteral; break;
    case metrics::ApePolicy::kShift: policy = kShift; break;
    case metrics::ApePolicy::kClamp: policy = kClamp; break;
    case metrics::ApePolicy::kSoftmax: policy = kSoftmax; break;
  }
  const c10::cuda::CUDAGuard device(tile.device());
  const int64_t rows = tile.size(0), n = tile.size(1);
  at::Tensor entropy = at::empty({rows}, tile.options().dtype(at::kDouble));
  at::Tensor defined = at::empty({rows}, tile.options().dtype(at::kBool));
  if (rows == 0) return {entropy, defined};
  TORCH_CHECK(rows <= std::numeric_limits<int32_t>::max(), "tile_entropy: too many rows in one tile");
  tile_entropy_kernel<<<static_cast<unsigned>(rows), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
      tile.data_ptr<float>(), n, first, policy, static_cast<float>(half_c), static_cast<float>(metrics::kShiftOffset),
      static_cast<float>(metrics::kShiftLogOffset), entropy.data_ptr<double>(), defined.data_ptr<bool>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {entropy, defined};
}

}  // namespace attnprox::cuda
