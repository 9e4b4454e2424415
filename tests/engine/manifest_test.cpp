// The manifest parser accepts what the contract allows and names the first problem of what it does not.
#include "attnprox/manifest.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "test_support.hpp"

namespace attnprox {
namespace {

using nlohmann::json;
using testing::expect_error;

json valid() {
  return json::parse(R"({
    "format": "attnprox-model", "format_version": 1, "family": "llama", "model_type": "llama",
    "source": "somewhere", "exporter": {"name": "test", "torch": "1.13.1"},
    "num_layers": 6, "captured_layers": [1, 4, 5], "num_heads": 8, "num_kv_heads": 2, "head_dim": 16,
    "causal": true, "max_positions": 128, "vocab_size": 1000, "dtype": "bfloat16",
    "layers": [
      {"index": 1, "scaling": 0.25, "sliding_window": null, "softcap": null, "sinks": null},
      {"index": 4, "scaling": 0.25, "sliding_window": 64, "softcap": 30.0},
      {"index": 5, "scaling": 0.25, "sinks": [0, 1, 2, 3, 4, 5, 6, 7], "cross_attention": false}
    ],
    "tokenizer": {"bos_id": 1, "eos_id": 2, "pad_id": null, "add_bos": true, "special_tokens": {"<s>": 1}}
  })");
}

TEST(Manifest, ParsesEveryField) {
  Manifest m = Manifest::parse(valid().dump());
  EXPECT_EQ(m.family, "llama");
  EXPECT_EQ(m.num_layers, 6);
  EXPECT_EQ(m.captured_layers(), (std::vector<int>{1, 4, 5}));
  EXPECT_EQ(m.num_heads, 8);
  EXPECT_EQ(m.num_kv_heads, 2);
  EXPECT_EQ(m.head_dim, 16);
  EXPECT_TRUE(m.causal);
  EXPECT_EQ(m.max_positions, 128);
  EXPECT_EQ(m.dtype, "bfloat16");
  EXPECT_EQ(m.torch_version, "1.13.1");
  EXPECT_FALSE(m.layers[0].sliding_window.has_value());
  EXPECT_EQ(m.layers[1].sliding_window, 64);
  EXPECT_EQ(m.layers[1].softcap, 30.0);
  EXPECT_EQ(m.layers[2].sinks.size(), 8u);
  EXPECT_EQ(m.tokenizer.bos_id, 1);
  EXPECT_FALSE(m.tokenizer.pad_id.has_value());
  EXPECT_TRUE(m.tokenizer.add_bos);
  EXPECT_EQ(m.tokenizer.special_tokens.at("<s>"), 1);
}

TEST(Manifest, LayersOfAnEncoderDecoderModelCarryTheirOwnMasking) {
  // BART-like: a bidirectional encoder layer, a causal decoder self-attention, a cross-attention.
  json j = valid();
  j["causal"] = false;
  j["layers"][0]["name"] = "encoder.layers.1.self_attn";
  j["layers"][1]["causal"] = true;
  j["layers"][2]["cross_attention"] = true;
  j["layers"][2]["causal"] = true;  // ignored: cross-attention sees every encoder position
  Manifest m = Manifest::parse(j.dump());
  EXPECT_EQ(m.layers[0].name, "encoder.layers.1.self_attn");
  EXPECT_FALSE(m.layers[0].is_causal(m.causal));
  EXPECT_TRUE(m.layers[1].is_causal(m.causal));
  EXPECT_FALSE(m.layers[2].is_causal(m.causal));
  EXPECT_TRUE(m.layers[0].is_causal(true));  // unset: the model's own setting
  j["layers"][1]["causal"] = "yes";
  expect_error(ErrorCode::kInvalidModel, "causal", [&] { Manifest::parse(j.dump()); });
}

TEST(Manifest, ResolvesLayersByModelNumberAndFromTheEnd) {
  Manifest m = Manifest::parse(valid().dump());
  EXPECT_EQ(m.slot(1), 0u);
  EXPECT_EQ(m.slot(4), 1u);
  EXPECT_EQ(m.slot(-1), 2u);
  EXPECT_EQ(m.slot(-3), 0u);
  expect_error(ErrorCode::kOutOfRange, "not captured in this model file (captured: 1, 4, 5)", [&] { m.slot(2); });
  expect_error(ErrorCode::kOutOfRange, "the model has 6 layers (0..5)", [&] { m.slot(40); });
  expect_error(ErrorCode::kOutOfRange, "3 captured layers", [&] { m.slot(-4); });
}

TEST(Manifest, GroupsQueryHeadsOntoKeyHeads) {
  Manifest m = Manifest::parse(valid().dump());  // 8 query heads, 2 key heads
  EXPECT_EQ(m.kv_group(0), 0);
  EXPECT_EQ(m.kv_group(3), 0);
  EXPECT_EQ(m.kv_group(4), 1);
  EXPECT_EQ(m.kv_group(7), 1);
  expect_error(ErrorCode::kOutOfRange, "head 8 requested, the model has 8 heads (0..7)", [&] { m.kv_group(8); });
  expect_error(ErrorCode::kOutOfRange, "head -1", [&] { m.kv_group(-1); });
}

struct BadCase {
  const char* name;
  std::function<void(json&)> change;
  const char* fragment;
};

/// Each case's change to a valid manifest makes Manifest::parse fail with a message holding its fragment.
void expect_each_refused(const std::vector<BadCase>& cases) {
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.name);
    json j = valid();
    c.change(j);
    const std::string text = j.dump();
    expect_error(ErrorCode::kInvalidModel, c.fragment, [&] { Manifest::parse(text); });
  }
}

TEST(Manifest, RejectsWhatBreaksTheContract) {
  const std::vector<BadCase> cases = {
      {"wrong format", [](json& j) { j["format"] = "other"; }, "expected \"attnprox-model\""},
      {"newer version", [](json& j) { j["format_version"] = 2; }, "newer than this attnprox reads"},
      {"missing heads", [](json& j) { j.erase("num_heads"); }, "'num_heads' is missing"},
      {"heads not a number", [](json& j) { j["num_heads"] = "eight"; }, "'num_heads' must be an integer"},
      {"heads not grouped", [](json& j) { j["num_kv_heads"] = 3; }, "must be a multiple of num_kv_heads"},
      {"zero head size", [](json& j) { j["head_dim"] = 0; }, "'head_dim' must be an integer in 1.."},
      {"bad dtype", [](json& j) { j["dtype"] = "int8"; }, "expected float32, float16 or bfloat16"},
      {"causal not bool", [](json& j) { j["causal"] = 1; }, "'causal' must be true or false"},
      {"no captured", [](json& j) { j["captured_layers"] = json::array(); }, "non-empty list"},
      {"captured out of range", [](json& j) { j["captured_layers"][2] = 6; }, "expected layer numbers in 0..5"},
      {"captured unsorted",
       [](json& j) {
         j["captured_layers"] = {4, 1, 5};
       },
       "strictly ascending"},
      {"layers count", [](json& j) { j["layers"].erase(0); }, "one entry per captured layer (3)"},
      {"layer index", [](json& j) { j["layers"][1]["index"] = 3; }, "layers[4].'index' is 3"},
      {"no scaling", [](json& j) { j["layers"][0].erase("scaling"); }, "'scaling' is missing"},
      {"negative scaling", [](json& j) { j["layers"][0]["scaling"] = -1; }, "'scaling' must be a positive number"},
      {"zero window", [](json& j) { j["layers"][1]["sliding_window"] = 0; }, "'sliding_window' must be an integer"},
      {"sinks count",
       [](json& j) {
         j["layers"][2]["sinks"] = {1, 2};
       },
       "a list of 8 numbers"},
      {"bos outside vocab", [](json& j) { j["tokenizer"]["bos_id"] = 5000; }, "'bos_id' must be an integer in 0..999"},
      {"special not int", [](json& j) { j["tokenizer"]["special_tokens"]["<s>"] = "1"; }, "must be an integer"},
  };
  expect_each_refused(cases);
  expect_error(ErrorCode::kInvalidModel, "not valid JSON", [] { Manifest::parse("{\"format\": "); });
  expect_error(ErrorCode::kInvalidModel, "must be a JSON object", [] { Manifest::parse("[1, 2]"); });
  expect_error(ErrorCode::kInvalidModel, "not valid JSON", [] { Manifest::parse("{\"num_layers\": 1e99999}"); });
}

TEST(Manifest, ReadsTheRotaryEmbeddingRecord) {
  json j = valid();
  EXPECT_EQ(Manifest::parse(j.dump()).rope.state, RopeRecord::State::kNotRecorded);  // a file before "rope"
  j["family"] = "gpt2";
  EXPECT_EQ(Manifest::parse(j.dump()).rope.state, RopeRecord::State::kNone);  // families without RoPE need nothing
  j["family"] = "llama";
  j["rope"] = nullptr;
  EXPECT_EQ(Manifest::parse(j.dump()).rope.state, RopeRecord::State::kNone);
  j["rope"] = {{"unavailable", "rope type 'dynamic'"}};
  Manifest unavailable = Manifest::parse(j.dump());
  EXPECT_EQ(unavailable.rope.state, RopeRecord::State::kUnavailable);
  EXPECT_EQ(unavailable.rope.reason, "rope type 'dynamic'");
  j["rope"] = json::parse(R"({"inv_freq": [1.0, 0.1, 0.01], "rotary_dim": 6, "layout": "interleaved",
                              "attention_scaling": 1.5})");
  j["layers"][2]["rope"] = json::parse(R"({"inv_freq": [1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625, 0.0078125],
                                           "rotary_dim": 16, "layout": "rotate_half"})");
  Manifest m = Manifest::parse(j.dump());
  ASSERT_EQ(m.rope.state, RopeRecord::State::kRotary);
  EXPECT_EQ(m.rope.rotary.inv_freq, (std::vector<double>{1.0, 0.1, 0.01}));
  EXPECT_EQ(m.rope.rotary.rotary_dim, 6);
  EXPECT_EQ(m.rope.rotary.layout, RotaryEmbedding::Layout::kInterleaved);
  EXPECT_DOUBLE_EQ(m.rope.rotary.attention_scaling, 1.5);
  EXPECT_EQ(&m.rope_of(m.layers[0]), &m.rope);  // the model's record, unless a layer has its own
  EXPECT_EQ(m.rope_of(m.layers[2]).rotary.rotary_dim, 16);
  EXPECT_EQ(m.rope_of(m.layers[2]).rotary.layout, RotaryEmbedding::Layout::kRotateHalf);
  EXPECT_DOUBLE_EQ(m.rope_of(m.layers[2]).rotary.attention_scaling, 1.0);
}

TEST(Manifest, RejectsABadRotaryEmbeddingRecord) {
  const std::vector<BadCase> cases = {
      {"not an object", [](json& j) { j["rope"] = 3; }, "'rope' must be null or an object"},
      {"reason not text", [](json& j) { j["rope"] = {{"unavailable", 1}}; }, "'rope.unavailable' must be a string"},
      {"no frequencies", [](json& j) { j["rope"] = {{"rotary_dim", 2}, {"layout", "rotate_half"}}; },
       "'inv_freq' is missing"},
      {"empty frequencies",
       [](json& j) { j["rope"] = {{"inv_freq", json::array()}, {"rotary_dim", 2}, {"layout", "rotate_half"}}; },
       "non-empty list of numbers"},
      {"negative frequency",
       [](json& j) { j["rope"] = {{"inv_freq", {1.0, -0.5}}, {"rotary_dim", 4}, {"layout", "rotate_half"}}; },
       "expected finite numbers >= 0"},
      {"dimension beyond the head",
       [](json& j) { j["rope"] = {{"inv_freq", {1.0}}, {"rotary_dim", 18}, {"layout", "rotate_half"}}; },
       "'rotary_dim' must be an integer in 2..16"},
      {"dimension and frequencies disagree",
       [](json& j) { j["rope"] = {{"inv_freq", {1.0, 0.5}}, {"rotary_dim", 6}, {"layout", "rotate_half"}}; },
       "one per rotated pair"},
      {"unknown layout",
       [](json& j) { j["rope"] = {{"inv_freq", {1.0}}, {"rotary_dim", 2}, {"layout", "spiral"}}; },
       "expected \"rotate_half\" or \"interleaved\""},
      {"zero scaling",
       [](json& j) {
         j["rope"] = {{"inv_freq", {1.0}}, {"rotary_dim", 2}, {"layout", "rotate_half"}, {"attention_scaling", 0}};
       },
       "attention_scaling"},
      {"a layer's record", [](json& j) { j["layers"][1]["rope"] = "yes"; }, "layers[4].'rope' must be null"},
  };
  expect_each_refused(cases);
}

}  // namespace
}  // namespace attnprox
