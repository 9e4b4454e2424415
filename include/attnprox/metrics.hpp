// attnprox — the measurements of Attention Proximity on plain arrays, in Eigen alone: no libtorch, no model. This is
// the reference implementation (double precision, written after the formulas of docs/measurements.md); the engine's
// libtorch implementation (Result::ap, ...) is checked against it. Use it on queries and keys from anywhere.
//
//   attnprox::metrics::QueriesKeys<float> qk{queries, keys, /*heads=*/12, /*kv_heads=*/12, /*tokens=*/N, /*d=*/64};
//   double ap = attnprox::metrics::ap(qk);
//
// Definitions, at one layer, with d_k = d:
//   A_h = Q_h K_{g(h)}ᵀ / sqrt(d)   (g(h) = h / (H / Hkv), grouped-query attention)
//   A_raw = (1/H) Σ_h A_h,   A = (A_raw + A_rawᵀ) / 2                     (the proximity matrix, N × N)
//   AP_i = 1/(N−1) Σ_{j≠i} A_ij,   AP = (1/N) Σ_i AP_i
//   AP_j^(S) = (1/|S|) Σ_{i∈S} A_ij, j = 1..N                             (S: a set of token positions)
//   p_ij = A_ij / Σ_{k≠i} A_ik,   iAPE_i = −Σ_{j≠i} p_ij log p_ij,   APE = mean over defined rows of iAPE_i
//     (the default policy, shift, is the original code's: p ∝ A − min + 1e-8, iAPE_i = −Σ p log(p + 1e-10))
//   length-corrected: iAPE_i / log(N−1), the entropy of a uniform row (0 where N−1 = 1: a single outcome)
// How p_ij is formed from a row whose entries may be negative is the ApePolicy.
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "attnprox/measures.hpp"

namespace attnprox::metrics {

/// One layer's queries [H, N, d] and keys [Hkv, N, d], row-major (C order), borrowed. Scalar: float, double,
/// Eigen::half or Eigen::bfloat16 (low precision values are widened; sums run in double).
template <typename Scalar>
struct QueriesKeys {
  const Scalar* queries = nullptr;
  const Scalar* keys = nullptr;
  int64_t heads = 0, kv_heads = 0, tokens = 0, head_dim = 0;
};

/// APE of one text, under the policy it was computed with (BasicApe, measures.hpp): tokens iAPE_i, NaN exactly where
/// the row is undefined; defined 1 where iAPE_i is defined. The same record as the engine's ApeResult, in Eigen.
using Ape = BasicApe<Eigen::VectorXd, std::vector<uint8_t>>;

// --- from queries and keys: never an N × N matrix, but for `proximity` ---

template <typename Scalar>
Eigen::MatrixXd proximity(const QueriesKeys<Scalar>& qk);
/// AP_i for every token, O(N·H·d) through sums of Q and K. Needs N ≥ 2.
template <typename Scalar>
Eigen::VectorXd ap_tokens(const QueriesKeys<Scalar>& qk);
template <typename Scalar>
double ap(const QueriesKeys<Scalar>& qk);
/// AP^(S) for every token j, O(N·H·d). `subset`: token positions; duplicates count once. Error(kOutOfRange) for
/// a position outside 0..N−1, kInvalidArgument for an empty subset.
template <typename Scalar>
Eigen::VectorXd subset_proximity(const QueriesKeys<Scalar>& qk, const std::vector<int64_t>& subset);
/// APE, streaming over tiles of rows of A (memory O(tile · N)). Needs N ≥ 2.
template <typename Scalar>
Ape ape(const QueriesKeys<Scalar>& qk, ApePolicy policy = kDefaultApePolicy);

// --- from a ready-made proximity matrix A (N × N) ---

Eigen::VectorXd ap_tokens(const Eigen::Ref<const Eigen::MatrixXd>& a);
double ap(const Eigen::Ref<const Eigen::MatrixXd>& a);
Eigen::VectorXd subset_proximity(const Eigen::Ref<const Eigen::MatrixXd>& a, const std::vector<int64_t>& subset);
Ape ape(const Eigen::Ref<const Eigen::MatrixXd>& a, ApePolicy policy = kDefaultApePolicy);

// --- attention statistics, on attention weights P (N queries × Nk keys, rows sum to 1) ---

/// Which keys a query may see, to count them: causal (j ≤ i) and/or a sliding window (HF's conventions).
struct Visibility {
  bool causal = false;
  std::optional<int64_t> sliding_window;
  int64_t visible_keys(int64_t query, int64_t keys) const;
  /// Whether `query` may see `key`: causal, key ≤ query and (window W) query − key < W; bidirectional with a
  /// window, |query − key| ≤ W.
  bool sees(int64_t query, int64_t key) const;
};

/// Entropy per query, the largest weights and the attention each key receives (BasicAttentionStats,
/// measures.hpp). The same record as the engine's AttentionStatistics, in Eigen.
using AttentionStats = BasicAttentionStats<Eigen::VectorXd, Eigen::Matrix<int64_t, Eigen::Dynamic, 1>>;
AttentionStats attention_stats(const Eigen::Ref<const Eigen::MatrixXd>& weights, const Visibility& visibility);

/// The k largest weights of one query's row over the keys it sees, largest first (ties: the lower key first);
/// fewer than k when it sees fewer keys.
std::vector<Arc> top_arcs(const Eigen::Ref<const Eigen::MatrixXd>& weights, int64_t query, int64_t k,
                          const Visibility& visibility = {});

/// How strongly the weights matrix at `index` in the list given to rank_links links two tokens a and b:
/// max(P[a, b], P[b, a]). (The engine's HeadLink holds the same score for a (layer, head) of a model.)
struct IndexedLink {
  int64_t index;  // position in the list given
  double score;
};
/// The former name of IndexedLink.
using Link [[deprecated("use attnprox::metrics::IndexedLink")]] = IndexedLink;
/// Every weights matrix of `heads` ranked by how strongly it links tokens a and b, strongest first (equal scores in
/// the order given).
std::vector<IndexedLink> rank_links(const std::vector<Eigen::MatrixXd>& heads, int64_t a, int64_t b);

}  // namespace attnprox::metrics
