// The tokenizer pipeline (HF tokenizers' TokenizerImpl::encode / decode) and the ways to build one.
#include "attnprox/tokenizer.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "../common/limits.hpp"
#include "added_vocabulary.hpp"
#include "tokenizer_json.hpp"

namespace attnprox {

struct Tokenizer::Impl {
  std::unique_ptr<tok::Normalizer> normalizer;
  std::unique_ptr<tok::PreTokenizer> pre_tokenizer;
  std::unique_ptr<tok::Model> model;
  std::unique_ptr<tok::PostProcessor> post_processor;
  std::unique_ptr<tok::Decoder> decoder;
  tok::AddedVocabulary added;
};

namespace detail {
/// The tokenizer's code outside the members of Tokenizer names its private state through this.
struct TokenizerAccess {
  using Impl = Tokenizer::Impl;
};
}  // namespace detail
using TokenizerImpl = detail::TokenizerAccess::Impl;

namespace {

std::string read_file(const std::string& path, const char* what) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status))
    throw Error(ErrorCode::kNotFound, std::string(what) + " '" + path + "' does not exist");
  if (std::filesystem::is_directory(status)) {
    throw Error(ErrorCode::kInvalidArgument, std::string(what) + " '" + path + "' is a directory");
  }
  // A FIFO, socket or device would block the open or never end: only regular files are read.
  if (!std::filesystem::is_regular_file(status)) {
    throw Error(ErrorCode::kInvalidArgument, std::string(what) + " '" + path + "' is not a regular file");
  }
  const auto size = std::filesystem::file_size(path, ec);
  if (!ec && size > limits::kMaxTokenizerBytes) {
    throw Error(ErrorCode::kInvalidArgument, std::string(what) + " '" + path + "' is " + std::to_string(size) +
                                                 " bytes, more than the " + std::to_string(limits::kMaxTokenizerBytes) +
                                                 " attnprox reads");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCode::kNotFound, std::string(what) + " '" + path + "' cannot be read");
  std::string out;
  char block[1 << 16];
  while (in.read(block, sizeof block) || in.gcount() > 0) {  // bounded even when the file grows meanwhile
    out.append(block, static_cast<size_t>(in.gcount()));
    if (out.size() > limits::kMaxTokenizerBytes) {
      throw Error(ErrorCode::kInvalidArgument, std::string(what) + " '" + path + "' is more than the " +
                                                   std::to_string(limits::kMaxTokenizerBytes) +
                                                   " bytes attnprox reads");
    }
  }
  return out;
}

tok::Json parse_json(const std::string& text, const std::string& what) {
  if (text.size() > limits::kMaxTokenizerBytes) {
    throw Error(ErrorCode::kInvalidArgument, what + " is " + std::to_string(text.size()) + " bytes, more than the " +
                                                 std::to_string(limits::kMaxTokenizerBytes) + " attnprox reads");
  }
  if (const size_t at = limits::json_too_deep(text); at != std::string::npos) {
    throw Error(ErrorCode::kInvalidArgument, what + " nests JSON more than " + std::to_string(limits::kMaxJsonDepth) +
                                                 " levels deep (at byte " + std::to_string(at) + ")");
  }
  try {
    return tok::Json::parse(text);
  } catch (const tok::Json::exception& e) {  // syntax errors, and numbers that do not fit
    throw Error(ErrorCode::kInvalidArgument, what + " is not valid JSON: " + limits::clipped(e.what(), 200));
  }
}

std::vector<tok::AddedToken> read_added_tokens(const tok::Json& root) {
  std::vector<tok::AddedToken> out;
  if (!root.contains("added_tokens") || root["added_tokens"].is_null()) return out;
  const tok::Json& list = root["added_tokens"];
  if (!list.is_array()) tok::bad_json("added_tokens", "expected a list");
  if (list.size() > limits::kMaxAddedTokens) {
    tok::bad_json("added_tokens", std::to_string(list.size()) + " tokens, more than the " +
                                      std::to_string(limits::kMaxAddedTokens) + " allowed");
  }
  for (size_t k = 0; k < list.size(); ++k) {
    const std::string where = "added_tokens[" + std::to_string(k) + "]";
    const tok::Json& t = list[k];
    const tok::Json& id = tok::member(t, "id", where);
    if (!id.is_number_unsigned() || id.get<uint64_t>() > 0xFFFFFFFFu) tok::bad_json(where + ".id", "expected an id");
    tok::AddedToken token;
    token.id = id.get<uint32_t>();
    token.content = tok::string_member(t, "content", where);
    if (token.content.size() > limits::kMaxAddedTokenBytes) {
      tok::bad_json(where + ".content", std::to_string(token.content.size()) + " bytes, more than the " +
                                            std::to_string(limits::kMaxAddedTokenBytes) + " an added token may have");
    }
    token.special = tok::bool_or(t, "special", false, where);
    token.single_word = tok::bool_or(t, "single_word", false, where);
    token.lstrip = tok::bool_or(t, "lstrip", false, where);
    token.rstrip = tok::bool_or(t, "rstrip", false, where);
    token.normalized = tok::bool_or(t, "normalized", !token.special, where);
    out.push_back(std::move(token));
  }
  return out;
}

template <typename Make>
auto optional_stage(const tok::Json& root, const char* key, Make make) -> decltype(make(root, std::string())) {
  if (!root.contains(key) || root[key].is_null()) return nullptr;
  return make(root[key], key);
}

/// The stages of the pipeline (normalizers, pre-tokenizers, post-processors, decoders, nested Sequences included)
/// each run on every text: their number is bounded, whatever the nesting.
void check_stage_count(const tok::Json& root) {
  size_t stages = 0;
  std::vector<const tok::Json*> pending;
  for (const char* key : {"normalizer", "pre_tokenizer", "post_processor", "decoder"}) {
    if (root.contains(key)) pending.push_back(&root[key]);
  }
  while (!pending.empty()) {
    const tok::Json& j = *pending.back();
    pending.pop_back();
    if (j.is_object() && j.contains("type") && ++stages > limits::kMaxStages) {
      tok::bad_json("(top level)", "more than " + std::to_string(limits::kMaxStages) +
                                       " normalizer, pre-tokenizer, post-processor and decoder stages");
    }
    if (j.is_object() || j.is_array()) {
      for (const tok::Json& child : j) pending.push_back(&child);
    }
  }
}

void check_text(std::string_view text) {
  const size_t bad = tok::first_invalid_utf8(text);
  if (bad != std::string_view::npos) {
    char byte[8];
    std::snprintf(byte, sizeof byte, "0x%02X", static_cast<unsigned char>(text[bad]));
    throw Error(ErrorCode::kInvalidArgument, "text is not valid UTF-8: byte " + std::string(byte) + " at offset " +
                                                 std::to_string(bad) + " does not begin a valid character");
  }
}

/// Byte offset → character offset, as HF's BytesToCharOffsetConverter (an end at the text's end maps past the last
/// character; an offset that is not a character start is left in bytes).
class CharOffsets {
 public:
  explicit CharOffsets(std::string_view text) : char_of_byte_(text.size() + 1, 0), starts_(text.size() + 1, false) {
    size_t chars = 0;
    for (size_t pos = 0; pos < text.size();) {
      const size_t start = pos;
      tok::next_char(text, pos);
      for (size_t k = start; k < pos; ++k) char_of_byte_[k] = chars;
      starts_[start] = true;
      ++chars;
    }
    size_ = text.size();
  }
  tok::Offsets convert(tok::Offsets o) const {
    if (o.first >= size_ || o.second > size_) return o;  // not in the map: HF keeps the byte offsets
    const size_t start = char_of_byte_[o.first];
    if (o.second < size_) return {start, char_of_byte_[o.second]};
    return {start, o.second == 0 ? start + 1 : char_of_byte_[o.second - 1] + 1};
  }

 private:
  std::vector<size_t> char_of_byte_;
  std::vector<bool> starts_;
  size_t size_ = 0;
};

}  // namespace

Tokenizer Tokenizer::from_json(const std::string& json) {
  const tok::Json root = parse_json(json, "tokenizer.json");
  try {
    if (!root.is_object()) tok::bad_json("(top level)", "expected an object");
    check_stage_count(root);
    auto impl = std::make_shared<Impl>();
    impl->normalizer = optional_stage(root, "normalizer", tok::make_normalizer);
    impl->pre_tokenizer = optional_stage(root, "pre_tokenizer", tok::make_pre_tokenizer);
    impl->model = tok::make_model(tok::member(root, "model", "(top level)"), "model");
    impl->post_processor = optional_stage(root, "post_processor", tok::make_post_processor);
    impl->decoder = optional_stage(root, "decoder", tok::make_decoder);
    if (root.contains("truncation") && !root["truncation"].is_null()) {
      throw Error(ErrorCode::kUnsupported,
                  "tokenizer.json: truncation is set; attnprox encodes whole texts (remove it)");
    }
    impl->added = tok::AddedVocabulary(read_added_tokens(root), impl->normalizer.get());
    return Tokenizer(std::move(impl));
  } catch (const tok::Json::exception& e) {
    // The readers check every field they use; this catches what slips through (a value of an unexpected type).
    throw Error(ErrorCode::kInvalidArgument, std::string("tokenizer.json: unexpected content: ") + e.what());
  }
}

Tokenizer Tokenizer::from_file(const std::string& path) {
  return from_json(read_file(path, "tokenizer file"));
}

Tokenizer Tokenizer::byte_level_bpe(const std::string& vocab_json, const std::string& merges_txt) {
  const tok::Json vocab = parse_json(read_file(vocab_json, "vocabulary file"), "'" + vocab_json + "'");
  auto impl = std::make_shared<Impl>();
  impl->model = tok::bpe_from_files(vocab, read_file(merges_txt, "merges file"), merges_txt);
  impl->pre_tokenizer = tok::byte_level_pre_tokenizer(/*add_prefix_space=*/false, /*use_regex=*/true);
  impl->post_processor = tok::byte_level_post_processor(/*add_prefix_space=*/true, /*trim_offsets=*/false);
  impl->decoder = tok::byte_level_decoder();
  return Tokenizer(std::move(impl));
}

Tokenizer Tokenizer::wordpiece(const std::string& vocab_txt, bool lowercase) {
  const std::string text = read_file(vocab_txt, "vocabulary file");
  if (tok::first_invalid_utf8(text) != std::string::npos) {
    throw Error(ErrorCode::kInvalidArgument, "vocabulary file '" + vocab_txt + "' is not valid UTF-8");
  }
  std::vector<std::string> lines;
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    // HF reads vocab.txt with trim_end() on every line (Unicode whitespace, whole characters).
    while (!line.empty()) {
      size_t last = line.size() - 1;
      while (last > 0 && (static_cast<unsigned char>(line[last]) & 0xC0) == 0x80) --last;
      size_t pos = last;
      if (!tok::is_whitespace(tok::next_char(line, pos))) break;
      line.resize(last);
    }
    lines.push_back(std::move(line));
    start = end + 1;
  }
  auto impl = std::make_shared<Impl>();
  impl->model = tok::wordpiece_from_lines(lines, vocab_txt);
  std::vector<tok::AddedToken> specials;
  for (const char* name : {"[UNK]", "[SEP]", "[CLS]", "[PAD]", "[MASK]"}) {
    if (auto id = impl->model->token_to_id(name)) specials.push_back({*id, name, false, false, false, false, true});
  }
  impl->normalizer = tok::bert_normalizer(true, true, lowercase, lowercase);
  impl->pre_tokenizer = tok::bert_pre_tokenizer();
  auto sep = impl->model->token_to_id("[SEP]"), cls = impl->model->token_to_id("[CLS]");
  if (sep && cls) impl->post_processor = tok::bert_post_processor("[SEP]", *sep, "[CLS]", *cls);
  impl->decoder = tok::wordpiece_decoder("##", true);
  impl->added = tok::AddedVocabulary(std::move(specials), impl->normalizer.get());
  return Tokenizer(std::move(impl));
}

namespace {
/// One text through the pipeline up to the model (HF's encode_single_sequence): its tokens with offsets in it, the
/// type id and sequence number of an input text.
tok::RawEncoding encode_sequence(const TokenizerImpl& t, std::string_view text, uint32_t type_id, int32_t sequence) {
  check_text(text);
  tok::PreTokenizedString pieces{std::string(text)};
  t.added.extract_and_normalize(pieces, t.normalizer.get());
  if (t.pre_tokenizer) t.pre_tokenizer->pre_tokenize(pieces);

  tok::RawEncoding raw;
  const CharOffsets chars(text);
  std::vector<tok::Token> tokens;
  for (tok::Split& piece : pieces.splits()) {
    const bool added = piece.tokens.has_value();
    if (!added) {
      tokens.clear();
      t.model->tokenize(piece.normalized.get(), tokens);
    }
    const std::vector<tok::Token>& found = added ? *piece.tokens : tokens;
    const size_t base = piece.normalized.offsets_original().first;
    for (const tok::Token& token : found) {
      tok::Offsets offsets = token.offsets;
      if (auto original = piece.normalized.normalized_to_original(token.offsets.first, token.offsets.second)) {
        offsets = {base + original->first, base + original->second};
      }
      raw.ids.push_back(token.id);
      if (!token.value.empty()) {
        raw.tokens.push_back(token.value);
      } else {
        const std::string* value = t.model->id_to_token(token.id);
        raw.tokens.push_back(value ? *value : std::string());
      }
      raw.offsets.push_back(offsets);
      raw.char_offsets.push_back(chars.convert(offsets));
      raw.special.push_back(added && t.added.is_special(token.id) ? 1 : 0);
    }
  }
  raw.type_ids.assign(raw.size(), type_id);
  raw.sequence.assign(raw.size(), sequence);
  return raw;
}

/// The post-processor over the input texts' encodings, and their concatenation (HF's PostProcessor::process).
Encoding post_process(const TokenizerImpl& t, std::vector<tok::RawEncoding> encodings, bool add_special_tokens) {
  if (t.post_processor) encodings = t.post_processor->process_encodings(std::move(encodings), add_special_tokens);
  tok::RawEncoding raw;
  for (tok::RawEncoding& e : encodings) raw.append(std::move(e));
  Encoding out;
  out.ids.assign(raw.ids.begin(), raw.ids.end());
  out.tokens = std::move(raw.tokens);
  out.offsets = std::move(raw.offsets);
  out.char_offsets = std::move(raw.char_offsets);
  out.special = std::move(raw.special);
  out.type_ids = std::move(raw.type_ids);
  out.sequence_ids = std::move(raw.sequence);
  return out;
}
}  // namespace

Encoding Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  std::vector<tok::RawEncoding> encodings;
  encodings.push_back(encode_sequence(*impl_, text, 0, 0));
  return post_process(*impl_, std::move(encodings), add_special_tokens);
}

Encoding Tokenizer::encode_pair(std::string_view text, std::string_view pair, bool add_special_tokens) const {
  std::vector<tok::RawEncoding> encodings;
  encodings.push_back(encode_sequence(*impl_, text, 0, 0));
  encodings.push_back(encode_sequence(*impl_, pair, 1, 1));
  return post_process(*impl_, std::move(encodings), add_special_tokens);
}

namespace {
/// The string of a token id: an added token's content (or, for decoding, its normalized form), else the model's.
const std::string& token_of(const TokenizerImpl& t, int64_t id, bool for_decoding) {
  if (id >= 0 && id <= 0xFFFFFFFFll) {
    const auto key = static_cast<uint32_t>(id);
    if (const tok::AddedToken* added = t.added.find(key))
      return for_decoding ? *t.added.decoded_form(key) : added->content;
    if (const std::string* token = t.model->id_to_token(key)) return *token;
  }
  throw Error(ErrorCode::kInvalidArgument, "token id " + std::to_string(id) + " is not in the tokenizer's vocabulary");
}
}  // namespace

std::string Tokenizer::decode(const std::vector<int64_t>& ids, bool skip_special_tokens) const {
  const Impl& t = *impl_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int64_t id : ids) {
    const std::string& token = token_of(t, id, true);
    if (skip_special_tokens && t.added.is_special(static_cast<uint32_t>(id))) continue;
    tokens.push_back(token);
  }
  if (!t.decoder) {
    std::string out;
    for (size_t k = 0; k < tokens.size(); ++k) out += (k ? " " : "") + tokens[k];
    return out;
  }
  t.decoder->decode_chain(tokens);
  std::string out;
  for (const std::string& piece : tokens) out += piece;
  return out;
}

std::vector<std::string> Tokenizer::tokens(const std::vector<int64_t>& ids) const {
  std::vector<std::string> out;
  out.reserve(ids.size());
  for (int64_t id : ids) out.push_back(token_of(*impl_, id, false));
  return out;
}

std::optional<int64_t> Tokenizer::token_to_id(const std::string& token) const {
  if (auto id = impl_->added.id_of(token)) return *id;
  if (auto id = impl_->model->token_to_id(token)) return *id;
  return std::nullopt;
}

size_t Tokenizer::vocab_size() const {
  size_t size = impl_->model->vocab_size();
  for (const tok::AddedToken& t : impl_->added.tokens()) {
    if (!impl_->model->id_to_token(t.id)) ++size;
  }
  return size;
}

bool Tokenizer::is_special(int64_t id) const {
  return id >= 0 && id <= 0xFFFFFFFFll && impl_->added.is_special(static_cast<uint32_t>(id));
}

}  // namespace attnprox
