// Internal to the metrics library: one layer's queries and keys in double, grouped by key head.
#pragma once

#include <Eigen/Core>

#include "attnprox/error.hpp"
#include "attnprox/metrics.hpp"

namespace attnprox::metrics::detail {

using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Qg: for every key head g the sum of the query heads that read it, and Kg, both as N × (Hkv·d) matrices whose
/// columns [g·d, (g+1)·d) belong to key head g; c = 1 / (H · sqrt(d)). Then A_raw = c · Qg Kgᵀ.
struct GroupedLayer {
  RowMatrix queries;  // Qg, N × (Hkv·d)
  RowMatrix keys;     // Kg, N × (Hkv·d)
  double c = 0;
  int64_t tokens = 0;
};

template <typename Scalar>
GroupedLayer group(const QueriesKeys<Scalar>& qk);

/// Checks that a layer has at least `min_tokens` tokens (the measurement's name in the message).
void need_tokens(int64_t tokens, int64_t min_tokens, const char* what);

/// Error(kInvalidArgument) unless every value is finite: `what` is an input ("the attention weights") or, with
/// `result`, a result that overflowed double (inputs too large); no measurement returns NaN or Inf with success.
template <typename Derived>
void require_finite(const Eigen::DenseBase<Derived>& values, const char* what, bool result = false) {
  if (values.allFinite()) return;
  throw Error(ErrorCode::kInvalidArgument, std::string(what) + (result ? " overflows double: the inputs are too large"
                                                                       : " must be finite: a NaN or Inf was found"));
}

/// iAPE of one row of A, the diagonal entry `skip` left out; defined = false when the policy cannot form a
/// distribution. Entropy in nats.
struct RowEntropy {
  bool defined;
  double entropy;
};
RowEntropy row_entropy(const double* row, int64_t n, int64_t skip, ApePolicy policy);

/// Fills `out` from per-row entropies.
void finish_ape(Ape& out, int64_t tokens);

}  // namespace attnprox::metrics::detail
