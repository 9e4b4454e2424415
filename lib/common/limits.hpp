// The bounds attnprox puts on what it reads (docs/limits.md): sizes, nesting and counts of model files, manifests
// and tokenizer files, and the helpers that check JSON nesting and show JSON values in messages without reading
// or printing more than a bounded part of them. Internal: shared by the engine and the tokenizer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace attnprox::limits {

/// Nesting of arrays and objects in any JSON attnprox reads (manifest, tokenizer.json, vocab.json). Real files
/// nest fewer than 10 levels; deeper values are refused before they are parsed.
constexpr size_t kMaxJsonDepth = 100;
/// The manifest of a model file (real ones are a few KiB).
constexpr uint64_t kMaxManifestBytes = uint64_t{16} << 20;
/// A tokenizer.json, in a model file or on its own, and the vocabulary and merges files (real ones reach ~35 MiB).
constexpr uint64_t kMaxTokenizerBytes = uint64_t{128} << 20;
/// Entries of a tokenizer's vocabulary, merges and added tokens.
constexpr size_t kMaxVocabulary = size_t{1} << 20;
constexpr size_t kMaxMerges = size_t{1} << 20;
constexpr size_t kMaxAddedTokens = size_t{1} << 17;
/// Bytes of one added token's content (its matching costs up to this much per text position).
constexpr size_t kMaxAddedTokenBytes = 256;
/// Stages of a tokenizer's pipeline, all Sequences and their nesting counted (real files have fewer than 20).
constexpr size_t kMaxStages = 256;
/// Bytes of a regular expression in a tokenizer file.
constexpr size_t kMaxRegexBytes = 16 << 10;
/// WordPiece's max_input_chars_per_word: longer words are one unknown token.
constexpr size_t kMaxWordPieceChars = 1000;
/// Oniguruma's backtracking budget: per match attempt, and per search (one search of a piece of text).
constexpr unsigned long kRegexRetryLimitInMatch = 10'000'000;
constexpr unsigned long kRegexRetryLimitInSearch = 50'000'000;
/// Oniguruma's backtracking stack, in entries (about 20 bytes each).
constexpr unsigned int kRegexMatchStackLimit = 4'000'000;

/// Where JSON text nests deeper than `max_depth` (the byte offset of the bracket that does), or npos. Strings are
/// skipped (brackets in them do not count); the text need not be valid JSON (the parser says what else is wrong).
inline size_t json_too_deep(std::string_view text, size_t max_depth = kMaxJsonDepth) {
  size_t depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return i;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return std::string_view::npos;
}

/// `text` cut to at most `max_bytes` bytes at a character boundary, with "..." when cut.
inline std::string clipped(std::string_view text, size_t max_bytes = 60) {
  if (text.size() <= max_bytes) return std::string(text);
  size_t end = max_bytes > 3 ? max_bytes - 3 : 0;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return std::string(text.substr(0, end)) + "...";
}

namespace detail {
inline std::string dump(const std::string& text) {
  return nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}
inline void show_json(const nlohmann::json& value, std::string& out, size_t budget, size_t depth) {
  if (out.size() > budget) return;
  if (value.is_array() || value.is_object()) {
    if (depth >= 4) {
      out += value.is_array() ? "[...]" : "{...}";
      return;
    }
    out += value.is_array() ? '[' : '{';
    bool first = true;
    for (auto it = value.begin(); it != value.end() && out.size() <= budget; ++it) {
      if (!first) out += ',';
      first = false;
      if (value.is_object()) out += dump(clipped(it.key(), budget)) + ':';
      show_json(*it, out, budget, depth + 1);
    }
    out += value.is_array() ? ']' : '}';
  } else if (value.is_string()) {
    out += dump(clipped(value.get_ref<const std::string&>(), budget));
  } else {
    out += value.dump();
  }
}
}  // namespace detail

/// A JSON value for a message: at most `max_bytes` bytes of its text, whatever its size or nesting.
inline std::string shown_json(const nlohmann::json& value, size_t max_bytes = 60) {
  std::string out;
  detail::show_json(value, out, max_bytes + 8, 0);
  return clipped(out, max_bytes);
}

}  // namespace attnprox::limits
