// The engine's fused CUDA kernels (kernels.cu). Compiled only where ATTNPROX_CUDA_KERNELS is 1 (libtorch with CUDA
// and a CUDA compiler at build time); callers keep an ATen path for every other build and device.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <utility>

#include "attnprox/measures.hpp"

namespace attnprox::cuda {

/// iAPE of rows first.. of A from their float32 tile `tile` [T, N] = A·(2/c) on a CUDA device, `half_c` = c/2, in
/// one kernel (the tile is read, not changed): (entropy [T] float64, defined [T] bool), as ape.cpp's ATen path.
std::pair<at::Tensor, at::Tensor> tile_entropy(const at::Tensor& tile, int64_t first, double half_c,
                                               metrics::ApePolicy policy);

}  // namespace attnprox::cuda
