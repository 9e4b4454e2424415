// Statistics of attention weights on the device, streamed over tiles of queries so that long texts never hold all
// heads' N × N weights at once: per-query entropy, the largest weight, the most attended token, top-k arcs, and the
// heads that link two tokens.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cmath>

#include "attnprox/metrics.hpp"  // Visibility
#include "internal.hpp"

namespace attnprox {

namespace {

int64_t tile_rows(int64_t heads, int64_t n) {
  return std::max<int64_t>(1, std::min<int64_t>(n, (int64_t{1} << 24) / std::max<int64_t>(1, heads * n)));
}

/// Number of keys each query first_row.. may see [rows] (HF's window conventions), float64.
at::Tensor visible_keys(int64_t first_row, int64_t rows, int64_t nk, const AttentionSpec& spec,
                        const at::TensorOptions& options) {
  const at::Tensor i = at::arange(first_row, first_row + rows, options.dtype(at::kDouble));
  at::Tensor last = at::full({rows}, static_cast<double>(nk - 1), options.dtype(at::kDouble));
  at::Tensor first = at::zeros({rows}, options.dtype(at::kDouble));
  if (spec.causal) {
    last = at::minimum(last, i);
    if (spec.sliding_window) first = (i - static_cast<double>(*spec.sliding_window - 1)).clamp_min(0.0);
  } else if (spec.sliding_window) {
    first = (i - static_cast<double>(*spec.sliding_window)).clamp_min(0.0);
    last = at::minimum(last, i + static_cast<double>(*spec.sliding_window));
  }
  return (last - first + 1.0).clamp_min(0.0);
}

/// Per-query entropy of weights p [..., rows, Nk], and divided by log(visible keys) (0 for one key).
std::pair<at::Tensor, at::Tensor> entropies(const at::Tensor& p, const at::Tensor& visible) {
  const at::Tensor p64 = p.to(at::kDouble);
  const at::Tensor h = at::special_xlogy(p64, p64).sum(-1).neg_();
  const at::Tensor denominator = visible.log();
  const at::Tensor normalized = at::where(visible.gt(1.0), h / denominator.clamp_min(1e-300), at::zeros_like(h));
  return {h, normalized};
}

}  // namespace

at::Tensor Result::attention_entropy(int layer, bool normalized, const AttentionOptions& options) const {
  const Manifest& m = *data_->manifest;
  const size_t slot = m.slot(layer);
  const AttentionSpec spec = AttentionSpec::of(m.layers[slot], m.causal, options);
  c10::InferenceMode guard;
  return guarded("attention_entropy", [&] {
    const at::Tensor& q = data_->queries[slot];
    const at::Tensor& k = data_->keys[slot];
    const int64_t heads = q.size(0), n = q.size(1), nk = k.size(1);
    at::Tensor out = at::empty({heads, n}, q.options().dtype(at::kDouble));
    const int64_t tile = tile_rows(heads, nk);
    for (int64_t first = 0; first < n; first += tile) {
      const int64_t rows = std::min(tile, n - first);
      const at::Tensor p = attention_rows(q.narrow(1, first, rows), k, spec, first);
      auto [h, hn] = entropies(p, visible_keys(first, rows, nk, spec, q.options()));
      out.narrow(1, first, rows).copy_(normalized ? hn : h);
    }
    return out;
  });
}

AttentionStatistics Result::attention_stats(int layer, std::optional<int> head, const AttentionOptions& options) const {
  const Manifest& m = *data_->manifest;
  const size_t slot = m.slot(layer);
  if (head) m.kv_group(*head);  // throws for a head out of range
  AttentionSpec spec = AttentionSpec::of(m.layers[slot], m.causal, options);
  c10::InferenceMode guard;
  return guarded("attention_stats", [&] {
    at::Tensor q = data_->queries[slot];
    at::Tensor k = data_->keys[slot];
    if (head) {
      q = q.narrow(0, *head, 1);
      k = k.narrow(0, m.kv_group(*head), 1);
      if (!spec.sinks.empty()) spec.sinks = {spec.sinks[static_cast<size_t>(*head)]};
    }
    const int64_t n = q.size(1), nk = k.size(1);
    AttentionStatistics s;
    s.entropy = at::empty({n}, q.options().dtype(at::kDouble));
    s.normalized_entropy = at::empty({n}, q.options().dtype(at::kDouble));
    s.received = at::zeros({nk}, q.options().dtype(at::kDouble));
    s.max_weights = at::empty({n}, q.options().dtype(at::kDouble));
    s.argmax_keys = at::empty({n}, q.options().dtype(at::kLong));
    const int64_t tile = tile_rows(q.size(0), nk);
    for (int64_t first = 0; first < n; first += tile) {
      const int64_t rows = std::min(tile, n - first);
      const at::Tensor p = attention_rows(q.narrow(1, first, rows), k, spec, first).mean(0);  // [rows, Nk]
      auto [h, hn] = entropies(p, visible_keys(first, rows, nk, spec, q.options()));
      s.entropy.narrow(0, first, rows).copy_(h);
      s.normalized_entropy.narrow(0, first, rows).copy_(hn);
      s.received.add_(p.to(at::kDouble).sum(0));
      // Masked keys have weight 0: each row's largest weight is over the keys it sees.
      const auto [largest, key] = p.max(-1);
      s.max_weights.narrow(0, first, rows).copy_(largest);
      s.argmax_keys.narrow(0, first, rows).copy_(key);
    }
    // The largest weight over the queries that see two keys or more (every query when none does).
    const at::Tensor seen = visible_keys(0, n, nk, spec, q.options()).ge(2.0);
    const at::Tensor candidates = seen.any().item<bool>() ? seen : at::ones_like(seen);
    const at::Tensor masked = at::where(candidates, s.max_weights, at::full_like(s.max_weights, -1.0));
    s.max_query = masked.argmax().item<int64_t>();
    s.max_weight = s.max_weights[s.max_query].item<double>();
    s.max_key = s.argmax_keys[s.max_query].item<int64_t>();
    s.mean_entropy = s.entropy.mean().item<double>();
    s.mean_normalized_entropy = s.normalized_entropy.mean().item<double>();
    s.most_attended = s.received.argmax().item<int64_t>();
    return s;
  });
}

std::vector<metrics::Arc> Result::top_arcs(int64_t query, int64_t k, int layer, std::optional<int> head,
                                           const AttentionOptions& options) const {
  const Manifest& m = *data_->manifest;
  const size_t slot = m.slot(layer);
  const int64_t n = num_tokens();
  if (query < 0 || query >= n) {
    throw Error(ErrorCode::kOutOfRange, "query token " + std::to_string(query) + " requested, the text has " +
                                            std::to_string(n) + " tokens (0.." + std::to_string(n - 1) + ")");
  }
  if (k < 1) throw Error(ErrorCode::kInvalidArgument, "k must be at least 1, found " + std::to_string(k));
  if (head) m.kv_group(*head);
  const AttentionSpec spec = AttentionSpec::of(m.layers[slot], m.causal, options);
  c10::InferenceMode guard;
  const at::Tensor row = guarded("top_arcs", [&] {
    at::Tensor p = attention_rows(data_->queries[slot].narrow(1, query, 1), data_->keys[slot], spec, query);
    p = head ? p[*head] : p.mean(0);
    return p.reshape({-1}).to(at::kCPU, at::kDouble).contiguous();
  });
  const double* w = row.data_ptr<double>();
  const metrics::Visibility visibility{spec.causal, spec.sliding_window};
  std::vector<metrics::Arc> arcs;
  for (int64_t j = 0; j < row.numel(); ++j) {
    if (visibility.sees(query, j)) arcs.push_back({j, w[j]});
  }
  std::stable_sort(arcs.begin(), arcs.end(), [](const auto& x, const auto& y) { return x.weight > y.weight; });
  arcs.resize(std::min<size_t>(arcs.size(), static_cast<size_t>(k)));
  return arcs;
}

std::vector<HeadLink> Result::linking_heads(int64_t a, int64_t b, const AttentionOptions& options) const {
  const Manifest& m = *data_->manifest;
  const int64_t n = num_tokens();
  for (int64_t t : {a, b}) {
    if (t < 0 || t >= n) {
      throw Error(ErrorCode::kOutOfRange, "token " + std::to_string(t) + " requested, the text has " +
                                              std::to_string(n) + " tokens (0.." + std::to_string(n - 1) + ")");
    }
  }
  c10::InferenceMode guard;
  std::vector<HeadLink> links;
  guarded("linking_heads", [&] {
    for (size_t slot = 0; slot < m.layers.size(); ++slot) {
      const AttentionSpec spec = AttentionSpec::of(m.layers[slot], m.causal, options);
      const at::Tensor& q = data_->queries[slot];
      // Only rows a and b of every head: P[h, a, b] and P[h, b, a].
      const at::Tensor from_a = attention_rows(q.narrow(1, a, 1), data_->keys[slot], spec, a).select(1, 0);
      const at::Tensor from_b = attention_rows(q.narrow(1, b, 1), data_->keys[slot], spec, b).select(1, 0);
      const at::Tensor score = at::maximum(from_a.select(1, b), from_b.select(1, a)).to(at::kCPU, at::kDouble);
      for (int h = 0; h < m.num_heads; ++h) links.push_back({m.layers[slot].index, h, score[h].item<double>()});
    }
    return 0;
  });
  std::stable_sort(links.begin(), links.end(), [](const HeadLink& x, const HeadLink& y) { return x.score > y.score; });
  return links;
}

}  // namespace attnprox
