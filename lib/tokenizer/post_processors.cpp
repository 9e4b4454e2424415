// Post-processors (HF tokenizers' processors/*.rs): special tokens around the sequence, and byte-level offset
// trimming.
#include <algorithm>
#include <map>
#include <optional>

#include "attnprox/error.hpp"
#include "tokenizer_json.hpp"

namespace attnprox::tok {

void RawEncoding::append(RawEncoding&& other) {
  auto move_into = [](auto& to, auto& from) { to.insert(to.end(), std::make_move_iterator(from.begin()),
                                                        std::make_move_iterator(from.end())); };
  move_into(ids, other.ids);
  move_into(tokens, other.tokens);
  move_into(offsets, other.offsets);
  move_into(char_offsets, other.char_offsets);
  move_into(special, other.special);
  move_into(type_ids, other.type_ids);
  move_into(sequence, other.sequence);
}

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

using SpecialToken = std::pair<std::string, uint32_t>;

/// Special tokens as an encoding of their own: no offsets, a type id, no input text.
RawEncoding specials(const std::vector<SpecialToken>& tokens, uint32_t type_id) {
  RawEncoding e;
  for (const auto& [token, id] : tokens) {
    e.ids.push_back(id);
    e.tokens.push_back(token);
    e.offsets.push_back({0, 0});
    e.char_offsets.push_back({0, 0});
    e.special.push_back(1);
    e.type_ids.push_back(type_id);
    e.sequence.push_back(-1);
  }
  return e;
}

/// before + e (its type ids set to `type_id`) + after, each special token with `type_id`.
RawEncoding surround(RawEncoding e, const std::vector<SpecialToken>& before, const std::vector<SpecialToken>& after,
                     uint32_t type_id) {
  RawEncoding out = specials(before, type_id);
  std::fill(e.type_ids.begin(), e.type_ids.end(), type_id);
  out.append(std::move(e));
  out.append(specials(after, type_id));
  return out;
}

class ByteLevelPostProcessor : public PostProcessor {
 public:
  ByteLevelPostProcessor(bool add_prefix_space, bool trim) : add_prefix_space_(add_prefix_space), trim_(trim) {}
  std::vector<RawEncoding> process_encodings(std::vector<RawEncoding> encodings, bool) const override {
    if (trim_) {
      for (RawEncoding& e : encodings) trim_offsets(e, add_prefix_space_);
    }
    return encodings;
  }

 private:
  bool add_prefix_space_, trim_;
};

/// [CLS] A [SEP] (type 0), then B [SEP] (type 1).
class BertPostProcessor : public PostProcessor {
 public:
  BertPostProcessor(SpecialToken sep, SpecialToken cls) : sep_(std::move(sep)), cls_(std::move(cls)) {}
  std::vector<RawEncoding> process_encodings(std::vector<RawEncoding> encodings,
                                             bool add_special_tokens) const override {
    if (!add_special_tokens) return encodings;
    for (size_t k = 0; k < encodings.size(); ++k) {
      encodings[k] = k == 0 ? surround(std::move(encodings[k]), {cls_}, {sep_}, 0)
                            : surround(std::move(encodings[k]), {}, {sep_}, 1);
    }
    return encodings;
  }

 private:
  SpecialToken sep_, cls_;
};

/// <s> A </s>, then </s> B </s>; every type id 0 (RoBERTa has one segment).
class RobertaPostProcessor : public PostProcessor {
 public:
  RobertaPostProcessor(SpecialToken sep, SpecialToken cls, bool trim, bool add_prefix_space)
      : sep_(std::move(sep)), cls_(std::move(cls)), trim_(trim), add_prefix_space_(add_prefix_space) {}
  std::vector<RawEncoding> process_encodings(std::vector<RawEncoding> encodings,
                                             bool add_special_tokens) const override {
    for (RawEncoding& e : encodings) {
      if (trim_) trim_offsets(e, add_prefix_space_);
      std::fill(e.type_ids.begin(), e.type_ids.end(), 0u);
    }
    if (!add_special_tokens) return encodings;
    for (size_t k = 0; k < encodings.size(); ++k) {
      encodings[k] = surround(std::move(encodings[k]), {k == 0 ? cls_ : sep_}, {sep_}, 0);
    }
    return encodings;
  }

 private:
  SpecialToken sep_, cls_;
  bool trim_, add_prefix_space_;
};

/// TemplateProcessing: the "single" or "pair" template's pieces, each sequence and special token with the type id
/// its piece gives.
class TemplatePostProcessor : public PostProcessor {
 public:
  struct Piece {
    int sequence = -1;  // 0 for $A, 1 for $B; -1 for special tokens
    std::vector<SpecialToken> tokens;
    uint32_t type_id = 0;
  };
  TemplatePostProcessor(std::vector<Piece> single, std::optional<std::vector<Piece>> pair)
      : single_(std::move(single)), pair_(std::move(pair)) {}
  std::vector<RawEncoding> process_encodings(std::vector<RawEncoding> encodings,
                                             bool add_special_tokens) const override {
    if (encodings.size() == 2 && !pair_) {
      throw Error(ErrorCode::kUnsupported, "the tokenizer's template has no pair template: it encodes single texts");
    }
    const std::vector<Piece>& pieces = encodings.size() == 2 ? *pair_ : single_;
    std::vector<RawEncoding> out;
    for (const Piece& piece : pieces) {
      if (piece.sequence >= 0) {
        RawEncoding e = encodings[static_cast<size_t>(piece.sequence)];
        std::fill(e.type_ids.begin(), e.type_ids.end(), piece.type_id);
        out.push_back(std::move(e));
      } else if (add_special_tokens) {
        out.push_back(specials(piece.tokens, piece.type_id));
      }
    }
    return out;
  }

 private:
  std::vector<Piece> single_;
  std::optional<std::vector<Piece>> pair_;
};

class SequencePostProcessor : public PostProcessor {
 public:
  explicit SequencePostProcessor(std::vector<std::unique_ptr<PostProcessor>> parts) : parts_(std::move(parts)) {}
  std::vector<RawEncoding> process_encodings(std::vector<RawEncoding> encodings,
                                             bool add_special_tokens) const override {
    for (const auto& part : parts_) encodings = part->process_encodings(std::move(encodings), add_special_tokens);
    return encodings;
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

/// The pieces of a template ("single" or "pair"): {"Sequence": {"id": "A"|"B", "type_id"}} or
/// {"SpecialToken": {"id", "type_id"}}, the special tokens expanded to their ids.
std::vector<TemplatePostProcessor::Piece> template_pieces(
    const Json& list, const std::string& where, const std::map<std::string, std::vector<SpecialToken>>& specials,
    bool pair) {
  if (!list.is_array()) bad_json(where, "expected a list of pieces");
  std::vector<TemplatePostProcessor::Piece> pieces;
  bool seen[2] = {false, false};
  for (size_t k = 0; k < list.size(); ++k) {
    const std::string at = where + "[" + std::to_string(k) + "]";
    const Json& piece = list[k];
    TemplatePostProcessor::Piece out;
    const char* kind = piece.contains("Sequence")       ? "Sequence"
                       : piece.contains("SpecialToken") ? "SpecialToken"
                                                        : nullptr;
    if (!kind) bad_json(at, "expected {\"Sequence\": ...} or {\"SpecialToken\": ...}");
    const Json& body = piece[kind];
    const std::string id = string_member(body, "id", at + "." + kind);
    if (body.contains("type_id")) {
      if (!body["type_id"].is_number_unsigned()) bad_json(at + "." + kind + ".type_id", "expected an integer");
      out.type_id = body["type_id"].get<uint32_t>();
    }
    if (std::string(kind) == "Sequence") {
      if (id != "A" && id != "B") bad_json(at, "a sequence is \"A\" or \"B\", found \"" + id + "\"");
      if (id == "B" && !pair) bad_json(at, "the single template holds sequence B");
      out.sequence = id == "A" ? 0 : 1;
      if (seen[out.sequence]) bad_json(where, "the template holds sequence " + id + " twice");
      seen[out.sequence] = true;
    } else {
      auto it = specials.find(id);
      if (it == specials.end()) bad_json(at, "special token \"" + id + "\" is not in special_tokens");
      out.tokens = it->second;
    }
    pieces.push_back(std::move(out));
  }
  if (!seen[0]) bad_json(where, "the template has no sequence A");
  if (pair && !seen[1]) bad_json(where, "the pair template has no sequence B");
  return pieces;
}

std::unique_ptr<PostProcessor> make_template(const Json& j, const std::string& where) {
  std::map<std::string, std::vector<SpecialToken>> specials;
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
  std::vector<TemplatePostProcessor::Piece> single =
      template_pieces(member(j, "single", where), where + ".single", specials, false);
  std::optional<std::vector<TemplatePostProcessor::Piece>> pair;
  // A missing or empty pair template: the tokenizer encodes single texts only.
  if (j.contains("pair") && j["pair"].is_array() && !j["pair"].empty()) {
    pair = template_pieces(j["pair"], where + ".pair", specials, true);
  }
  return std::make_unique<TemplatePostProcessor>(std::move(single), std::move(pair));
}

}  // namespace

std::unique_ptr<PostProcessor> byte_level_post_processor(bool add_prefix_space, bool trim_offsets) {
  return std::make_unique<ByteLevelPostProcessor>(add_prefix_space, trim_offsets);
}

std::unique_ptr<PostProcessor> bert_post_processor(std::string sep, uint32_t sep_id, std::string cls, uint32_t cls_id) {
  return std::make_unique<BertPostProcessor>(SpecialToken(std::move(sep), sep_id),
                                             SpecialToken(std::move(cls), cls_id));
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
