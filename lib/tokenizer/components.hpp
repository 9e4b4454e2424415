// The stages of a tokenizer, as Hugging Face tokenizers defines them: normalizer → pre-tokenizer → model →
// post-processor, and the decoder for the way back. Each stage is an interface with one implementation per
// `type` of tokenizer.json; the pipeline (tokenizer.cpp) wires them.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "normalized_string.hpp"

namespace attnprox::tok {

/// A token a model (or the added vocabulary) produced: its id, and its byte range in the normalized text of the
/// piece it came from. `value` is set only when it differs from the vocabulary's string for the id (added tokens
/// that absorbed whitespace).
struct Token {
  uint32_t id;
  Offsets offsets;
  std::string value;
};

/// A piece of the input during pre-tokenization; pieces that already have tokens (added tokens) are left alone.
struct Split {
  NormalizedString normalized;
  std::optional<std::vector<Token>> tokens;
};

/// The input split into pieces, each with its own normalized string (HF's PreTokenizedString).
class PreTokenizedString {
 public:
  explicit PreTokenizedString(std::string text) : original_(text) {
    splits_.push_back({NormalizedString(std::move(text)), std::nullopt});
  }
  /// Replaces every piece without tokens by what `f(piece, out)` appends to `out`; empty pieces are dropped.
  template <typename F>
  void split(F&& f) {
    std::vector<Split> next;
    next.reserve(splits_.size());
    std::vector<Split> produced;
    for (Split& piece : splits_) {
      if (piece.tokens) {
        next.push_back(std::move(piece));
        continue;
      }
      produced.clear();
      f(std::move(piece.normalized), produced);
      for (Split& p : produced) {
        if (!p.normalized.empty()) next.push_back(std::move(p));
      }
    }
    splits_ = std::move(next);
  }
  /// Applies `f` to the normalized string of every piece without tokens.
  template <typename F>
  void normalize(F&& f) {
    for (Split& piece : splits_) {
      if (!piece.tokens) f(piece.normalized);
    }
  }
  std::vector<Split>& splits() { return splits_; }
  const std::string& original() const { return original_; }

 private:
  std::string original_;
  std::vector<Split> splits_;
};

/// One encoded sequence: offsets in bytes and in characters of the original text (post-processors adjust both
/// the same way, as HF does in whichever referential it works).
struct RawEncoding {
  std::vector<uint32_t> ids;
  std::vector<std::string> tokens;
  std::vector<Offsets> offsets;
  std::vector<Offsets> char_offsets;
  std::vector<uint8_t> special;    // 1 for special tokens (added by the post-processor or special added tokens)
  std::vector<uint32_t> type_ids;  // the segment of each token (HF's token type ids)
  std::vector<int32_t> sequence;   // which input text each token comes from (0, 1), -1 for added tokens

  size_t size() const { return ids.size(); }
  /// Appends `other` (HF's Encoding::merge_with, offsets kept as they are).
  void append(RawEncoding&& other);
};

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(NormalizedString& s) const = 0;
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  virtual void pre_tokenize(PreTokenizedString& s) const = 0;
};

class Model {
 public:
  virtual ~Model() = default;
  /// Appends the tokens of one pre-tokenized piece (offsets in its bytes).
  virtual void tokenize(std::string_view piece, std::vector<Token>& out) const = 0;
  virtual std::optional<uint32_t> token_to_id(std::string_view token) const = 0;
  virtual const std::string* id_to_token(uint32_t id) const = 0;
  virtual size_t vocab_size() const = 0;
};

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  /// HF's process_encodings: one encoding per input text (a text, or a text and its pair, their type ids and
  /// sequence numbers set to 0 and 1), in; the pieces to concatenate, out (a processor may merge them).
  virtual std::vector<RawEncoding> process_encodings(std::vector<RawEncoding> encodings,
                                                     bool add_special_tokens) const = 0;
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  /// Rewrites the token strings; the decoded text is their concatenation.
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

// Factories (component.cpp files), building from the JSON of tokenizer.json — declared in tokenizer_json.hpp.

/// GPT-2's byte ↔ character table: every byte as a printable character.
char32_t byte_to_char(unsigned char b);
/// The byte a byte-level character stands for, or -1.
int char_to_byte(char32_t c);

/// Rust's String::from_utf8_lossy: invalid sequences become U+FFFD (one per maximal invalid subpart).
std::string utf8_lossy(std::string_view bytes);

}  // namespace attnprox::tok
