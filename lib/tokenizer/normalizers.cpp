// Normalizers (HF tokenizers' normalizers/*.rs): each rewrites a NormalizedString, keeping alignments.
#include <vector>

#include "attnprox/error.hpp"
#include "tokenizer_json.hpp"

namespace attnprox::tok {
namespace {

class SequenceNormalizer : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> parts) : parts_(std::move(parts)) {}
  void normalize(NormalizedString& s) const override {
    for (const auto& part : parts_) part->normalize(s);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

class UnicodeNormalizer : public Normalizer {
 public:
  explicit UnicodeNormalizer(NormalForm form) : form_(form) {}
  void normalize(NormalizedString& s) const override { s.normalize(form_); }

 private:
  NormalForm form_;
};

class LowercaseNormalizer : public Normalizer {
 public:
  void normalize(NormalizedString& s) const override { s.lowercase(); }
};

class StripNormalizer : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  void normalize(NormalizedString& s) const override { s.strip(left_, right_); }

 private:
  bool left_, right_;
};

class StripAccentsNormalizer : public Normalizer {
 public:
  void normalize(NormalizedString& s) const override {
    s.filter([](char32_t c) { return !is_mark(c); });  // HF: is_combining_mark, any M* character
  }
};

class ReplaceNormalizer : public Normalizer {
 public:
  ReplaceNormalizer(std::shared_ptr<const Pattern> pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void normalize(NormalizedString& s) const override { s.replace(*pattern_, content_); }

 private:
  std::shared_ptr<const Pattern> pattern_;
  std::string content_;
};

class PrependNormalizer : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  void normalize(NormalizedString& s) const override {
    if (!s.empty()) s.prepend(prefix_);
  }

 private:
  std::string prefix_;
};

bool bert_whitespace(char32_t c) {
  return c == '\t' || c == '\n' || c == '\r' || is_whitespace(c);
}
bool bert_control(char32_t c) {
  return !(c == '\t' || c == '\n' || c == '\r') && is_other(c);
}
bool chinese_char(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

class BertNormalizer : public Normalizer {
 public:
  BertNormalizer(bool clean_text, bool handle_chinese_chars, bool strip_accents, bool lowercase)
      : clean_text_(clean_text),
        handle_chinese_chars_(handle_chinese_chars),
        strip_accents_(strip_accents),
        lowercase_(lowercase) {}

  void normalize(NormalizedString& s) const override {
    if (clean_text_) {
      s.filter([](char32_t c) { return !(c == 0 || c == 0xFFFD || bert_control(c)); });
      s.map([](char32_t c) { return bert_whitespace(c) ? U' ' : c; });
    }
    if (handle_chinese_chars_) {
      std::vector<CharChange> changes;
      const std::string& text = s.get();
      bool any = false;
      changes.reserve(text.size());
      for (size_t pos = 0; pos < text.size();) {
        const char32_t c = next_char(text, pos);
        if (chinese_char(c)) {
          changes.push_back({U' ', 0});
          changes.push_back({c, 1});
          changes.push_back({U' ', 1});
          any = true;
        } else {
          changes.push_back({c, 0});
        }
      }
      if (any) s.transform(changes, 0);
    }
    if (strip_accents_) {
      s.normalize(NormalForm::kNFD);
      s.filter([](char32_t c) { return !is_mark_nonspacing(c); });
    }
    if (lowercase_) s.lowercase();
  }

 private:
  bool clean_text_, handle_chinese_chars_, strip_accents_, lowercase_;
};

class ByteLevelNormalizer : public Normalizer {
 public:
  void normalize(NormalizedString& s) const override {
    const std::string& text = s.get();
    std::vector<CharChange> changes;
    changes.reserve(text.size());
    for (size_t pos = 0; pos < text.size();) {
      const size_t start = pos;
      next_char(text, pos);
      for (size_t k = start; k < pos; ++k) {
        changes.push_back({byte_to_char(static_cast<unsigned char>(text[k])), k > start ? 1 : 0});
      }
    }
    s.transform(changes, 0);
  }
};

/// NMT cleaning (HF normalizers/unicode.rs `Nmt`): drop some control characters, map others to a space.
class NmtNormalizer : public Normalizer {
 public:
  void normalize(NormalizedString& s) const override {
    s.filter([](char32_t c) {
      return !((c >= 0x0001 && c <= 0x0008) || c == 0x000B || (c >= 0x000E && c <= 0x001F) || c == 0x007F ||
               c == 0x008F || c == 0x009F);
    });
    s.map([](char32_t c) {
      switch (c) {
        case 0x0009:
        case 0x000A:
        case 0x000C:
        case 0x000D:
        case 0x1680:
        case 0x200B:
        case 0x200C:
        case 0x200D:
        case 0x200E:
        case 0x200F:
        case 0x2028:
        case 0x2029:
        case 0x2581:
        case 0xFEFF:
        case 0xFFFD: return U' ';
        default: return (c >= 0x200B && c <= 0x200F) ? U' ' : c;
      }
    });
  }
};

}  // namespace

std::unique_ptr<Normalizer> bert_normalizer(bool clean_text, bool handle_chinese_chars, bool strip_accents,
                                            bool lowercase) {
  return std::make_unique<BertNormalizer>(clean_text, handle_chinese_chars, strip_accents, lowercase);
}

std::unique_ptr<Normalizer> make_normalizer(const Json& j, const std::string& where) {
  const std::string type = type_of(j, where);
  if (type == "Sequence") {
    const Json& list = member(j, "normalizers", where);
    if (!list.is_array()) bad_json(where + ".normalizers", "expected a list");
    std::vector<std::unique_ptr<Normalizer>> parts;
    for (size_t k = 0; k < list.size(); ++k) {
      parts.push_back(make_normalizer(list[k], where + ".normalizers[" + std::to_string(k) + "]"));
    }
    return std::make_unique<SequenceNormalizer>(std::move(parts));
  }
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(NormalForm::kNFC);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(NormalForm::kNFD);
  if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(NormalForm::kNFKC);
  if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(NormalForm::kNFKD);
  if (type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
  if (type == "Strip") {
    return std::make_unique<StripNormalizer>(bool_or(j, "strip_left", true, where),
                                             bool_or(j, "strip_right", true, where));
  }
  if (type == "StripAccents") return std::make_unique<StripAccentsNormalizer>();
  if (type == "Replace") {
    return std::make_unique<ReplaceNormalizer>(make_pattern(member(j, "pattern", where), where + ".pattern"),
                                               string_member(j, "content", where));
  }
  if (type == "Prepend") return std::make_unique<PrependNormalizer>(string_member(j, "prepend", where));
  if (type == "BertNormalizer") {
    const bool lowercase = bool_or(j, "lowercase", true, where);
    bool strip_accents = lowercase;
    if (j.contains("strip_accents") && !j["strip_accents"].is_null()) {
      strip_accents = bool_or(j, "strip_accents", lowercase, where);
    }
    return std::make_unique<BertNormalizer>(bool_or(j, "clean_text", true, where),
                                            bool_or(j, "handle_chinese_chars", true, where), strip_accents, lowercase);
  }
  if (type == "ByteLevel") return std::make_unique<ByteLevelNormalizer>();
  if (type == "Nmt") return std::make_unique<NmtNormalizer>();
  throw Error(ErrorCode::kUnsupported, where + ": normalizer type \"" + type +
                                           "\" is not supported (Sequence, NFC, NFD, NFKC, NFKD, Lowercase, Strip, "
                                           "StripAccents, Replace, Prepend, BertNormalizer, ByteLevel, Nmt)");
}

}  // namespace attnprox::tok
