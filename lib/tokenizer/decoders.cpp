// Decoders (HF tokenizers' decoders/*.rs): token strings back to text.
#include "attnprox/error.hpp"
#include "tokenizer_json.hpp"

namespace attnprox::tok {

namespace {

class ByteLevelDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const std::string& token : tokens) {
      const size_t mark = bytes.size();
      bool all = true;
      for (size_t pos = 0; pos < token.size();) {
        const int b = char_to_byte(next_char(token, pos));
        if (b < 0) {
          all = false;
          break;
        }
        bytes.push_back(static_cast<char>(b));
      }
      if (!all) {  // a token outside the byte alphabet (an added token, say) is kept as it is
        bytes.resize(mark);
        bytes += token;
      }
    }
    tokens.assign(1, utf8_lossy(bytes));
  }
};

std::string replace_all(const std::string& text, const std::string& from, const std::string& to);

std::string wordpiece_cleanup(std::string text) {
  static const std::pair<const char*, const char*> rules[] = {
      {" .", "."},   {" ?", "?"},           {" !", "!"},   {" ,", ","},     {" ' ", "'"},   {" n't", "n't"},
      {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& [from, to] : rules) text = replace_all(text, from, to);
  return text;
}

class WordPieceDecoder : public Decoder {
 public:
  WordPieceDecoder(std::string prefix, bool cleanup) : prefix_(std::move(prefix)), cleanup_(cleanup) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string& token = tokens[i];
      if (i != 0) {
        if (token.compare(0, prefix_.size(), prefix_) == 0) {
          token.erase(0, prefix_.size());
        } else {
          token.insert(0, " ");
        }
      }
      if (cleanup_) token = wordpiece_cleanup(std::move(token));
    }
  }

 private:
  std::string prefix_;
  bool cleanup_;
};

class MetaspaceDecoder : public Decoder {
 public:
  MetaspaceDecoder(char32_t replacement, PrependScheme scheme) : replacement_(replacement), scheme_(scheme) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      for (size_t pos = 0; pos < tokens[i].size();) {
        const char32_t c = next_char(tokens[i], pos);
        if (c == replacement_) {
          if (!(i == 0 && scheme_ != PrependScheme::kNever)) out.push_back(' ');
        } else {
          append_utf8(out, c);
        }
      }
      tokens[i] = std::move(out);
    }
  }

 private:
  char32_t replacement_;
  PrependScheme scheme_;
};

class BPEDecoder : public Decoder {
 public:
  explicit BPEDecoder(std::string suffix) : suffix_(std::move(suffix)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      tokens[i] = replace_all(tokens[i], suffix_, i + 1 == tokens.size() ? "" : " ");
    }
  }

 private:
  std::string suffix_;
};

class ByteFallbackDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string pending;
    auto flush = [&] {
      if (pending.empty()) return;
      if (first_invalid_utf8(pending) == std::string::npos) {
        out.push_back(pending);
      } else {
        for (size_t k = 0; k < pending.size(); ++k) out.push_back("\xEF\xBF\xBD");
      }
      pending.clear();
    };
    for (std::string& token : tokens) {
      int byte = -1;
      if (token.size() == 6 && token.compare(0, 3, "<0x") == 0 && token[5] == '>') {
        const std::string hex = token.substr(3, 2);
        if (std::isxdigit(static_cast<unsigned char>(hex[0])) && std::isxdigit(static_cast<unsigned char>(hex[1]))) {
          byte = std::stoi(hex, nullptr, 16);
        }
      }
      if (byte >= 0) {
        pending.push_back(static_cast<char>(byte));
      } else {
        flush();
        out.push_back(std::move(token));
      }
    }
    flush();
    tokens = std::move(out);
  }
};

class FuseDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const std::string& t : tokens) all += t;
    tokens.assign(1, all);
  }
};

class StripDecoder : public Decoder {
 public:
  StripDecoder(char32_t content, size_t start, size_t stop) : content_(content), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& token : tokens) {
      const std::u32string chars = to_u32(token);
      size_t start_cut = 0;
      for (size_t i = 0; i < std::min(start_, chars.size()); ++i) {
        if (chars[i] != content_) break;
        start_cut = i + 1;
      }
      size_t stop_cut = chars.size();
      for (size_t i = 0; i < stop_ && i < chars.size(); ++i) {
        const size_t index = chars.size() - i - 1;
        if (chars[index] != content_) break;
        stop_cut = index;
      }
      std::string out;
      for (size_t i = start_cut; i < stop_cut; ++i) append_utf8(out, chars[i]);
      token = std::move(out);
    }
  }

 private:
  char32_t content_;
  size_t start_, stop_;
};

class ReplaceDecoder : public Decoder {
 public:
  ReplaceDecoder(std::shared_ptr<const Pattern> pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& token : tokens) {
      std::string out;
      for (const Match& m : pattern_->find_matches(token)) {
        out += m.is_match ? content_ : token.substr(m.start, m.end - m.start);
      }
      token = std::move(out);
    }
  }

 private:
  std::shared_ptr<const Pattern> pattern_;
  std::string content_;
};

std::string replace_all(const std::string& text, const std::string& from, const std::string& to) {
  if (from.empty()) return text;
  std::string out;
  size_t start = 0;
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, start)) {
    out.append(text, start, at - start);
    out += to;
    start = at + from.size();
  }
  out.append(text, start, std::string::npos);
  return out;
}

class CTCDecoder : public Decoder {
 public:
  CTCDecoder(std::string pad, std::string delimiter, bool cleanup)
      : pad_(std::move(pad)), delimiter_(std::move(delimiter)), cleanup_(cleanup) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0 && tokens[i] == tokens[i - 1]) continue;  // consecutive duplicates
      std::string replaced = replace_all(tokens[i], pad_, "");
      if (cleanup_) replaced = replace_all(wordpiece_cleanup(std::move(replaced)), delimiter_, " ");
      if (!replaced.empty()) out.push_back(std::move(replaced));
    }
    tokens = std::move(out);
  }

 private:
  std::string pad_, delimiter_;
  bool cleanup_;
};

class SequenceDecoder : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> parts) : parts_(std::move(parts)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& part : parts_) part->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> parts_;
};

char32_t one_char(const std::string& text, const std::string& where) {
  if (text.empty() || first_invalid_utf8(text) != std::string::npos) bad_json(where, "expected one character");
  size_t pos = 0;
  const char32_t c = next_char(text, pos);
  if (pos != text.size()) bad_json(where, "expected one character, found \"" + text + "\"");
  return c;
}

size_t count_member(const Json& j, const char* key, const std::string& where) {
  if (!j.contains(key)) return 0;
  if (!j[key].is_number_unsigned()) bad_json(where + "." + key, "expected a non-negative integer");
  return j[key].get<size_t>();
}

}  // namespace

std::unique_ptr<Decoder> byte_level_decoder() {
  return std::make_unique<ByteLevelDecoder>();
}

std::unique_ptr<Decoder> wordpiece_decoder(std::string prefix, bool cleanup) {
  return std::make_unique<WordPieceDecoder>(std::move(prefix), cleanup);
}

std::unique_ptr<Decoder> make_decoder(const Json& j, const std::string& where) {
  const std::string type = type_of(j, where);
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "WordPiece") {
    return std::make_unique<WordPieceDecoder>(string_or(j, "prefix", "##", where), bool_or(j, "cleanup", true, where));
  }
  if (type == "Metaspace") {
    return std::make_unique<MetaspaceDecoder>(one_char(string_member(j, "replacement", where), where + ".replacement"),
                                              metaspace_scheme(j, where));
  }
  if (type == "BPEDecoder") return std::make_unique<BPEDecoder>(string_or(j, "suffix", "</w>", where));
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    return std::make_unique<StripDecoder>(one_char(string_member(j, "content", where), where + ".content"),
                                          count_member(j, "start", where), count_member(j, "stop", where));
  }
  if (type == "Replace") {
    return std::make_unique<ReplaceDecoder>(make_pattern(member(j, "pattern", where), where + ".pattern"),
                                            string_member(j, "content", where));
  }
  if (type == "CTC") {
    return std::make_unique<CTCDecoder>(string_or(j, "pad_token", "<pad>", where),
                                        string_or(j, "word_delimiter_token", "|", where),
                                        bool_or(j, "cleanup", true, where));
  }
  if (type == "Sequence") {
    const Json& list = member(j, "decoders", where);
    if (!list.is_array()) bad_json(where + ".decoders", "expected a list");
    std::vector<std::unique_ptr<Decoder>> parts;
    for (size_t k = 0; k < list.size(); ++k) {
      parts.push_back(make_decoder(list[k], where + ".decoders[" + std::to_string(k) + "]"));
    }
    return std::make_unique<SequenceDecoder>(std::move(parts));
  }
  throw Error(ErrorCode::kUnsupported, where + ": decoder type \"" + type +
                                           "\" is not supported (ByteLevel, WordPiece, Metaspace, BPEDecoder, "
                                           "ByteFallback, Fuse, Strip, Replace, CTC, Sequence)");
}

}  // namespace attnprox::tok
