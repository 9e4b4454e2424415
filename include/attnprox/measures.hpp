// attnprox — the names the measurements share between the engine (engine.hpp, libtorch) and the reference
// implementation on plain arrays (metrics.hpp, Eigen), without either: the engine's public headers need these and
// nothing of Eigen. Definitions: docs/measurements.md.
//
// A result both compute is defined once here, templated on where its per-token arrays are stored; each side names
// its own storage: the engine's ApeResult and AttentionStatistics hold at::Tensor, metrics' Ape and AttentionStats
// hold Eigen vectors. They are one concept in two storages, with the same fields, meaning the same.
#pragma once

#include <cstdint>
#include <optional>
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

/// APE of one text at one layer, computed under `policy`. Undefined rows are counted, never averaged in.
/// Values: the per-token entropies [N] (float64); Flags: [N] true (1) exactly where iAPE_i is defined.
/// The engine's ApeResult is BasicApe<at::Tensor, at::Tensor> (tokens float64, defined bool);
/// metrics::Ape is BasicApe<Eigen::VectorXd, std::vector<uint8_t>>.
template <typename Values, typename Flags>
struct BasicApe {
  std::optional<double> value;       // mean iAPE over the defined rows; none when no row is defined
  std::optional<double> normalized;  // length-corrected: mean of iAPE_i / log(N−1) over the defined rows
  int64_t undefined_rows = 0;
  Values tokens;  // iAPE_i; NaN exactly where the row is undefined
  Flags defined;  // true (1) where iAPE_i is defined
  ApePolicy policy = kDefaultApePolicy;
};

/// Statistics of attention weights P (N queries × keys, rows summing to 1): one head, or the mean of a layer's
/// heads. Values: float64 arrays; Indices: int64 arrays. The engine's AttentionStatistics is
/// BasicAttentionStats<at::Tensor, at::Tensor>; metrics::AttentionStats is
/// BasicAttentionStats<Eigen::VectorXd, Eigen::Matrix<int64_t, Eigen::Dynamic, 1>>.
template <typename Values, typename Indices>
struct BasicAttentionStats {
  Values entropy;             // [N] per query: −Σ_j P_ij log P_ij, nats
  Values normalized_entropy;  // [N] per query: entropy / log(visible keys); 0 where a single key is visible
  double mean_entropy = 0, mean_normalized_entropy = 0;
  // The largest weight, and where, over the queries that see at least two keys (a query that sees one key gives it
  // weight 1: causal models' first token); over every query when none sees two (N = 1).
  double max_weight = 0;
  int64_t max_query = 0, max_key = 0;
  Values max_weights;         // [N] per query: its largest weight over the keys it sees
  Indices argmax_keys;        // [N] per query: that key (the first on ties)
  Values received;            // [keys] per key: Σ_i P_ij, the attention it receives (column sums)
  int64_t most_attended = 0;  // argmax of `received` (the first on ties)
};
}  // namespace attnprox::metrics
