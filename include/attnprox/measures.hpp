// attnprox — the names the measurements share between the engine (engine.hpp, libtorch) and the reference
// implementation on plain arrays (metrics.hpp, Eigen), without either: the engine's public headers need these and
// nothing of Eigen. Definitions: docs/measurements.md.
#pragma once

#include <cstdint>
#include <string>

namespace attnprox::metrics {

/// How APE turns row i of A (its entries j ≠ i) into a distribution. Every policy leaves a row undefined when
/// its normaliser is not positive; 0·log 0 = 0.
enum class ApePolicy {
  kLiteral,  // p_ij = A_ij / Σ A_ik as written; also undefined when any A_ij < 0
  kShift,    // p_ij ∝ A_ij − min_{k≠i} A_ik + 1e-8 and iAPE_i = −Σ p_ij log(p_ij + 1e-10), as the original code
             // computes it (docs/measurements.md §6); undefined only for a non-finite row
  kClamp,    // p_ij ∝ max(A_ij, 0)
  kSoftmax,  // p_ij = exp(A_ij) / Σ exp(A_ik)
};
/// The two constants of the shift policy, the original Attention Proximity code's (scorer.py `_row_entropy`).
constexpr double kShiftOffset = 1e-8;
constexpr double kShiftLogOffset = 1e-10;
/// The default, the original Attention Proximity code's policy: shift.
constexpr ApePolicy kDefaultApePolicy = ApePolicy::kShift;
/// "literal", "shift", "clamp", "softmax"; Error(kInvalidArgument) otherwise.
ApePolicy parse_ape_policy(const std::string& name);
std::string to_string(ApePolicy policy);

struct Arc {
  int64_t key;
  double weight;
};
}  // namespace attnprox::metrics
