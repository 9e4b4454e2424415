// What one run of a model holds: ids, queries and keys per captured layer, and the attention rebuilt from them.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include "internal.hpp"

namespace attnprox {

const std::vector<int64_t>& Result::ids() const {
  return data_->ids;
}

int64_t Result::num_tokens() const {
  return static_cast<int64_t>(data_->ids.size());
}

const Manifest& Result::manifest() const {
  return *data_->manifest;
}

std::vector<int> Result::layers() const {
  return data_->manifest->captured_layers();
}

const std::string& Result::text() const {
  return data_->text;
}

const std::string& Result::text_pair() const {
  return data_->text_pair;
}

const std::vector<int64_t>& Result::type_ids() const {
  return data_->type_ids;
}

const std::vector<int32_t>& Result::sequence_ids() const {
  return data_->encoding.sequence_ids;
}

std::vector<std::string> Result::tokens() const {
  if (!data_->encoding.tokens.empty()) return data_->encoding.tokens;
  if (data_->tokenizer) return data_->tokenizer->tokens(data_->ids);
  return {};
}

const std::vector<std::pair<size_t, size_t>>& Result::offsets() const {
  return data_->encoding.offsets;
}

const std::vector<std::pair<size_t, size_t>>& Result::char_offsets() const {
  return data_->encoding.char_offsets;
}

at::Tensor Result::attention(int layer, const AttentionOptions& options) const {
  const Manifest& m = *data_->manifest;
  const size_t slot = m.slot(layer);
  c10::InferenceMode guard;
  return attention_weights(data_->queries[slot], data_->keys[slot],
                           AttentionSpec::of(m.layers[slot], m.causal, options));
}

at::Tensor Result::attention(int layer, int head, const AttentionOptions& options) const {
  const Manifest& m = *data_->manifest;
  const size_t slot = m.slot(layer);
  const int group = m.kv_group(head);
  AttentionSpec spec = AttentionSpec::of(m.layers[slot], m.causal, options);
  if (!spec.sinks.empty()) spec.sinks = {spec.sinks[head]};
  c10::InferenceMode guard;
  return attention_weights(data_->queries[slot].narrow(0, head, 1), data_->keys[slot].narrow(0, group, 1), spec)
      .squeeze(0);
}

at::Tensor Result::average_attention(const std::vector<int>& layers, const std::vector<int>& heads,
                                     const AttentionOptions& options) const {
  const Manifest& m = *data_->manifest;
  const std::vector<size_t> slots = layer_slots(m, layers);
  const std::vector<int64_t> head_list = checked_heads(m, heads);  // empty: every head, nothing to select
  c10::InferenceMode guard;
  return guarded("average attention", [&] {
    at::Tensor sum;
    for (size_t slot : slots) {
      at::Tensor weights = attention_weights(data_->queries[slot], data_->keys[slot],
                                             AttentionSpec::of(m.layers[slot], m.causal, options));
      if (!head_list.empty()) weights = weights.index_select(0, at::tensor(head_list).to(weights.device()));
      at::Tensor layer_sum = weights.sum(0);
      sum = sum.defined() ? sum.add_(layer_sum) : layer_sum;
    }
    const int64_t count =
        static_cast<int64_t>(slots.size()) * (head_list.empty() ? m.num_heads : static_cast<int64_t>(head_list.size()));
    return finite(sum.div_(static_cast<double>(count)), "average attention");
  });
}

}  // namespace attnprox
