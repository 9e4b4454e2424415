// Building the stages of a tokenizer from the JSON of a Hugging Face tokenizer.json. Each factory throws
// Error(kInvalidArgument) naming the JSON path of what it cannot read, and Error(kUnsupported) for component
// types attnprox does not implement.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "components.hpp"

namespace attnprox::tok {

using Json = nlohmann::json;

std::unique_ptr<Normalizer> make_normalizer(const Json& j, const std::string& where);
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const Json& j, const std::string& where);
std::unique_ptr<Model> make_model(const Json& j, const std::string& where);
std::unique_ptr<PostProcessor> make_post_processor(const Json& j, const std::string& where);
std::unique_ptr<Decoder> make_decoder(const Json& j, const std::string& where);

/// A pattern given as {"String": "..."} or {"Regex": "..."}.
std::shared_ptr<const Pattern> make_pattern(const Json& j, const std::string& where);

// Reading fields with clear errors.
[[noreturn]] void bad_json(const std::string& where, const std::string& what);
const Json& member(const Json& object, const char* key, const std::string& where);
std::string string_member(const Json& object, const char* key, const std::string& where);
std::string string_or(const Json& object, const char* key, const std::string& fallback, const std::string& where);
bool bool_or(const Json& object, const char* key, bool fallback, const std::string& where);
std::string type_of(const Json& object, const std::string& where);

/// Metaspace's prepend_scheme ("always", "first", "never"; add_prefix_space=false means "never").
enum class PrependScheme { kAlways, kFirst, kNever };
PrependScheme metaspace_scheme(const Json& j, const std::string& where);

// Direct construction, for the tokenizers built from vocabulary files.
std::unique_ptr<Normalizer> bert_normalizer(bool clean_text, bool handle_chinese_chars, bool strip_accents,
                                            bool lowercase);
std::unique_ptr<PreTokenizer> bert_pre_tokenizer();
std::unique_ptr<PreTokenizer> byte_level_pre_tokenizer(bool add_prefix_space, bool use_regex);
std::unique_ptr<PostProcessor> byte_level_post_processor(bool add_prefix_space, bool trim_offsets);
std::unique_ptr<PostProcessor> bert_post_processor(std::string sep, uint32_t sep_id, std::string cls, uint32_t cls_id);
std::unique_ptr<Decoder> byte_level_decoder();
std::unique_ptr<Decoder> wordpiece_decoder(std::string prefix, bool cleanup);

}  // namespace attnprox::tok

namespace attnprox::tok {
std::unique_ptr<Model> bpe_from_files(const Json& vocab, const std::string& merges_text, const std::string& where);
std::unique_ptr<Model> wordpiece_from_lines(const std::vector<std::string>& lines, const std::string& where);
}  // namespace attnprox::tok
