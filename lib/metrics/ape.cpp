// Attention Proximity Entropy (see include/attnprox/metrics.hpp): the policies for rows with negative entries, and
// APE streamed over tiles of rows of A so that memory stays O(tile · N).
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <limits>

#include "layer_sums.hpp"

namespace attnprox::metrics {

ApePolicy parse_ape_policy(const std::string& name) {
  if (name == "literal") return ApePolicy::kLiteral;
  if (name == "shift") return ApePolicy::kShift;
  if (name == "clamp") return ApePolicy::kClamp;
  if (name == "softmax") return ApePolicy::kSoftmax;
  throw Error(ErrorCode::kInvalidArgument, "APE policy \"" + name + "\" is not one of literal, shift, clamp, softmax");
}

std::string to_string(ApePolicy policy) {
  switch (policy) {
    case ApePolicy::kLiteral: return "literal";
    case ApePolicy::kShift: return "shift";
    case ApePolicy::kClamp: return "clamp";
    case ApePolicy::kSoftmax: return "softmax";
  }
  return "unknown";
}

namespace detail {

RowEntropy row_entropy(const double* row, int64_t n, int64_t skip, ApePolicy policy) {
  // −Σ p log p over the entries j ≠ skip, p ∝ weight(A_ij); 0·log 0 = 0.
  auto entropy_of = [&](auto weight) -> RowEntropy {
    double total = 0;
    for (int64_t j = 0; j < n; ++j) {
      if (j != skip) total += weight(row[j]);
    }
    if (!(total > 0) || !std::isfinite(total)) return {false, 0};
    double h = 0;
    for (int64_t j = 0; j < n; ++j) {
      if (j == skip) continue;
      const double p = weight(row[j]) / total;
      if (p > 0) h -= p * std::log(p);
    }
    return {true, h};
  };
  switch (policy) {
    case ApePolicy::kLiteral:
      for (int64_t j = 0; j < n; ++j) {
        if (j != skip && row[j] < 0) return {false, 0};
      }
      return entropy_of([](double x) { return x; });
    case ApePolicy::kShift: {
      // The original Attention Proximity code's formula: w = A − min + 1e-8, p = w / Σw, −Σ p log(p + 1e-10).
      double lowest = std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < n; ++j) {
        if (j != skip) lowest = std::min(lowest, row[j]);
      }
      double total = 0;
      for (int64_t j = 0; j < n; ++j) {
        if (j != skip) total += row[j] - lowest + kShiftOffset;
      }
      if (!(total > 0) || !std::isfinite(total)) return {false, 0};
      double h = 0;
      for (int64_t j = 0; j < n; ++j) {
        if (j == skip) continue;
        const double p = (row[j] - lowest + kShiftOffset) / total;
        h -= p * std::log(p + kShiftLogOffset);
      }
      return {true, h};
    }
    case ApePolicy::kClamp: return entropy_of([](double x) { return std::max(x, 0.0); });
    case ApePolicy::kSoftmax: {
      double highest = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < n; ++j) {
        if (j != skip) highest = std::max(highest, row[j]);
      }
      return entropy_of([highest](double x) { return std::exp(x - highest); });
    }
  }
  return {false, 0};
}

void finish_ape(Ape& out, int64_t tokens) {
  // Length correction: divide by log(N−1), the entropy of a uniform row; a row with a single entry (N = 2) is
  // certain, its corrected entropy 0.
  const double uniform = tokens > 2 ? std::log(static_cast<double>(tokens - 1)) : 0.0;
  double sum = 0, sum_normalized = 0;
  int64_t defined = 0;
  for (int64_t i = 0; i < tokens; ++i) {
    if (!out.defined[i]) continue;
    sum += out.tokens[i];
    sum_normalized += uniform > 0 ? out.tokens[i] / uniform : 0.0;
    ++defined;
  }
  out.undefined_rows = tokens - defined;
  if (defined > 0) {
    out.value = sum / static_cast<double>(defined);
    out.normalized = sum_normalized / static_cast<double>(defined);
  }
}

}  // namespace detail

namespace {
Ape start(int64_t tokens) {
  Ape out;
  out.tokens = Eigen::VectorXd::Constant(tokens, std::numeric_limits<double>::quiet_NaN());
  out.defined.assign(static_cast<size_t>(tokens), 0);
  return out;
}

void take_row(Ape& out, int64_t i, detail::RowEntropy r) {
  if (!r.defined) return;
  out.tokens[i] = r.entropy;
  out.defined[static_cast<size_t>(i)] = 1;
}
}  // namespace

template <typename Scalar>
Ape ape(const QueriesKeys<Scalar>& qk, ApePolicy policy) {
  const detail::GroupedLayer layer = detail::group(qk);
  const int64_t n = layer.tokens;
  detail::need_tokens(n, 2, "Attention Proximity Entropy");
  // A = (c/2) U Vᵀ with U = [Qg | Kg] and V = [Kg | Qg]: A_ij = (c/2)(Qg_i·Kg_j + Kg_i·Qg_j), symmetric.
  const int64_t width = layer.queries.cols();
  detail::RowMatrix u(n, 2 * width), v(n, 2 * width);
  u << layer.queries, layer.keys;
  v << layer.keys, layer.queries;
  Ape out = start(n);
  out.policy = policy;
  const int64_t tile = std::max<int64_t>(1, std::min<int64_t>(n, (int64_t{1} << 22) / std::max<int64_t>(n, 1)));
  Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> rows;
  for (int64_t start_row = 0; start_row < n; start_row += tile) {
    const int64_t count = std::min(tile, n - start_row);
    rows.noalias() = (0.5 * layer.c) * (u.middleRows(start_row, count) * v.transpose());
    detail::require_finite(rows, "the proximity matrix", true);
    for (int64_t r = 0; r < count; ++r) {
      take_row(out, start_row + r, detail::row_entropy(rows.row(r).data(), n, start_row + r, policy));
    }
  }
  detail::finish_ape(out, n);
  return out;
}

Ape ape(const Eigen::Ref<const Eigen::MatrixXd>& a, ApePolicy policy) {
  if (a.rows() != a.cols()) throw Error(ErrorCode::kInvalidArgument, "the proximity matrix must be square");
  const int64_t n = a.rows();
  detail::need_tokens(n, 2, "Attention Proximity Entropy");
  detail::require_finite(a, "the proximity matrix");
  Ape out = start(n);
  out.policy = policy;
  Eigen::VectorXd row(n);
  for (int64_t i = 0; i < n; ++i) {
    row = a.row(i).transpose();
    take_row(out, i, detail::row_entropy(row.data(), n, i, policy));
  }
  detail::finish_ape(out, n);
  return out;
}

template Ape ape(const QueriesKeys<float>&, ApePolicy);
template Ape ape(const QueriesKeys<double>&, ApePolicy);
template Ape ape(const QueriesKeys<Eigen::half>&, ApePolicy);
template Ape ape(const QueriesKeys<Eigen::bfloat16>&, ApePolicy);

}  // namespace attnprox::metrics
