// Pre-tokenizers (HF tokenizers' pre_tokenizers/*.rs): each splits the pieces of a PreTokenizedString further.
#include <vector>

#include "attnprox/error.hpp"
#include "tokenizer_json.hpp"

namespace attnprox::tok {

namespace {

/// Splits every piece by a pattern.
void split_pieces(PreTokenizedString& s, const Pattern& pattern, SplitBehavior behavior) {
  s.split([&](NormalizedString&& piece, std::vector<Split>& out) {
    for (NormalizedString& part : piece.split(pattern, behavior)) out.push_back({std::move(part), std::nullopt});
  });
}

SplitBehavior parse_behavior(const std::string& name, const std::string& where) {
  if (name == "Removed") return SplitBehavior::kRemoved;
  if (name == "Isolated") return SplitBehavior::kIsolated;
  if (name == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (name == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (name == "Contiguous") return SplitBehavior::kContiguous;
  bad_json(where, "unknown split behavior \"" + name + "\"");
}

class SequencePreTokenizer : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> parts) : parts_(std::move(parts)) {}
  void pre_tokenize(PreTokenizedString& s) const override {
    for (const auto& part : parts_) part->pre_tokenize(s);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

class SplitPreTokenizer : public PreTokenizer {
 public:
  SplitPreTokenizer(std::shared_ptr<const Pattern> pattern, SplitBehavior behavior, bool invert)
      : pattern_(invert ? std::make_shared<InvertPattern>(pattern) : std::move(pattern)), behavior_(behavior) {}
  void pre_tokenize(PreTokenizedString& s) const override { split_pieces(s, *pattern_, behavior_); }

 private:
  std::shared_ptr<const Pattern> pattern_;
  SplitBehavior behavior_;
};

const RegexPattern& gpt2_regex() {
  static const RegexPattern regex(R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)");
  return regex;
}

class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex)
      : add_prefix_space_(add_prefix_space), use_regex_(use_regex) {}
  void pre_tokenize(PreTokenizedString& s) const override {
    s.split([&](NormalizedString&& piece, std::vector<Split>& out) {
      if (add_prefix_space_ && (piece.get().empty() || piece.get()[0] != ' ')) piece.prepend(" ");
      if (use_regex_) {
        for (NormalizedString& part : piece.split(gpt2_regex(), SplitBehavior::kIsolated)) {
          out.push_back({std::move(part), std::nullopt});
        }
      } else {
        out.push_back({std::move(piece), std::nullopt});
      }
    });
    // Every byte becomes one character of GPT-2's byte alphabet; the bytes after the first of a multi-byte
    // character are insertions.
    std::vector<CharChange> changes;
    s.normalize([&](NormalizedString& piece) {
      const std::string& text = piece.get();
      changes.clear();
      changes.reserve(text.size());
      for (size_t pos = 0; pos < text.size();) {
        const size_t start = pos;
        next_char(text, pos);
        for (size_t k = start; k < pos; ++k) {
          changes.push_back({byte_to_char(static_cast<unsigned char>(text[k])), k > start ? 1 : 0});
        }
      }
      piece.transform(changes, 0);
    });
  }

 private:
  bool add_prefix_space_, use_regex_;
};

bool bert_punctuation(char32_t c) {
  return (c < 0x80 &&
          ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126))) ||
         is_punctuation(c);
}

class BertPreTokenizer : public PreTokenizer {
 public:
  void pre_tokenize(PreTokenizedString& s) const override {
    static const CharPattern whitespace([](char32_t c) { return is_whitespace(c); });
    static const CharPattern punctuation(bert_punctuation);
    split_pieces(s, whitespace, SplitBehavior::kRemoved);
    split_pieces(s, punctuation, SplitBehavior::kIsolated);
  }
};

/// The runs HF's Whitespace pre-tokenizer keeps, `\w+|[^\w\s]+` with the Rust regex crate's Unicode classes
/// (\w includes marks and Join_Control, which Oniguruma's does not all include), everything else removed.
class WordRunsPattern : public Pattern {
 public:
  std::vector<Match> find_matches(std::string_view text) const override {
    if (text.empty()) return {{0, 0, false}};
    std::vector<Match> out;
    size_t pos = 0, previous = 0;
    while (pos < text.size()) {
      size_t next = pos;
      const char32_t c = next_char(text, next);
      if (is_whitespace(c)) {
        pos = next;
        continue;
      }
      const bool word = is_word_char(c);
      const size_t start = pos;
      pos = next;
      while (pos < text.size()) {
        size_t after = pos;
        const char32_t d = next_char(text, after);
        if (is_whitespace(d) || is_word_char(d) != word) break;
        pos = after;
      }
      if (previous < start) out.push_back({previous, start, true});  // the delimiters between runs
      out.push_back({start, pos, false});
      previous = pos;
    }
    if (previous < text.size()) out.push_back({previous, text.size(), true});
    return out;
  }
};

class WhitespacePreTokenizer : public PreTokenizer {
 public:
  void pre_tokenize(PreTokenizedString& s) const override {
    static const WordRunsPattern words;
    split_pieces(s, words, SplitBehavior::kRemoved);
  }
};

class WhitespaceSplitPreTokenizer : public PreTokenizer {
 public:
  void pre_tokenize(PreTokenizedString& s) const override {
    static const CharPattern whitespace([](char32_t c) { return is_whitespace(c); });
    split_pieces(s, whitespace, SplitBehavior::kRemoved);
  }
};

class PunctuationPreTokenizer : public PreTokenizer {
 public:
  explicit PunctuationPreTokenizer(SplitBehavior behavior) : behavior_(behavior) {}
  void pre_tokenize(PreTokenizedString& s) const override {
    static const CharPattern punctuation(bert_punctuation);
    split_pieces(s, punctuation, behavior_);
  }

 private:
  SplitBehavior behavior_;
};

class DigitsPreTokenizer : public PreTokenizer {
 public:
  explicit DigitsPreTokenizer(bool individual) : individual_(individual) {}
  void pre_tokenize(PreTokenizedString& s) const override {
    static const CharPattern digits([](char32_t c) { return is_number(c); });
    split_pieces(s, digits, individual_ ? SplitBehavior::kIsolated : SplitBehavior::kContiguous);
  }

 private:
  bool individual_;
};

class CharDelimiterPreTokenizer : public PreTokenizer {
 public:
  explicit CharDelimiterPreTokenizer(char32_t delimiter)
      : pattern_([delimiter](char32_t c) { return c == delimiter; }) {}
  void pre_tokenize(PreTokenizedString& s) const override { split_pieces(s, pattern_, SplitBehavior::kRemoved); }

 private:
  CharPattern pattern_;
};

class MetaspacePreTokenizer : public PreTokenizer {
 public:
  MetaspacePreTokenizer(char32_t replacement, PrependScheme scheme, bool split)
      : replacement_(replacement),
        scheme_(scheme),
        split_(split),
        space_([](char32_t c) { return c == U' '; }),
        marker_([replacement](char32_t c) { return c == replacement; }) {
    append_utf8(replacement_text_, replacement);
  }
  void pre_tokenize(PreTokenizedString& s) const override {
    s.split([&](NormalizedString&& piece, std::vector<Split>& out) {
      piece.replace(space_, replacement_text_);
      const bool starts = piece.get().compare(0, replacement_text_.size(), replacement_text_) == 0;
      if ((scheme_ == PrependScheme::kAlways && !starts) ||
          (scheme_ == PrependScheme::kFirst && !starts && piece.offsets_original().first == 0)) {
        piece.prepend(replacement_text_);
      }
      if (split_) {
        for (NormalizedString& part : piece.split(marker_, SplitBehavior::kMergedWithNext)) {
          out.push_back({std::move(part), std::nullopt});
        }
      } else {
        out.push_back({std::move(piece), std::nullopt});
      }
    });
  }

 private:
  char32_t replacement_;
  PrependScheme scheme_;
  bool split_;
  CharPattern space_, marker_;
  std::string replacement_text_;
};

char32_t single_char(const std::string& text, const std::string& where) {
  if (text.empty() || first_invalid_utf8(text) != std::string::npos) bad_json(where, "expected one character");
  size_t pos = 0;
  const char32_t c = next_char(text, pos);
  if (pos != text.size()) bad_json(where, "expected one character, found \"" + text + "\"");
  return c;
}

}  // namespace

std::unique_ptr<PreTokenizer> bert_pre_tokenizer() {
  return std::make_unique<BertPreTokenizer>();
}

std::unique_ptr<PreTokenizer> byte_level_pre_tokenizer(bool add_prefix_space, bool use_regex) {
  return std::make_unique<ByteLevelPreTokenizer>(add_prefix_space, use_regex);
}

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const Json& j, const std::string& where) {
  const std::string type = type_of(j, where);
  if (type == "Sequence") {
    const Json& list = member(j, "pretokenizers", where);
    if (!list.is_array()) bad_json(where + ".pretokenizers", "expected a list");
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    for (size_t k = 0; k < list.size(); ++k) {
      parts.push_back(make_pre_tokenizer(list[k], where + ".pretokenizers[" + std::to_string(k) + "]"));
    }
    return std::make_unique<SequencePreTokenizer>(std::move(parts));
  }
  if (type == "Split") {
    return std::make_unique<SplitPreTokenizer>(make_pattern(member(j, "pattern", where), where + ".pattern"),
                                               parse_behavior(string_member(j, "behavior", where), where + ".behavior"),
                                               bool_or(j, "invert", false, where));
  }
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevelPreTokenizer>(bool_or(j, "add_prefix_space", true, where),
                                                   bool_or(j, "use_regex", true, where));
  }
  if (type == "BertPreTokenizer") return std::make_unique<BertPreTokenizer>();
  if (type == "Whitespace") return std::make_unique<WhitespacePreTokenizer>();
  if (type == "WhitespaceSplit") return std::make_unique<WhitespaceSplitPreTokenizer>();
  if (type == "Punctuation") {
    return std::make_unique<PunctuationPreTokenizer>(
        parse_behavior(string_or(j, "behavior", "Isolated", where), where + ".behavior"));
  }
  if (type == "Digits") return std::make_unique<DigitsPreTokenizer>(bool_or(j, "individual_digits", false, where));
  if (type == "CharDelimiterSplit") {
    return std::make_unique<CharDelimiterPreTokenizer>(
        single_char(string_member(j, "delimiter", where), where + ".delimiter"));
  }
  if (type == "Metaspace") {
    return std::make_unique<MetaspacePreTokenizer>(
        single_char(string_member(j, "replacement", where), where + ".replacement"), metaspace_scheme(j, where),
        bool_or(j, "split", true, where));
  }
  throw Error(ErrorCode::kUnsupported, where + ": pre-tokenizer type \"" + type +
                                           "\" is not supported (Sequence, Split, ByteLevel, BertPreTokenizer, "
                                           "Whitespace, WhitespaceSplit, Punctuation, Digits, CharDelimiterSplit, "
                                           "Metaspace)");
}

}  // namespace attnprox::tok
