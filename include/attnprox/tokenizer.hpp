// attnprox — the tokenizer: Hugging Face tokenizer.json files (and GPT-2 / BERT vocabulary files) read and
// applied exactly as Hugging Face `tokenizers` applies them: added and special tokens, normalizers (Unicode
// normalization through utf8proc), pre-tokenizers (regular expressions through Oniguruma, HF's engine), BPE /
// WordPiece / WordLevel models, post-processors and decoders. No libtorch here.
//
//   auto tokenizer = attnprox::Tokenizer::from_file("tokenizer.json");
//   attnprox::Encoding e = tokenizer.encode("Hello world");     // e.ids, e.tokens, e.offsets, e.char_offsets
//   std::string text = tokenizer.decode(e.ids);
//
// Text must be valid UTF-8; invalid input is an Error(kInvalidArgument) naming the byte, never replaced silently.
// A Tokenizer may be used from several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "attnprox/error.hpp"

namespace attnprox {

namespace detail {
// How the tokenizer's own code (lib/tokenizer/tokenizer.cpp) names Tokenizer::Impl, which is private.
struct TokenizerAccess;
}  // namespace detail

/// One encoded text, or text pair. Offsets are [start, end) of each token in its input text (the text, or the pair
/// for tokens of the pair), in bytes and in characters (code points); tokens a post-processor adds (e.g. [CLS])
/// have (0, 0).
struct Encoding {
  std::vector<int64_t> ids;
  std::vector<std::string> tokens;  // the vocabulary's strings ("Ġworld", "##ing", "<|endoftext|>")
  std::vector<std::pair<size_t, size_t>> offsets;
  std::vector<std::pair<size_t, size_t>> char_offsets;
  std::vector<uint8_t> special;       // 1 for special tokens (from the text or added by the post-processor)
  std::vector<uint32_t> type_ids;     // each token's segment (Hugging Face's token_type_ids): as the post-processor
                                      // sets them, e.g. BERT 0 for [CLS] A [SEP], 1 for B [SEP]
  std::vector<int32_t> sequence_ids;  // the input each token comes from: 0 the text, 1 the pair, -1 added tokens
  size_t size() const { return ids.size(); }
};

class Tokenizer {
 public:
  /// A Hugging Face tokenizer.json. Error(kNotFound) for a missing file, kInvalidArgument for malformed JSON or
  /// fields (the message names the JSON path), kUnsupported for a component type attnprox does not implement.
  static Tokenizer from_file(const std::string& path);
  static Tokenizer from_json(const std::string& json);
  /// GPT-2 style byte-level BPE from a vocabulary (encoder.json / vocab.json) and merges (vocab.bpe / merges.txt),
  /// set up as GPT-2's tokenizer.json sets it (ByteLevel pre-tokenizer with GPT-2's regex, no prefix space).
  static Tokenizer byte_level_bpe(const std::string& vocab_json, const std::string& merges_txt);
  /// BERT WordPiece from a vocab.txt, as HF's BertWordPieceTokenizer: BERT normalizer (lowercase and accent
  /// stripping when `lowercase`), BERT pre-tokenizer, [CLS] … [SEP] with special tokens.
  static Tokenizer wordpiece(const std::string& vocab_txt, bool lowercase = true);

  /// Token ids, strings and offsets of `text`; `add_special_tokens` applies the post-processor's template
  /// (e.g. [CLS] … [SEP], a BOS token). Special tokens written in the text are always recognised.
  Encoding encode(std::string_view text, bool add_special_tokens = false) const;
  /// A text pair (sentence-pair tasks), as Hugging Face encodes (text, pair): each text alone, then the
  /// post-processor's pair template (BERT: [CLS] A [SEP] B [SEP], type ids 0 then 1). Error(kUnsupported) for a
  /// template without a pair template.
  Encoding encode_pair(std::string_view text, std::string_view pair, bool add_special_tokens = false) const;
  /// The text of token ids (the decoder's way back). Error(kInvalidArgument) for an id the tokenizer lacks.
  std::string decode(const std::vector<int64_t>& ids, bool skip_special_tokens = false) const;
  /// The vocabulary's string of each id.
  std::vector<std::string> tokens(const std::vector<int64_t>& ids) const;
  std::optional<int64_t> token_to_id(const std::string& token) const;
  /// Number of token ids: the model's vocabulary and the added tokens outside it.
  size_t vocab_size() const;
  /// Whether `id` is a special token (added token marked special).
  bool is_special(int64_t id) const;

 private:
  struct Impl;  // lib/tokenizer/tokenizer.cpp
  friend struct detail::TokenizerAccess;
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  std::shared_ptr<const Impl> impl_;
};

}  // namespace attnprox
