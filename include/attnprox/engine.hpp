// attnprox — the C++ engine: load a model file, run token ids through it, and read what its attention
// layers see (queries and keys per captured layer, attention weights rebuilt from them, proximity).
//
//   auto model = attnprox::Model::load("gpt2.apx");
//   attnprox::Result r = model.run({464, 3290, 318});
//   at::Tensor p = r.attention(-1, 0);   // [N, N], last captured layer, head 0
//   double ap = r.ap();                  // Attention Proximity of the text at the last captured layer
//
// Tensors returned live on the model's device. Queries and keys keep the model's dtype; attention weights,
// proximity and AP are computed in float32 (AP sums in float64), whatever the model's dtype.
//
// Thread safety: a Model and the Results it produced may be used from several threads at once.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "attnprox/error.hpp"
#include "attnprox/manifest.hpp"
#include "attnprox/measures.hpp"
#include "attnprox/tokenizer.hpp"

namespace attnprox {

namespace detail {
// How the engine's own code (lib/engine/internal.hpp) names Model::Impl and Result::Data, which are private.
struct EngineAccess;
}  // namespace detail

enum class DType { kFloat32, kFloat16, kBFloat16 };

/// "float32"/"fp32", "float16"/"fp16"/"half", "bfloat16"/"bf16" → DType; Error(kInvalidArgument) otherwise.
DType parse_dtype(const std::string& name);
std::string to_string(DType dtype);

/// The most libtorch threads LoadOptions::threads may ask for (more would exhaust the process's threads).
constexpr int kMaxThreads = 1024;

struct LoadOptions {
  std::string device = "cpu";  // "cpu", "cuda" or "cuda:N"
  std::optional<DType> dtype;  // default: the dtype the file was exported in
  int threads = 0;             // libtorch intra-op threads (process-wide); 0 leaves libtorch's default; ≤ kMaxThreads
  /// The captured layers whose queries and keys a run keeps unless it says otherwise (the model's own numbers, or
  /// negative counting back from the last captured layer); empty: every captured layer. The forward stops after
  /// the last of them where the file can (docs/model-file.md, "Choosing layers at run time").
  std::vector<int> layers;
};

/// What one run keeps.
struct RunOptions {
  /// Captured layers to keep, as LoadOptions::layers; empty: the model's choice at load.
  std::vector<int> layers;
};

/// How run_text reads a text. A byte-order mark (U+FEFF) at the start of a text is not tokenized, as editors do
/// not show it; the offsets still index the text as given (its first token starts after the mark).
struct TextOptions {
  /// Add what the tokenizer's post-processor adds around a text ([CLS] … [SEP], a BOS token), and the BOS token
  /// when the manifest says the model expects one and the tokenizer did not add it.
  bool add_special_tokens = true;
  /// Cut the tokenized text to max_length tokens, the special tokens included (Hugging Face's `truncation`): the
  /// text's last tokens are dropped, the special tokens around it kept. Without it, a text longer than the
  /// model's positions is an error.
  bool truncation = false;
  /// With `truncation`: the most tokens to keep (default: the model's max positions).
  std::optional<int64_t> max_length;
  /// Captured layers to keep, as RunOptions::layers.
  std::vector<int> layers;
};

struct AttentionOptions {
  double temperature = 1.0;  // logits are divided by T before the softmax
};

/// Which queries and keys the proximity family (proximity, AP, AP_i, AP^(S), APE, iAPE, averaged proximity) is
/// computed from (docs/measurements.md §1).
struct ProximityOptions {
  /// false (the default, as the original Attention Proximity code): before the rotary position embedding (RoPE),
  /// recovered by undoing the rotation the model file records; true: after it, exactly what the attention used.
  /// The same on models without rotary embeddings. Before RoPE needs a file that records its rotation
  /// (docs/model-file.md, "rope"): for an older file it is Error(kUnsupported), saying to export it again.
  bool rope = false;
};

/// Undoes a rotary position embedding: `x` [heads, N, d] rotated at positions 0..N−1 as `rotary` says →
/// the vectors before the rotation, in x's dtype (computed in float32 from the float32 angles t·inv_freq and
/// their cos and sin rounded to x's dtype, as the model computed them).
at::Tensor unrotate(const at::Tensor& x, const RotaryEmbedding& rotary);

/// Everything docs/measurements.md §2 needs to turn one layer's queries and keys into attention weights.
struct AttentionSpec {
  double scaling = 1.0;
  bool causal = true;
  std::optional<int64_t> sliding_window;
  std::optional<double> softcap;
  std::vector<double> sinks;  // one per query head, or empty
  double temperature = 1.0;

  static AttentionSpec of(const LayerInfo& layer, bool causal, const AttentionOptions& options = {});
};

/// P_h = softmax((softcap(scaling · Q_h K_{g(h)}ᵀ)) / T + M), with an extra sink logit column (sink_h / T) that
/// is dropped after the softmax. queries [H, N, d], keys [Hkv, N, d] (H a multiple of Hkv; query head h reads
/// key head h / (H/Hkv)) → [H, N, N] float32 on the device of the inputs.
at::Tensor attention_weights(const at::Tensor& queries, const at::Tensor& keys, const AttentionSpec& spec);

class Result;

/// APE of one text at one layer (definition and policies: metrics.hpp, docs/measurements.md); tokens [N] float64,
/// defined [N] bool. The same record as metrics::Ape, in tensors (measures.hpp).
using ApeResult = metrics::BasicApe<at::Tensor, at::Tensor>;

/// Statistics of attention weights (one head, or the mean of a layer's heads): entropy, normalized_entropy,
/// max_weights, received [N] float64; argmax_keys [N] int64. The same record as metrics::AttentionStats, in
/// tensors (measures.hpp).
using AttentionStatistics = metrics::BasicAttentionStats<at::Tensor, at::Tensor>;

/// How strongly one (layer, head) of the model links two tokens: max(P[a, b], P[b, a]) (Result::linking_heads).
/// metrics::IndexedLink holds the same score for a matrix named by its place in a list instead.
struct HeadLink {
  int layer = 0, head = 0;
  double score = 0;
};

class Model {
 public:
  /// Loads a model file and checks it against its manifest (one probe forward of two tokens).
  /// Throws Error: kNotFound (no such file), kInvalidModel (not a TorchScript archive, no or bad manifest,
  /// forward inconsistent with the manifest), kUnsupported (device or dtype this build cannot serve).
  static Model load(const std::string& path, const LoadOptions& options = {});

  const Manifest& manifest() const;
  const std::string& path() const;
  std::string device() const;
  DType dtype() const;
  /// The Hugging Face tokenizer.json stored in the file, or an empty string. The model keeps the parsed tokenizer
  /// only: the text is read again from the file (checked as at load; Error(kInvalidModel) if the file changed).
  std::string tokenizer_json() const;
  /// The tokenizer of the file, or nullptr when it has none.
  const Tokenizer* tokenizer() const;

  /// The captured layers a run keeps by default (LoadOptions::layers resolved to the model's own numbers).
  std::vector<int> layers() const;

  /// Runs one sequence of token ids. Throws Error(kInvalidArgument) for an empty sequence, an id outside the
  /// vocabulary or more tokens than the model's positions; Error(kOutOfRange) for a layer that is not captured.
  Result run(const std::vector<int64_t>& ids, const RunOptions& options = {}) const;
  /// Runs several sequences as one padded batch (right padding, attention mask); one Result each, the same
  /// as running them one by one up to float rounding.
  std::vector<Result> run_batch(const std::vector<std::vector<int64_t>>& batch, const RunOptions& options = {}) const;
  /// Tokenizes `text` with the file's tokenizer and runs it. Error(kUnsupported) when the file has no tokenizer,
  /// kInvalidArgument for text that is not UTF-8 or gives no tokens.
  Result run_text(std::string_view text, const TextOptions& options = {}) const;
  /// Several texts as one padded batch.
  std::vector<Result> run_texts(const std::vector<std::string>& texts, const TextOptions& options = {}) const;

  /// The encoding run_text runs for `text`: the tokenizer's tokens, the model's special tokens and BOS, cut to
  /// max_length with `truncation`. Error(kUnsupported) without a tokenizer, kInvalidArgument for text that gives
  /// no tokens or a max_length that leaves no room for it.
  Encoding encode(std::string_view text, const TextOptions& options = {}) const;
  /// Runs encodings made by encode() or encode_pair() as one padded batch; texts[b] (and pairs[b] for text pairs)
  /// is what encodings[b] came from: its offsets index them. Lets a caller tokenize first, then choose how to group
  /// the runs. `options.layers` chooses the layers the results keep, as in run().
  std::vector<Result> run_encoded(const std::vector<std::string>& texts, std::vector<Encoding> encodings,
                                  const std::vector<std::string>& pairs = {}, const RunOptions& options = {}) const;

  /// A text pair, as Hugging Face runs one for sentence-pair tasks: encoded with the tokenizer's pair template
  /// (BERT: [CLS] text [SEP] pair [SEP]), its token type ids given to the model when its file takes them
  /// (manifest "inputs"; docs/model-file.md). With truncation, the longer text is cut first (Hugging Face's
  /// "longest_first"). Error(kUnsupported) for a file written before text pairs, or a tokenizer without a pair
  /// template.
  Result run_text_pair(std::string_view text, std::string_view pair, const TextOptions& options = {}) const;
  Encoding encode_pair(std::string_view text, std::string_view pair, const TextOptions& options = {}) const;
  /// Throws what run() throws for ids it refuses (empty, an id outside the vocabulary, more tokens than the
  /// model's positions), without running them.
  void check_ids(const std::vector<int64_t>& ids) const;

 private:
  struct Impl;  // lib/engine/model.cpp
  friend struct detail::EngineAccess;
  explicit Model(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

class Result {
 public:
  const std::vector<int64_t>& ids() const;
  int64_t num_tokens() const;
  /// The model's manifest, its `layers` being the captured layers this result holds (those the run kept).
  const Manifest& manifest() const;
  /// The model's own numbers of the layers this result holds, ascending.
  std::vector<int> layers() const;
  /// The text that was run (empty when ids were given).
  const std::string& text() const;
  /// The second text of a text pair (empty otherwise).
  const std::string& text_pair() const;
  /// The token type ids the model was given [N] (zeros, but for the second text of a pair on models that take
  /// them).
  const std::vector<int64_t>& type_ids() const;
  /// Which text each token comes from: 0 the text, 1 the pair, -1 tokens added around them; empty when ids were
  /// given.
  const std::vector<int32_t>& sequence_ids() const;
  /// The tokens as the tokenizer's vocabulary writes them ("Ġworld"); empty when the model has no tokenizer.
  std::vector<std::string> tokens() const;
  /// Where each token lies in text() (in text_pair() for tokens of the pair): [start, end) in bytes / in
  /// characters; empty when ids were given.
  const std::vector<std::pair<size_t, size_t>>& offsets() const;
  const std::vector<std::pair<size_t, size_t>>& char_offsets() const;

  // `layer` is the model's own layer number, or negative counting back from the last layer the result holds.
  // A layer it does not hold or a head out of range throws Error(kOutOfRange).

  /// Queries [H, N, d] of a captured layer, exactly as the model's attention sees them (after RoPE, q-norm);
  /// `rope` false: before the rotary embedding (ProximityOptions::rope says when that is possible). The tensor
  /// after RoPE shares its storage with the Result (no copy): writing into it changes what this Result and its
  /// copies compute afterwards. Take .clone() of it to change values.
  at::Tensor queries(int layer = -1, bool rope = true) const;
  /// Keys [Hkv, N, d]; as queries().
  at::Tensor keys(int layer = -1, bool rope = true) const;
  /// Attention weights [H, N, N] of every head of a layer (float32).
  at::Tensor attention(int layer = -1, const AttentionOptions& options = {}) const;
  /// Attention weights [N, N] of one head.
  at::Tensor attention(int layer, int head, const AttentionOptions& options = {}) const;
  /// Mean attention weights [N, N] over the chosen layers × heads (empty: all captured layers, all heads).
  at::Tensor average_attention(const std::vector<int>& layers = {}, const std::vector<int>& heads = {},
                               const AttentionOptions& options = {}) const;
  /// The proximity matrix A [N, N] (docs/measurements.md §3): A_h = Q_h K_{g(h)}ᵀ / sqrt(d), A_raw = mean_h A_h,
  /// A = (A_raw + A_rawᵀ) / 2 (float32).
  at::Tensor proximity(int layer = -1, const ProximityOptions& options = {}) const;
  /// AP_i = 1/(N−1) Σ_{j≠i} A_ij for every token [N] (float64), in O(N·H·d) without building A.
  /// Needs N ≥ 2 (Error(kInvalidArgument) otherwise).
  at::Tensor ap_tokens(int layer = -1, const ProximityOptions& options = {}) const;
  /// AP = mean_i AP_i.
  double ap(int layer = -1, const ProximityOptions& options = {}) const;
  /// AP^(S)_j = (1/|S|) Σ_{i∈S} A_ij for every token j [N] (float64), O(N·H·d). Duplicates in `subset` count
  /// once; a position outside the text is Error(kOutOfRange).
  at::Tensor subset_proximity(const std::vector<int64_t>& subset, int layer = -1,
                              const ProximityOptions& options = {}) const;
  /// APE, streamed over tiles of rows of A (never N × N in memory). Needs N ≥ 2.
  ApeResult ape(int layer = -1, metrics::ApePolicy policy = metrics::kDefaultApePolicy,
                const ProximityOptions& options = {}) const;
  /// Mean of A_h = Q_h K_{g(h)}ᵀ / sqrt(d) over the chosen layers × heads (empty: all) [N, N] float32;
  /// `symmetric` returns (M + Mᵀ) / 2 (for one layer and all heads: the proximity matrix A).
  at::Tensor average_proximity(const std::vector<int>& layers = {}, const std::vector<int>& heads = {},
                               bool symmetric = true, const ProximityOptions& options = {}) const;

  // Attention statistics, streamed over tiles of queries.

  /// Per-query entropy of every head of a layer [H, N] (float64); `normalized` divides by log(visible keys).
  at::Tensor attention_entropy(int layer = -1, bool normalized = false, const AttentionOptions& options = {}) const;
  /// Statistics of one head's weights, or of the mean of the layer's heads when `head` is empty.
  AttentionStatistics attention_stats(int layer = -1, std::optional<int> head = {},
                                      const AttentionOptions& options = {}) const;
  /// The k strongest arcs of a query token to the keys it sees, largest first (one head, or the mean of the
  /// layer's heads); fewer than k when it sees fewer keys (causal models: keys after the query are masked).
  std::vector<metrics::Arc> top_arcs(int64_t query, int64_t k, int layer = -1, std::optional<int> head = {},
                                     const AttentionOptions& options = {}) const;
  /// Every captured (layer, head) ranked by max(P[a, b], P[b, a]), strongest first.
  std::vector<HeadLink> linking_heads(int64_t a, int64_t b, const AttentionOptions& options = {}) const;

 private:
  struct Data;  // lib/engine/internal.hpp
  friend struct detail::EngineAccess;
  friend class Model;
  /// The queries and keys of a slot the proximity family reads (before or after RoPE, as `rope` says).
  std::pair<at::Tensor, at::Tensor> proximity_inputs(size_t slot, bool rope) const;
  explicit Result(std::shared_ptr<const Data> data) : data_(std::move(data)) {}
  std::shared_ptr<const Data> data_;
};

/// Sets the level of the library's log ("trace", "debug", "info", "warn", "error", "off"). The default is
/// "warn", or the value of the environment variable ATTNPROX_LOG_LEVEL.
void set_log_level(const std::string& level);

/// The severity of a log line (set_log_callback).
enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError };
/// Receives each log line the level lets through: its severity and its text (one line, no newline).
using LogCallback = std::function<void(LogLevel level, const std::string& message)>;
/// Sends the library's log lines to `callback` instead of stderr; an empty callback sends them to stderr again.
/// The callback may be called from any thread that uses the library, one line at a time (never two at once); it
/// must not call set_log_callback itself. The level (set_log_level) still decides which lines are written.
void set_log_callback(LogCallback callback);

/// The library's version, "MAJOR.MINOR.PATCH".
std::string version();
/// The version of libtorch the library runs on.
std::string torch_version();

}  // namespace attnprox
