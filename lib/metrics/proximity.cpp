// The proximity matrix A, AP_i, AP and AP^(S) (see include/attnprox/metrics.hpp for the formulas).
#include <Eigen/Core>
#include <cmath>
#include <set>

#include "layer_sums.hpp"

namespace attnprox::metrics {
namespace detail {

namespace {
template <typename Scalar>
double widen(Scalar x) {
  return static_cast<double>(static_cast<float>(x));
}
template <>
double widen<double>(double x) {
  return x;
}
}  // namespace

template <typename Scalar>
GroupedLayer group(const QueriesKeys<Scalar>& qk) {
  if (!qk.queries || !qk.keys) throw Error(ErrorCode::kInvalidArgument, "queries and keys must not be null");
  if (qk.heads < 1 || qk.kv_heads < 1 || qk.tokens < 0 || qk.head_dim < 1) {
    throw Error(ErrorCode::kInvalidArgument, "heads, key heads and head size must be positive, tokens non-negative");
  }
  if (qk.heads % qk.kv_heads != 0) {
    throw Error(ErrorCode::kInvalidArgument, "query heads (" + std::to_string(qk.heads) +
                                                 ") must be a multiple of key heads (" + std::to_string(qk.kv_heads) +
                                                 ")");
  }
  const int64_t n = qk.tokens, d = qk.head_dim, groups = qk.kv_heads, per_group = qk.heads / qk.kv_heads;
  GroupedLayer out;
  out.tokens = n;
  out.c = 1.0 / (static_cast<double>(qk.heads) * std::sqrt(static_cast<double>(d)));
  out.queries = RowMatrix::Zero(n, groups * d);
  out.keys = RowMatrix::Zero(n, groups * d);
  // queries[h][i][e] at (h·N + i)·d + e; Qg[i][g·d + e] = Σ_{h reading g} queries[h][i][e]
  for (int64_t h = 0; h < qk.heads; ++h) {
    const int64_t g = h / per_group;
    for (int64_t i = 0; i < n; ++i) {
      const Scalar* q = qk.queries + (h * n + i) * d;
      for (int64_t e = 0; e < d; ++e) out.queries(i, g * d + e) += widen(q[e]);
    }
  }
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t i = 0; i < n; ++i) {
      const Scalar* k = qk.keys + (g * n + i) * d;
      for (int64_t e = 0; e < d; ++e) out.keys(i, g * d + e) = widen(k[e]);
    }
  }
  require_finite(out.queries, "the queries");
  require_finite(out.keys, "the keys");
  return out;
}

void need_tokens(int64_t tokens, int64_t min_tokens, const char* what) {
  if (tokens < min_tokens) {
    throw Error(ErrorCode::kInvalidArgument, std::string(what) + " needs at least " + std::to_string(min_tokens) +
                                                 " tokens (it averages over the other tokens); this text has " +
                                                 std::to_string(tokens));
  }
}

}  // namespace detail

using detail::GroupedLayer;

template <typename Scalar>
Eigen::MatrixXd proximity(const QueriesKeys<Scalar>& qk) {
  const GroupedLayer layer = detail::group(qk);
  // A_raw = c · Qg Kgᵀ; A = (A_raw + A_rawᵀ) / 2
  const Eigen::MatrixXd raw = layer.c * (layer.queries * layer.keys.transpose());
  Eigen::MatrixXd out = 0.5 * (raw + raw.transpose());
  detail::require_finite(out, "the proximity matrix", true);
  return out;
}

template <typename Scalar>
Eigen::VectorXd ap_tokens(const QueriesKeys<Scalar>& qk) {
  const GroupedLayer layer = detail::group(qk);
  const int64_t n = layer.tokens;
  detail::need_tokens(n, 2, "Attention Proximity");
  // Σ_{j≠i} A_ij = (row_i + col_i)/2 − A_raw[i,i], with row_i = c Qg_i·ΣK, col_i = c ΣQg·Kg_i.
  const Eigen::RowVectorXd key_sum = layer.keys.colwise().sum();
  const Eigen::RowVectorXd query_sum = layer.queries.colwise().sum();
  const Eigen::VectorXd row = layer.c * (layer.queries * key_sum.transpose());
  const Eigen::VectorXd col = layer.c * (layer.keys * query_sum.transpose());
  const Eigen::VectorXd diag = layer.c * layer.queries.cwiseProduct(layer.keys).rowwise().sum();
  Eigen::VectorXd out = (0.5 * (row + col) - diag) / static_cast<double>(n - 1);
  detail::require_finite(out, "AP_i", true);
  return out;
}

template <typename Scalar>
double ap(const QueriesKeys<Scalar>& qk) {
  return ap_tokens(qk).mean();
}

namespace {
std::vector<int64_t> distinct_positions(const std::vector<int64_t>& subset, int64_t n) {
  if (subset.empty()) throw Error(ErrorCode::kInvalidArgument, "the subset is empty: no token positions given");
  std::set<int64_t> seen;
  for (int64_t i : subset) {
    if (i < 0 || i >= n) {
      throw Error(ErrorCode::kOutOfRange, "token " + std::to_string(i) + " in the subset, the text has " +
                                              std::to_string(n) + " tokens (0.." + std::to_string(n - 1) + ")");
    }
    seen.insert(i);
  }
  return {seen.begin(), seen.end()};
}
}  // namespace

template <typename Scalar>
Eigen::VectorXd subset_proximity(const QueriesKeys<Scalar>& qk, const std::vector<int64_t>& subset) {
  const GroupedLayer layer = detail::group(qk);
  const std::vector<int64_t> s = distinct_positions(subset, layer.tokens);
  // Σ_{i∈S} A_ij = (c/2) (ΣS Qg · Kg_j + Qg_j · ΣS Kg)
  Eigen::RowVectorXd query_sum = Eigen::RowVectorXd::Zero(layer.queries.cols());
  Eigen::RowVectorXd key_sum = Eigen::RowVectorXd::Zero(layer.keys.cols());
  for (int64_t i : s) {
    query_sum += layer.queries.row(i);
    key_sum += layer.keys.row(i);
  }
  const Eigen::VectorXd total =
      0.5 * layer.c * (layer.keys * query_sum.transpose() + layer.queries * key_sum.transpose());
  Eigen::VectorXd out = total / static_cast<double>(s.size());
  detail::require_finite(out, "the subset proximity", true);
  return out;
}

Eigen::VectorXd ap_tokens(const Eigen::Ref<const Eigen::MatrixXd>& a) {
  if (a.rows() != a.cols()) throw Error(ErrorCode::kInvalidArgument, "the proximity matrix must be square");
  detail::require_finite(a, "the proximity matrix");
  detail::need_tokens(a.rows(), 2, "Attention Proximity");
  Eigen::VectorXd out = (a.rowwise().sum() - a.diagonal()) / static_cast<double>(a.rows() - 1);
  detail::require_finite(out, "AP_i", true);
  return out;
}

double ap(const Eigen::Ref<const Eigen::MatrixXd>& a) {
  return ap_tokens(a).mean();
}

Eigen::VectorXd subset_proximity(const Eigen::Ref<const Eigen::MatrixXd>& a, const std::vector<int64_t>& subset) {
  if (a.rows() != a.cols()) throw Error(ErrorCode::kInvalidArgument, "the proximity matrix must be square");
  detail::require_finite(a, "the proximity matrix");
  const std::vector<int64_t> s = distinct_positions(subset, a.rows());
  Eigen::VectorXd total = Eigen::VectorXd::Zero(a.cols());
  for (int64_t i : s) total += a.row(i).transpose();
  Eigen::VectorXd out = total / static_cast<double>(s.size());
  detail::require_finite(out, "the subset proximity", true);
  return out;
}

#define ATTNPROX_INSTANTIATE(Scalar)                                                                  \
  template Eigen::MatrixXd proximity(const QueriesKeys<Scalar>&);                                     \
  template Eigen::VectorXd ap_tokens(const QueriesKeys<Scalar>&);                                     \
  template double ap(const QueriesKeys<Scalar>&);                                                     \
  template Eigen::VectorXd subset_proximity(const QueriesKeys<Scalar>&, const std::vector<int64_t>&); \
  template detail::GroupedLayer detail::group(const QueriesKeys<Scalar>&);
ATTNPROX_INSTANTIATE(float)
ATTNPROX_INSTANTIATE(double)
ATTNPROX_INSTANTIATE(Eigen::half)
ATTNPROX_INSTANTIATE(Eigen::bfloat16)
#undef ATTNPROX_INSTANTIATE

}  // namespace attnprox::metrics
