// The tokenizer pipeline on small hand-made tokenizers (expectations worked out by hand), and clear errors for
// malformed tokenizer.json files and invalid text.
#include "attnprox/tokenizer.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "../expect_error.hpp"

namespace attnprox {
namespace {

using nlohmann::json;

using testing::expect_error;

/// BPE over the alphabet a, b, c with merges "a b" (rank 0) and "ab c" (rank 1); whitespace splits words.
json small_bpe() {
  return json::parse(R"({
    "version": "1.0", "truncation": null, "padding": null,
    "added_tokens": [{"id": 6, "content": "<eos>", "single_word": false, "lstrip": false, "rstrip": false,
                      "normalized": false, "special": true}],
    "normalizer": {"type": "Lowercase"},
    "pre_tokenizer": {"type": "WhitespaceSplit"},
    "post_processor": {"type": "TemplateProcessing",
      "single": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "<eos>", "type_id": 0}}],
      "pair": [],
      "special_tokens": {"<eos>": {"id": "<eos>", "ids": [6], "tokens": ["<eos>"]}}},
    "decoder": null,
    "model": {"type": "BPE", "dropout": null, "unk_token": "<unk>", "continuing_subword_prefix": null,
              "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
              "vocab": {"<unk>": 0, "a": 1, "b": 2, "c": 3, "ab": 4, "abc": 5},
              "merges": ["a b", "ab c"]}
  })");
}

TEST(Tokenizer, BpeMergesByRank) {
  Tokenizer t = Tokenizer::from_json(small_bpe().dump());
  // "abcab": a b c a b → (a b) c (a b) → (ab c) ab → abc ab
  Encoding e = t.encode("ABCab cx");
  EXPECT_EQ(e.ids, (std::vector<int64_t>{5, 4, 3, 0}));  // x is unknown
  EXPECT_EQ(e.tokens, (std::vector<std::string>{"abc", "ab", "c", "<unk>"}));
  EXPECT_EQ(e.offsets, (std::vector<std::pair<size_t, size_t>>{{0, 3}, {3, 5}, {6, 7}, {7, 8}}));
  // The template adds <eos>; <eos> written in the text is found before the model.
  Encoding s = t.encode("ab<eos>c", /*add_special_tokens=*/true);
  EXPECT_EQ(s.ids, (std::vector<int64_t>{4, 6, 3, 6}));
  EXPECT_EQ(s.special, (std::vector<uint8_t>{0, 1, 0, 1}));
  EXPECT_EQ(s.offsets.back(), std::make_pair(size_t{0}, size_t{0}));
  EXPECT_EQ(t.decode({4, 6, 3}), "ab <eos> c");  // no decoder: tokens joined by spaces
  EXPECT_EQ(t.decode({4, 6, 3}, /*skip_special_tokens=*/true), "ab c");
  EXPECT_EQ(t.tokens({5, 6}), (std::vector<std::string>{"abc", "<eos>"}));
  EXPECT_EQ(t.token_to_id("<eos>"), 6);
  EXPECT_EQ(t.vocab_size(), 7u);
  EXPECT_TRUE(t.is_special(6));
  expect_error(ErrorCode::kInvalidArgument, "token id 99 is not in the tokenizer's vocabulary",
               [&] { t.decode({99}); });
}

TEST(Tokenizer, CharacterOffsetsCountCodePoints) {
  json j = small_bpe();
  j["model"]["vocab"]["é"] = 7;
  Tokenizer t = Tokenizer::from_json(j.dump());
  Encoding e = t.encode("é ab");
  EXPECT_EQ(e.offsets, (std::vector<std::pair<size_t, size_t>>{{0, 2}, {3, 5}}));
  EXPECT_EQ(e.char_offsets, (std::vector<std::pair<size_t, size_t>>{{0, 1}, {2, 4}}));
}

TEST(Tokenizer, WordPieceGreedyLongestMatch) {
  json j = json::parse(R"({
    "added_tokens": [], "normalizer": null, "pre_tokenizer": {"type": "BertPreTokenizer"}, "post_processor": null,
    "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
    "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
              "max_input_chars_per_word": 100,
              "vocab": {"[UNK]": 0, "un": 1, "##aff": 2, "##able": 3, "una": 4, "!": 5, "##ffable": 6}}
  })");
  Tokenizer t = Tokenizer::from_json(j.dump());
  // "unaffable": the longest prefix in the vocabulary first (una), then ##ffable.
  EXPECT_EQ(t.encode("unaffable!").ids, (std::vector<int64_t>{4, 6, 5}));
  EXPECT_EQ(t.encode("unknown").ids, (std::vector<int64_t>{0}));  // a word that cannot be covered is one [UNK]
  EXPECT_EQ(t.decode({4, 6, 5}), "unaffable!");
}

TEST(Tokenizer, SparseIdsDoNotSizeMemoryByTheLargestId) {
  // Found by fuzzing: an id of 2,400,000,000 once made a vector of that many strings.
  json j = small_bpe();
  j["model"]["vocab"]["abc"] = 2400000000u;
  Tokenizer t = Tokenizer::from_json(j.dump());
  EXPECT_EQ(t.encode("abc").ids, (std::vector<int64_t>{2400000000}));
  EXPECT_EQ(t.tokens({2400000000}), (std::vector<std::string>{"abc"}));
}

TEST(Tokenizer, InvalidUtf8IsAnError) {
  Tokenizer t = Tokenizer::from_json(small_bpe().dump());
  expect_error(ErrorCode::kInvalidArgument, "text is not valid UTF-8: byte 0xFF at offset 2", [&] {
    t.encode(
        "ab\xFF"
        "c");
  });
  expect_error(ErrorCode::kInvalidArgument, "byte 0xED at offset 0", [&] { t.encode("\xED\xA0\x80"); });
  EXPECT_TRUE(t.encode("").ids.empty());
}

struct BadJson {
  const char* name;
  std::function<void(json&)> change;
  ErrorCode code;
  const char* fragment;
};

TEST(Tokenizer, MalformedFilesAreClearErrors) {
  const std::vector<BadJson> cases = {
      {"no model", [](json& j) { j.erase("model"); }, ErrorCode::kInvalidArgument, "\"model\" is missing"},
      {"unknown model", [](json& j) { j["model"]["type"] = "Quantum"; }, ErrorCode::kUnsupported,
       "model type \"Quantum\" is not supported"},
      {"unigram",
       [](json& j) {
         j["model"] = {{"type", "Unigram"}, {"vocab", json::array()}};
       },
       ErrorCode::kUnsupported, "model type \"Unigram\""},
      {"merge outside vocab", [](json& j) { j["model"]["merges"].push_back("c z"); }, ErrorCode::kInvalidArgument,
       "model.merges[2]: merge \"c z\" uses a token that is not in the vocabulary"},
      {"bad merge", [](json& j) { j["model"]["merges"][0] = "abc"; }, ErrorCode::kInvalidArgument, "expected \"a b\""},
      {"vocab id", [](json& j) { j["model"]["vocab"]["a"] = "one"; }, ErrorCode::kInvalidArgument,
       "model.vocab[\"a\"]: expected a non-negative integer id"},
      {"unk outside vocab", [](json& j) { j["model"]["unk_token"] = "<nope>"; }, ErrorCode::kInvalidArgument,
       "model.unk_token: \"<nope>\" is not in the vocabulary"},
      {"unknown normalizer",
       [](json& j) {
         j["normalizer"] = {{"type", "Precompiled"}};
       },
       ErrorCode::kUnsupported, "normalizer type \"Precompiled\""},
      {"bad regex",
       [](json& j) {
         j["pre_tokenizer"] = {
             {"type", "Split"}, {"pattern", {{"Regex", "(a"}}}, {"behavior", "Isolated"}, {"invert", false}};
       },
       ErrorCode::kInvalidArgument, "does not compile"},
      {"bad behavior",
       [](json& j) {
         j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", "Sideways"}};
       },
       ErrorCode::kInvalidArgument, "unknown split behavior \"Sideways\""},
      {"template without sequence", [](json& j) { j["post_processor"]["single"].erase(0); },
       ErrorCode::kInvalidArgument, "the template has no sequence"},
      {"template unknown special", [](json& j) { j["post_processor"]["special_tokens"].erase("<eos>"); },
       ErrorCode::kInvalidArgument, "special token \"<eos>\" is not in special_tokens"},
      {"added token without id", [](json& j) { j["added_tokens"][0].erase("id"); }, ErrorCode::kInvalidArgument,
       "added_tokens[0]: \"id\" is missing"},
      {"type not a string",
       [](json& j) {
         j["decoder"] = {{"type", 3}};
       },
       ErrorCode::kInvalidArgument, "decoder.type: expected a string"},
      {"truncation",
       [](json& j) {
         j["truncation"] = {{"max_length", 8}};
       },
       ErrorCode::kUnsupported, "truncation is set"},
      {"dropout", [](json& j) { j["model"]["dropout"] = 0.1; }, ErrorCode::kUnsupported, "dropout"},
      {"dropout not a number", [](json& j) { j["model"]["dropout"] = "some"; }, ErrorCode::kInvalidArgument,
       "model.dropout: expected a number or null"},
  };
  for (const BadJson& c : cases) {
    SCOPED_TRACE(c.name);
    json j = small_bpe();
    c.change(j);
    const std::string text = j.dump();
    expect_error(c.code, c.fragment, [&] { Tokenizer::from_json(text); });
  }
  expect_error(ErrorCode::kInvalidArgument, "tokenizer.json is not valid JSON",
               [] { Tokenizer::from_json("{\"model\""); });
  expect_error(ErrorCode::kInvalidArgument, "expected an object", [] { Tokenizer::from_json("[]"); });
  // Found by fuzzing: a number too large for a double is an error, not an escaping JSON-library exception.
  expect_error(ErrorCode::kInvalidArgument, "not valid JSON", [] { Tokenizer::from_json("{\"model\": 333e33333}"); });
  expect_error(ErrorCode::kNotFound, "does not exist", [] { Tokenizer::from_file("/nonexistent/tokenizer.json"); });
  expect_error(ErrorCode::kNotFound, "does not exist", [] { Tokenizer::wordpiece("/nonexistent/vocab.txt"); });
}

}  // namespace
}  // namespace attnprox
