// Post-processors (HF tokenizers' processors/*.rs): special tokens around the sequence, and byte-level offset
// trimming.
#include <map>

#include "attnprox/error.hpp"
#include "tokenizer_json.hpp"

namespace attnprox::tok {

namespace {

/// HF's byte_level::process_offsets: offsets no longer cover leading/trailing spaces of a token.
void trim_offsets(RawEncoding& e, bool add_prefix_space) {
  const char32_t space = byte_to_char(' ');
  for (size_t i = 0; i < e.ids.size(); ++i) {
    const std::u32string chars = to_u32(e.tokens[i]);
    auto is_space = [&](char32_t c) { return c == space || is_whitespace(c); };
    size_t leading = 0, trailing = 0;
    while (leading < chars.size() && is_space(chars[leading])) ++leading;
    while (trailing < chars.size() && is_space(chars[chars.size() - 1 - trailing])) ++trailing;
    if (leading == 0 && trailing == 0) continue;
    for (Offsets* o : {&e.offsets[i], &e.char_offsets[i]}) {
      size_t lead = leading;
      if (lead > 0) {
        const bool is_first = i == 0 || o->first == 0;
        if (is_first && add_prefix_space && lead == 1) lead = 0;
        o->first = std::min(o->first + lead, o->second);
      }
      if (trailing > 0 && o->second >= trailing) o->second = std::max(o->second - trailing, o->first);
    }
  }
}

void surround(RawEncoding& e, const std::vector<std::pair<std::string, uint32_t>>& before,
              const std::vector<std::pair<std::string, uint32_t>>& after) {
  RawEncoding out;
  const size_t n = before.size() + e.ids.size() + after.size();
  out.ids.reserve(n);
  out.tokens.reserve(n);
  out.offsets.reserve(n);
  out.char_offsets.reserve(n);
  out.special.reserve(n);
  auto add_special = [&](const std::pair<std::string, uint32_t>& t) {
    out.ids.push_back(t.second);
    out.tokens.push_back(t.first);
    out.offsets.push_back({0, 0});
    out.char_offsets.push_back({0, 0});
    out.special.push_back(1);
  };
  for (const auto& t : before) add_special(t);
  for (size_t i = 0; i < e.ids.size(); ++i) {
    out.ids.push_back(e.ids[i]);
    out.tokens.push_back(std::move(e.tokens[i]));
    out.offsets.push_back(e.offsets[i]);
    out.char_offsets.push_back(e.char_offsets[i]);
    out.special.push_back(e.special[i]);
  }
  for (const auto& t : after) add_special(t);
  e = std::move(out);
}

class ByteLevelPostProcessor : public PostProcessor {
 public:
  ByteLevelPostProcessor(bool add_prefix_space, bool trim) : add_prefix_space_(add_prefix_space), trim_(trim) {}
  void process(RawEncoding& e, bool) const override {
    if (trim_) trim_offsets(e, add_prefix_space_);
  }

 private:
  bool add_prefix_space_, trim_;
};

class BertPostProcessor : public PostProcessor {
 public:
  BertPostProcessor(std::pair<std::string, uint32_t> sep, std::pair<std::string, uint32_t> cls)
      : sep_(std::move(sep)), cls_(std::move(cls)) {}
  void process(RawEncoding& e, bool add_special_tokens) const override {
    if (add_special_tokens) surround(e, {cls_}, {sep_});
  }

 private:
  std::pair<std::string, uint32_t> sep_, cls_;
};

class RobertaPostProcessor : public PostProcessor {
 public:
  RobertaPostProcessor(std::pair<std::string, uint32_t> sep, std::pair<std::string, uint32_t> cls, bool trim,
                       bool add_prefix_space)
      : sep_(std::move(sep)), cls_(std::move(cls)), trim_(trim), add_prefix_space_(add_prefix_space) {}
  void process(RawEncoding& e, bool add_special_tokens) const override {
    if (trim_) trim_offsets(e, add_prefix_space_);
    if (add_special_tokens) surround(e, {cls_}, {sep_});
  }

 private:
  std::pair<std::string, uint32_t> sep_, cls_;
  bool trim_, add_prefix_space_;
};

/// TemplateProcessing for single sequences: the "single" template, special tokens expanded to their ids.
class TemplatePostProcessor : public PostProcessor {
 public:
  TemplatePostProcessor(std::vector<std::pair<std::string, uint32_t>> before,
                        std::vector<std::pair<std::string, uint32_t>> after)
      : before_(std::move(before)), after_(std::move(after)) {}
  void process(RawEncoding& e, bool add_special_tokens) const override {
    if (add_special_tokens) surround(e, before_, after_);
  }

 private:
  std::vector<std::pair<std::string, uint32_t>> before_, after_;
};

class SequencePostProcessor : public PostProcessor {
 public:
  explicit SequencePostProcessor(std::vector<std::unique_ptr<PostProcessor>> parts) : parts_(std::move(parts)) {}
  void process(RawEncoding& e, bool add_special_tokens) const override {
    for (const auto& part : parts_) part->process(e, add_special_tokens);
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> parts_;
};

std::pair<std::string, uint32_t> token_pair(const Json& j, const std::string& where) {
  if (!j.is_array() || j.size() != 2 || !j[0].is_string() || !j[1].is_number_unsigned()) {
    bad_json(where, "expected [\"token\", id]");
  }
  return {j[0].get<std::string>(), j[1].get<uint32_t>()};
}

std::unique_ptr<PostProcessor> make_template(const Json& j, const std::string& where) {
  const Json& single = member(j, "single", where);
  if (!single.is_array()) bad_json(where + ".single", "expected a list of pieces");
  std::map<std::string, std::vector<std::pair<std::string, uint32_t>>> specials;
  if (j.contains("special_tokens")) {
    const Json& table = j["special_tokens"];
    if (!table.is_object()) bad_json(where + ".special_tokens", "expected an object");
    for (const auto& [name, entry] : table.items()) {
      const std::string at = where + ".special_tokens[\"" + name + "\"]";
      const Json& ids = member(entry, "ids", at);
      const Json& tokens = member(entry, "tokens", at);
      if (!ids.is_array() || !tokens.is_array() || ids.size() != tokens.size()) {
        bad_json(at, "expected lists ids and tokens of the same length");
      }
      for (size_t k = 0; k < ids.size(); ++k) {
        if (!ids[k].is_number_unsigned() || !tokens[k].is_string()) bad_json(at, "expected integer ids and strings");
        specials[name].emplace_back(tokens[k].get<std::string>(), ids[k].get<uint32_t>());
      }
    }
  }
  std::vector<std::pair<std::string, uint32_t>> before, after;
  bool seen_sequence = false;
  for (size_t k = 0; k < single.size(); ++k) {
    const std::string at = where + ".single[" + std::to_string(k) + "]";
    const Json& piece = single[k];
    if (piece.contains("Sequence")) {
      if (seen_sequence) bad_json(at, "the single template holds the sequence twice");
      seen_sequence = true;
    } else if (piece.contains("SpecialToken")) {
      const std::string id = string_member(piece["SpecialToken"], "id", at + ".SpecialToken");
      auto it = specials.find(id);
      if (it == specials.end()) bad_json(at, "special token \"" + id + "\" is not in special_tokens");
      auto& target = seen_sequence ? after : before;
      target.insert(target.end(), it->second.begin(), it->second.end());
    } else {
      bad_json(at, "expected {\"Sequence\": ...} or {\"SpecialToken\": ...}");
    }
  }
  if (!seen_sequence) bad_json(where + ".single", "the template has no sequence");
  return std::make_unique<TemplatePostProcessor>(std::move(before), std::move(after));
}

}  // namespace

std::unique_ptr<PostProcessor> byte_level_post_processor(bool add_prefix_space, bool trim_offsets) {
  return std::make_unique<ByteLevelPostProcessor>(add_prefix_space, trim_offsets);
}

std::unique_ptr<PostProcessor> bert_post_processor(std::string sep, uint32_t sep_id, std::string cls, uint32_t cls_id) {
  return std::make_unique<BertPostProcessor>(std::make_pair(std::move(sep), sep_id),
                                             std::make_pair(std::move(cls), cls_id));
}

std::unique_ptr<PostProcessor> make_post_processor(const Json& j, const std::string& where) {
  const std::string type = type_of(j, where);
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevelPostProcessor>(bool_or(j, "add_prefix_space", true, where),
                                                    bool_or(j, "trim_offsets", true, where));
  }
  if (type == "BertProcessing") {
    return std::make_unique<BertPostProcessor>(token_pair(member(j, "sep", where), where + ".sep"),
                                               token_pair(member(j, "cls", where), where + ".cls"));
  }
  if (type == "RobertaProcessing") {
    return std::make_unique<RobertaPostProcessor>(
        token_pair(member(j, "sep", where), where + ".sep"), token_pair(member(j, "cls", where), where + ".cls"),
        bool_or(j, "trim_offsets", true, where), bool_or(j, "add_prefix_space", true, where));
  }
  if (type == "TemplateProcessing") return make_template(j, where);
  if (type == "Sequence") {
    const Json& list = member(j, "processors", where);
    if (!list.is_array()) bad_json(where + ".processors", "expected a list");
    std::vector<std::unique_ptr<PostProcessor>> parts;
    for (size_t k = 0; k < list.size(); ++k) {
      parts.push_back(make_post_processor(list[k], where + ".processors[" + std::to_string(k) + "]"));
    }
    return std::make_unique<SequencePostProcessor>(std::move(parts));
  }
  throw Error(ErrorCode::kUnsupported, where + ": post-processor type \"" + type +
                                           "\" is not supported (ByteLevel, BertProcessing, RobertaProcessing, "
                                           "TemplateProcessing, Sequence)");
}

}  // namespace attnprox::tok
