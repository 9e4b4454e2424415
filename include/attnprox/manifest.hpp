// attnprox — the manifest of a model file (docs/model-file.md): what the file's forward returns and how to
// rebuild the attention from it. Plain data, no libtorch.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace attnprox {

/// A rotary position embedding (RoPE), precisely enough to undo it (docs/model-file.md, "rope"): at position t
/// (0..N−1) the pair (a_k, b_k) of each head's vector is turned by the angle t·inv_freq[k] and both are multiplied
/// by attention_scaling: a' = s·(a cos − b sin), b' = s·(b cos + a sin). The pairs are the dimensions (k,
/// k + rotary_dim/2) in the rotate_half layout (Llama, Qwen3), (2k, 2k + 1) in the interleaved one; dimensions
/// from rotary_dim on are not rotated.
struct RotaryEmbedding {
  enum class Layout { kRotateHalf, kInterleaved };
  std::vector<double> inv_freq;  // rotary_dim / 2 inverse frequencies, float32 values (the model computes with them)
  int rotary_dim = 0;
  Layout layout = Layout::kRotateHalf;
  double attention_scaling = 1.0;  // the factor of cos and sin (YaRN, LongRoPE; 1 for most rope types)
};

/// What a model file says about the rotation of a layer's queries and keys.
struct RopeRecord {
  enum class State {
    kNotRecorded,  // a file written before attnprox recorded it: queries and keys before the rotation cannot be had
    kNone,         // no rotary embedding: queries and keys are the same before and after
    kRotary,       // the rotation `rotary`
    kUnavailable,  // a rotary embedding the file cannot describe; `reason` says why
  };
  State state = State::kNotRecorded;
  RotaryEmbedding rotary;
  std::string reason;
};

/// What the attention of one captured layer needs beyond its queries and keys (docs/measurements.md §2).
struct LayerInfo {
  int index = 0;                          // the model's own layer number, 0-based
  double scaling = 1.0;                   // factor of Q·Kᵀ in the logits (1/sqrt(d) for most models)
  std::optional<int64_t> sliding_window;  // causal: key j visible iff i-j < W; bidirectional: |i-j| <= W
  std::optional<double> softcap;          // logits → c·tanh(logits/c) before masking
  std::vector<double> sinks;              // one sink logit per query head (empty: none)
  bool cross_attention = false;           // encoder–decoder: queries from the decoder, keys from the encoder
  std::optional<bool> causal;             // this layer's own masking (encoder–decoder models); unset: the model's
  std::string name;                       // the layer's module in the source model, for display (may be empty)
  std::optional<RopeRecord> rope;         // this layer's own rotary embedding where it has one; unset: the model's

  /// Whether queries see only keys at or before their position: the layer's own setting, else the model's; a
  /// cross-attention layer is never causal.
  bool is_causal(bool model_causal) const { return !cross_attention && causal.value_or(model_causal); }
};

struct TokenizerFacts {
  std::optional<int64_t> bos_id, eos_id, pad_id;
  bool add_bos = false;
  std::map<std::string, int64_t> special_tokens;
};

struct Manifest {
  static constexpr int kFormatVersion = 1;

  int format_version = kFormatVersion;
  std::string family;         // gpt2, bert, distilbert, llama, qwen3, ... (as the exporter names it)
  std::string model_type;     // Hugging Face model_type
  std::string source;         // where the exporter read the model from
  std::string exporter;       // name of the exporter
  std::string torch_version;  // torch that wrote the file
  std::string traced_device;  // where a traced file was traced (it runs on that kind of device only); empty: any
  int num_layers = 0;         // layers of the whole model
  int num_heads = 0;          // H: query heads
  int num_kv_heads = 0;       // Hkv: key heads; query head h reads key head h / (H / Hkv)
  int head_dim = 0;           // d
  bool causal = true;
  int64_t max_positions = 0;
  int64_t vocab_size = 0;
  std::string dtype;              // float32, float16, bfloat16
  std::vector<LayerInfo> layers;  // the captured layers, ascending; forward returns Q/K in this order
  TokenizerFacts tokenizer;
  /// The forward's inputs: {"input_ids", "attention_mask"} or, for models with segment (token type) embeddings,
  /// {"input_ids", "attention_mask", "token_type_ids"}; empty for files that do not say (written before
  /// attnprox 0.2): those take input_ids and attention_mask, and cannot run text pairs.
  std::vector<std::string> inputs;
  /// The rotary position embedding of the captured layers (a layer's own `rope` overrides it). kNotRecorded for a
  /// file written before attnprox recorded it, unless its family has no rotary embedding (GPT-2, BERT, DistilBERT,
  /// BART: kNone).
  RopeRecord rope;
  std::string raw_json;  // the manifest as stored in the file
  /// Where this describes what one run kept (a part of the file's captured layers, `layers`): the file's captured
  /// layers; empty for the file's own manifest.
  std::vector<int> file_captured_layers;

  /// Parses and validates a manifest; throws Error(kInvalidModel) naming the first problem found.
  static Manifest parse(const std::string& json_text);

  /// The model's own layer numbers of the captured layers.
  std::vector<int> captured_layers() const;
  /// Whether the forward takes token_type_ids as its third input.
  bool takes_token_type_ids() const { return inputs.size() == 3; }
  /// This manifest with `layers` cut down to the given slots (ascending, distinct), for what a run keeps.
  Manifest kept(const std::vector<size_t>& slots) const;
  /// Position in `layers` of a layer given as the model's own number, or negative counting back from the
  /// last captured layer (-1 is the last). Throws Error(kOutOfRange) for a layer that is not captured.
  size_t slot(int layer) const;
  /// The rotary embedding of a captured layer: its own, else the model's.
  const RopeRecord& rope_of(const LayerInfo& layer) const { return layer.rope ? *layer.rope : rope; }
  /// The key head a query head reads (grouped-query attention). Throws Error(kOutOfRange) for a bad head.
  int kv_group(int head) const;
};

}  // namespace attnprox
