// Attention weights rebuilt from a layer's queries and keys (docs/measurements.md §2).
#include <ATen/ATen.h>

#include <cmath>

#include "internal.hpp"

namespace attnprox {

AttentionSpec AttentionSpec::of(const LayerInfo& layer, bool causal, const AttentionOptions& options) {
  AttentionSpec spec;
  spec.scaling = layer.scaling;
  spec.causal = layer.is_causal(causal);
  spec.sliding_window = layer.sliding_window;
  spec.softcap = layer.softcap;
  spec.sinks = layer.sinks;
  spec.temperature = options.temperature;
  return spec;
}

namespace {

void check_inputs(const at::Tensor& queries, const at::Tensor& keys, const AttentionSpec& spec) {
  if (!queries.defined() || !keys.defined() || queries.dim() != 3 || keys.dim() != 3) {
    throw Error(ErrorCode::kInvalidArgument, "attention_weights needs queries [H, N, d] and keys [Hkv, N, d]");
  }
  const int64_t heads = queries.size(0), kv_heads = keys.size(0);
  if (kv_heads == 0 || heads % kv_heads != 0) {
    throw Error(ErrorCode::kInvalidArgument, "query heads (" + std::to_string(heads) +
                                                 ") must be a multiple of key heads (" + std::to_string(kv_heads) +
                                                 ")");
  }
  if (queries.size(2) != keys.size(2)) {
    throw Error(ErrorCode::kInvalidArgument,
                "queries have head size " + std::to_string(queries.size(2)) + ", keys " + std::to_string(keys.size(2)));
  }
  if (!spec.sinks.empty() && static_cast<int64_t>(spec.sinks.size()) != heads) {
    throw Error(ErrorCode::kInvalidArgument,
                std::to_string(spec.sinks.size()) + " sink logits for " + std::to_string(heads) + " query heads");
  }
  if (!(spec.temperature > 0) || !std::isfinite(spec.temperature)) {
    throw Error(ErrorCode::kInvalidArgument,
                "temperature must be a positive finite number, found " + std::to_string(spec.temperature));
  }
  if (!std::isfinite(spec.scaling)) throw Error(ErrorCode::kInvalidArgument, "attention scaling is not finite");
  if (spec.softcap && !(*spec.softcap > 0)) throw Error(ErrorCode::kInvalidArgument, "softcap must be positive");
  if (spec.sliding_window && *spec.sliding_window < 1) {
    throw Error(ErrorCode::kInvalidArgument, "sliding window must be at least 1");
  }
}

/// Which keys queries first_row.. may see [rows, Nk] (true = visible), or an undefined tensor when all are.
at::Tensor visibility(int64_t first_row, int64_t rows, int64_t nk, const AttentionSpec& spec,
                      const at::Device& device) {
  if (!spec.causal && !spec.sliding_window) return {};
  auto options = at::TensorOptions().dtype(at::kLong).device(device);
  at::Tensor distance =
      at::arange(first_row, first_row + rows, options).unsqueeze(1) - at::arange(nk, options).unsqueeze(0);  // i - j
  at::Tensor visible = spec.causal ? distance.ge(0) : at::ones({rows, nk}, options.dtype(at::kBool));
  if (spec.sliding_window) {
    // HF conventions: causal windows keep i - j < W, bidirectional ones |i - j| <= W.
    visible =
        spec.causal ? visible.logical_and(distance.lt(*spec.sliding_window)) : distance.abs().le(*spec.sliding_window);
  }
  return visible;
}

}  // namespace

at::Tensor attention_rows(const at::Tensor& queries, const at::Tensor& keys, const AttentionSpec& spec,
                          int64_t first_row) {
  check_inputs(queries, keys, spec);
  return guarded("attention weights", [&] {
    const int64_t heads = queries.size(0), kv_heads = keys.size(0), group = heads / kv_heads;
    const int64_t n = queries.size(1), nk = keys.size(1), d = queries.size(2);
    // logits_h = scaling · Q_h K_{g(h)}ᵀ: queries grouped as [Hkv, G, N, d] against keys [Hkv, 1, d, Nk].
    at::Tensor q = queries.to(at::kFloat).reshape({kv_heads, group, n, d});
    at::Tensor k = keys.to(at::kFloat).transpose(1, 2).unsqueeze(1);
    at::Tensor logits = at::matmul(q, k).reshape({heads, n, nk}).mul_(spec.scaling);
    if (spec.softcap) logits = logits.div_(*spec.softcap).tanh_().mul_(*spec.softcap);  // c·tanh(x/c)
    at::Tensor visible = visibility(first_row, n, nk, spec, logits.device());
    if (visible.defined()) logits.masked_fill_(visible.logical_not(), -std::numeric_limits<double>::infinity());
    if (!spec.sinks.empty()) {
      // Sinks: one more logit per head, in every row, that takes probability mass and is then dropped.
      at::Tensor sinks = at::tensor(spec.sinks, at::TensorOptions().dtype(at::kDouble))
                             .to(logits.device(), at::kFloat)
                             .view({heads, 1, 1})
                             .expand({heads, n, 1});
      logits = at::cat({logits, sinks}, -1);
    }
    if (spec.temperature != 1.0) {
      // softmax(x / T) = softmax((x − max x) / T), in double: the shifted logits are <= 0, so dividing by any
      // positive T gives values in [−inf, 0] (never NaN, never +inf), where float32 x / T overflows for small T.
      logits = logits.to(at::kDouble);
      const at::Tensor top = std::get<0>(logits.max(-1, true));
      logits = at::softmax(logits.sub_(top).div_(spec.temperature), -1).to(at::kFloat);
    } else {
      logits = at::softmax(logits, -1);
    }
    if (!spec.sinks.empty()) logits = logits.narrow(-1, 0, nk).contiguous();
    return finite(logits, "attention weights");
  });
}

at::Tensor attention_weights(const at::Tensor& queries, const at::Tensor& keys, const AttentionSpec& spec) {
  return attention_rows(queries, keys, spec, 0);
}

}  // namespace attnprox
