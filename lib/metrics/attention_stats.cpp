// Statistics of attention weights: per-query entropy (raw and normalised by the log of the visible keys),
// the largest weight, the most attended token, top-k arcs, and heads ranked by how they link two tokens.
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <numeric>

#include "attnprox/error.hpp"
#include "attnprox/metrics.hpp"
#include "layer_sums.hpp"

namespace attnprox::metrics {

int64_t Visibility::visible_keys(int64_t query, int64_t keys) const {
  int64_t first = 0, last = keys - 1;  // HF: causal windows keep i − j < W, bidirectional ones |i − j| ≤ W
  if (causal) {
    last = std::min(last, query);
    if (sliding_window) first = std::max<int64_t>(0, query - *sliding_window + 1);
  } else if (sliding_window) {
    first = std::max<int64_t>(0, query - *sliding_window);
    last = std::min(last, query + *sliding_window);
  }
  return std::max<int64_t>(0, last - first + 1);
}

bool Visibility::sees(int64_t query, int64_t key) const {
  if (causal) return key <= query && (!sliding_window || query - key < *sliding_window);
  return !sliding_window || std::abs(query - key) <= *sliding_window;
}

AttentionStats attention_stats(const Eigen::Ref<const Eigen::MatrixXd>& weights, const Visibility& visibility) {
  const int64_t n = weights.rows(), nk = weights.cols();
  if (n == 0 || nk == 0)
    throw Error(ErrorCode::kInvalidArgument, "attention statistics need at least one query and key");
  detail::require_finite(weights, "the attention weights");
  AttentionStats s;
  s.entropy.resize(n);
  s.normalized_entropy.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    double h = 0;
    for (int64_t j = 0; j < nk; ++j) {
      const double p = weights(i, j);
      if (p > 0) h -= p * std::log(p);
    }
    s.entropy[i] = h;
    const int64_t visible = visibility.visible_keys(i, nk);
    s.normalized_entropy[i] = visible > 1 ? h / std::log(static_cast<double>(visible)) : 0.0;
  }
  s.mean_entropy = s.entropy.mean();
  s.mean_normalized_entropy = s.normalized_entropy.mean();
  // Each query's largest weight over the keys it sees; then the largest of those over the queries seeing two keys.
  s.max_weights.resize(n);
  s.argmax_keys.resize(n);
  bool any_two = false;
  for (int64_t i = 0; i < n; ++i) {
    int64_t best_key = -1;
    for (int64_t j = 0; j < nk; ++j) {
      if (visibility.sees(i, j) && (best_key < 0 || weights(i, j) > weights(i, best_key))) best_key = j;
    }
    if (best_key < 0) best_key = 0;  // a query that sees no key (a window beyond the keys): its first weight
    s.max_weights[i] = weights(i, best_key);
    s.argmax_keys[i] = best_key;
    any_two = any_two || visibility.visible_keys(i, nk) >= 2;
  }
  s.max_query = -1;
  for (int64_t i = 0; i < n; ++i) {
    if (any_two && visibility.visible_keys(i, nk) < 2) continue;
    if (s.max_query < 0 || s.max_weights[i] > s.max_weight) {
      s.max_query = i;
      s.max_weight = s.max_weights[i];
    }
  }
  s.max_key = s.argmax_keys[s.max_query];
  s.received = weights.colwise().sum().transpose();
  Eigen::Index best = 0;
  s.received.maxCoeff(&best);
  s.most_attended = best;
  return s;
}

std::vector<Arc> top_arcs(const Eigen::Ref<const Eigen::MatrixXd>& weights, int64_t query, int64_t k,
                          const Visibility& visibility) {
  if (query < 0 || query >= weights.rows()) {
    throw Error(ErrorCode::kOutOfRange, "query token " + std::to_string(query) + " requested, the text has " +
                                            std::to_string(weights.rows()) + " tokens");
  }
  if (k < 1) throw Error(ErrorCode::kInvalidArgument, "k must be at least 1");
  detail::require_finite(weights, "the attention weights");
  std::vector<Arc> arcs;
  for (int64_t j = 0; j < weights.cols(); ++j) {
    if (visibility.sees(query, j)) arcs.push_back({j, weights(query, j)});
  }
  std::stable_sort(arcs.begin(), arcs.end(), [](const Arc& x, const Arc& y) { return x.weight > y.weight; });
  arcs.resize(std::min<size_t>(arcs.size(), static_cast<size_t>(k)));
  return arcs;
}

std::vector<IndexedLink> rank_links(const std::vector<Eigen::MatrixXd>& heads, int64_t a, int64_t b) {
  std::vector<IndexedLink> links;
  for (size_t k = 0; k < heads.size(); ++k) {
    const Eigen::MatrixXd& p = heads[k];
    detail::require_finite(p, "the attention weights");
    const int64_t n = std::min(p.rows(), p.cols());
    if (a < 0 || b < 0 || a >= n || b >= n) {
      throw Error(ErrorCode::kOutOfRange, "tokens " + std::to_string(a) + " and " + std::to_string(b) +
                                              " requested, the text has " + std::to_string(n) + " tokens");
    }
    links.push_back({static_cast<int64_t>(k), std::max(p(a, b), p(b, a))});
  }
  std::stable_sort(links.begin(), links.end(),
                   [](const IndexedLink& x, const IndexedLink& y) { return x.score > y.score; });
  return links;
}

}  // namespace attnprox::metrics
