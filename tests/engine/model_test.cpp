// Loading model files and running ids through them: what works, and a clear error for everything that does not.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>
#include <torch/script.h>

#include "attnprox/engine.hpp"
#include "test_support.hpp"

namespace attnprox {
namespace {

using testing::expect_error;
using testing::model_path;

TEST(ModelLoad, ReadsTheManifestAndTheModel) {
  Model model = Model::load(model_path("llama.apx"));
  const Manifest& m = model.manifest();
  EXPECT_EQ(m.family, "llama");
  EXPECT_EQ(m.num_layers, 3);
  EXPECT_EQ(m.captured_layers(), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(m.num_heads, 4);
  EXPECT_EQ(m.num_kv_heads, 2);
  EXPECT_EQ(m.head_dim, 16);
  EXPECT_TRUE(m.causal);
  EXPECT_EQ(model.device(), "cpu");
  EXPECT_EQ(model.dtype(), DType::kFloat32);
  EXPECT_TRUE(model.tokenizer_json().empty());
}

TEST(ModelLoad, MissingFile) {
  expect_error(ErrorCode::kNotFound, "does not exist", [] { Model::load(model_path("no_such_model.apx")); });
}

TEST(ModelLoad, DirectoryInsteadOfFile) {
  expect_error(ErrorCode::kInvalidArgument, "is a directory", [] { Model::load(model_path("")); });
}

TEST(ModelLoad, FileThatIsNotAnArchive) {
  expect_error(ErrorCode::kInvalidModel, "not a TorchScript archive",
               [] { Model::load(model_path("not_an_archive.apx")); });
}

TEST(ModelLoad, ZipThatIsNotTorchScript) {
  expect_error(ErrorCode::kInvalidModel, "could not be loaded as a TorchScript module",
               [] { Model::load(model_path("plain_zip.apx")); });
}

TEST(ModelLoad, ArchiveWithoutManifest) {
  expect_error(ErrorCode::kInvalidModel, "without an attnprox manifest",
               [] { Model::load(model_path("no_manifest.apx")); });
}

TEST(ModelLoad, ManifestThatIsNotJson) {
  expect_error(ErrorCode::kInvalidModel, "manifest: not valid JSON", [] { Model::load(model_path("bad_json.apx")); });
}

TEST(ModelLoad, ManifestThatBreaksItsOwnRules) {
  expect_error(ErrorCode::kInvalidModel, "must be a multiple of num_kv_heads",
               [] { Model::load(model_path("bad_manifest.apx")); });
}

TEST(ModelLoad, ManifestInconsistentWithForwardShapes) {
  expect_error(ErrorCode::kInvalidModel,
               "returned queries of shape [1, 2, 2, 4] at layer 0, the manifest implies [1, 4",
               [] { Model::load(model_path("wrong_heads.apx")); });
  expect_error(ErrorCode::kInvalidModel, "returned queries for 1 and keys for 1 layers, the manifest captures 2",
               [] { Model::load(model_path("wrong_layers.apx")); });
  expect_error(ErrorCode::kInvalidModel, "must return a tuple (queries, keys)",
               [] { Model::load(model_path("single_tensor.apx")); });
}

TEST(ModelLoad, CudaOnACpuOnlyBuildOrAWrongDevice) {
  LoadOptions options;
  options.device = "cuda";
  if (at::hasCUDA()) {  // a CUDA build on a GPU machine: "cuda" is the current device, named
    EXPECT_EQ(Model::load(model_path("llama.apx"), options).device(), "cuda:0");
  } else {
    expect_error(ErrorCode::kUnsupported, "without CUDA (CPU only)",
                 [&] { Model::load(model_path("llama.apx"), options); });
  }
  options.device = "tpu:0";
  expect_error(ErrorCode::kInvalidArgument, "is not a device name",
               [&] { Model::load(model_path("llama.apx"), options); });
  options.device = "cpu";
  options.threads = -2;
  expect_error(ErrorCode::kInvalidArgument, "threads must be", [&] { Model::load(model_path("llama.apx"), options); });
}

TEST(ModelLoad, DtypeNames) {
  EXPECT_EQ(parse_dtype("bf16"), DType::kBFloat16);
  EXPECT_EQ(parse_dtype("Float16"), DType::kFloat16);
  EXPECT_EQ(to_string(DType::kFloat32), "float32");
  expect_error(ErrorCode::kInvalidArgument, "dtype \"int8\" is not supported", [] { parse_dtype("int8"); });
}

TEST(ModelLoad, BFloat16OnCpu) {
  LoadOptions options;
  options.dtype = DType::kBFloat16;
  Model model = Model::load(model_path("llama.apx"), options);
  EXPECT_EQ(model.dtype(), DType::kBFloat16);
  Result r = model.run({1, 5, 9, 3});
  EXPECT_EQ(r.queries().scalar_type(), at::kBFloat16);
  // Rebuilt in float32 from bfloat16 Q/K: close to the float32 model's attention, not equal.
  Result exact = Model::load(model_path("llama.apx")).run({1, 5, 9, 3});
  EXPECT_LT((r.attention(-1) - exact.attention(-1)).abs().max().item<double>(), 0.1);
  EXPECT_EQ(r.attention(-1).scalar_type(), at::kFloat);
}

TEST(ModelRun, ShapesOfQueriesKeysAndAttention) {
  Model model = Model::load(model_path("qwen3.apx"));  // H=4, Hkv=1, d=8
  Result r = model.run({3, 1, 4, 1, 5, 9, 2});
  EXPECT_EQ(r.num_tokens(), 7);
  EXPECT_EQ(r.ids(), (std::vector<int64_t>{3, 1, 4, 1, 5, 9, 2}));
  EXPECT_EQ(r.queries(0).sizes(), at::IntArrayRef({4, 7, 8}));
  EXPECT_EQ(r.keys(0).sizes(), at::IntArrayRef({1, 7, 8}));
  EXPECT_EQ(r.attention(2).sizes(), at::IntArrayRef({4, 7, 7}));
  EXPECT_EQ(r.attention(2, 3).sizes(), at::IntArrayRef({7, 7}));
  // Rows are probability distributions; causal: nothing above the diagonal.
  at::Tensor p = r.attention(-1);
  EXPECT_LT((p.sum(-1) - 1).abs().max().item<double>(), 1e-5);
  EXPECT_EQ(p.triu(1).abs().max().item<double>(), 0.0);
  // Layer 1 has a sliding window of 4: key j is visible to query i only when i - j < 4.
  at::Tensor windowed = r.attention(1);
  EXPECT_EQ(windowed.tril(-4).abs().max().item<double>(), 0.0);
  EXPECT_GT(r.attention(0).tril(-4).abs().max().item<double>(), 0.0);
  // One head equals its slice of all heads.
  EXPECT_TRUE(at::allclose(r.attention(2, 3), r.attention(2)[3]));
}

TEST(ModelRun, BatchEqualsOneByOne) {
  for (const char* name : {"gpt2.apx", "bert.apx", "llama.apx"}) {
    SCOPED_TRACE(name);
    Model model = Model::load(model_path(name));
    const std::vector<std::vector<int64_t>> batch = {{5, 6, 7, 8, 9, 10, 11}, {1, 2}, {40, 41, 42, 43}};
    std::vector<Result> together = model.run_batch(batch);
    ASSERT_EQ(together.size(), 3u);
    for (size_t b = 0; b < batch.size(); ++b) {
      Result alone = model.run(batch[b]);
      EXPECT_EQ(together[b].ids(), batch[b]);
      for (int layer : model.manifest().captured_layers()) {
        EXPECT_LT((together[b].queries(layer) - alone.queries(layer)).abs().max().item<double>(), 1e-5);
        EXPECT_LT((together[b].attention(layer) - alone.attention(layer)).abs().max().item<double>(), 1e-5);
      }
    }
  }
}

TEST(ModelRun, OnlyTheCapturedLayers) {
  Model model = Model::load(model_path("llama-layer1.apx"));
  EXPECT_EQ(model.manifest().captured_layers(), (std::vector<int>{1}));
  Result partial = model.run({1, 2, 3, 4});
  Result full = Model::load(model_path("llama.apx")).run({1, 2, 3, 4});
  EXPECT_TRUE(at::allclose(partial.queries(1), full.queries(1)));
  EXPECT_TRUE(at::allclose(partial.queries(-1), full.queries(1)));
  expect_error(ErrorCode::kOutOfRange, "not captured in this model file (captured: 1)", [&] { partial.queries(0); });
  expect_error(ErrorCode::kOutOfRange, "the model has 3 layers", [&] { partial.attention(3); });
}

TEST(ModelRun, LayersChosenAtLoadAreTheOnlyOnesKept) {
  LoadOptions options;
  options.layers = {-1};
  Model last = Model::load(model_path("llama.apx"), options);
  EXPECT_EQ(last.layers(), (std::vector<int>{2}));
  EXPECT_EQ(last.manifest().captured_layers(), (std::vector<int>{0, 1, 2}));  // the file's manifest is unchanged
  Result r = last.run({1, 2, 3, 4, 5});
  Result full = Model::load(model_path("llama.apx")).run({1, 2, 3, 4, 5});
  EXPECT_EQ(r.layers(), (std::vector<int>{2}));
  EXPECT_EQ(r.manifest().captured_layers(), (std::vector<int>{2}));
  EXPECT_TRUE(at::equal(r.queries(2), full.queries(2)));
  EXPECT_TRUE(at::equal(r.keys(-1), full.keys(2)));
  EXPECT_TRUE(at::allclose(r.attention(-1), full.attention(2)));
  EXPECT_EQ(r.ap(), full.ap(2));
  expect_error(ErrorCode::kOutOfRange, "layer 1 was not kept by this run (it kept 2", [&] { r.queries(1); });
  expect_error(ErrorCode::kOutOfRange, "layer -2 requested, this run kept 1 captured layers", [&] { r.keys(-2); });
  // A run may ask for other captured layers than the model's default.
  Result both = last.run({1, 2, 3, 4, 5}, RunOptions{{2, 0, 0}});
  EXPECT_EQ(both.layers(), (std::vector<int>{0, 2}));
  EXPECT_TRUE(at::equal(both.queries(0), full.queries(0)));
  EXPECT_TRUE(at::equal(both.keys(2), full.keys(2)));
}

TEST(ModelRun, LayersChosenPerRunInBatchesAndTexts) {
  Model model = Model::load(model_path("llama.apx"));
  const std::vector<std::vector<int64_t>> batch = {{5, 6, 7, 8, 9}, {1, 2}};
  std::vector<Result> kept = model.run_batch(batch, RunOptions{{1}});
  std::vector<Result> full = model.run_batch(batch);
  for (size_t b = 0; b < batch.size(); ++b) {
    EXPECT_EQ(kept[b].layers(), (std::vector<int>{1}));
    EXPECT_TRUE(at::equal(kept[b].queries(1), full[b].queries(1)));
  }
  Model text_model = Model::load(model_path("llama-text.apx"));
  TextOptions text;
  text.layers = {0};
  Result r = text_model.run_text("the river was steep", text);
  EXPECT_EQ(r.layers(), (std::vector<int>{0}));
  EXPECT_TRUE(at::equal(r.queries(0), text_model.run_text("the river was steep").queries(0)));
}

TEST(ModelRun, LayersFromAFileWithoutForwardLayers) {
  // Files written before forward_layers: the whole forward runs and the layers asked for are kept.
  LoadOptions options;
  options.layers = {0, 2};
  Model model = Model::load(model_path("llama-forward-only.apx"), options);
  Result r = model.run({4, 8, 15, 16, 23, 42});
  Result full = Model::load(model_path("llama.apx")).run({4, 8, 15, 16, 23, 42});
  EXPECT_EQ(r.layers(), (std::vector<int>{0, 2}));
  EXPECT_TRUE(at::equal(r.queries(0), full.queries(0)));
  EXPECT_TRUE(at::equal(r.keys(2), full.keys(2)));
  expect_error(ErrorCode::kOutOfRange, "layer 1 was not kept", [&] { r.attention(1); });
}

TEST(ModelLoad, LayersThatAreNotCaptured) {
  LoadOptions options;
  options.layers = {5};
  expect_error(ErrorCode::kOutOfRange, "layer 5 requested, the model has 3 layers",
               [&] { Model::load(model_path("llama.apx"), options); });
  options.layers = {0};
  expect_error(ErrorCode::kOutOfRange, "layer 0 is not captured in this model file (captured: 1)",
               [&] { Model::load(model_path("llama-layer1.apx"), options); });
  Model model = Model::load(model_path("llama.apx"));
  expect_error(ErrorCode::kOutOfRange, "layer -4 requested", [&] { model.run({1, 2}, RunOptions{{-4}}); });
}

TEST(ModelLoad, ForwardLayersInconsistentWithTheManifest) {
  expect_error(ErrorCode::kInvalidModel,
               "forward returned queries for 2 and keys for 2 layers, 1 were asked for (forward_layers)",
               [] { Model::load(model_path("wrong_forward_layers.apx")); });
}

TEST(ModelRun, BadInput) {
  Model model = Model::load(model_path("gpt2.apx"));  // 96 ids, 32 positions
  expect_error(ErrorCode::kInvalidArgument, "the input is empty", [&] { model.run(std::vector<int64_t>{}); });
  expect_error(ErrorCode::kInvalidArgument, "no sequences given", [&] { model.run_batch({}); });
  expect_error(ErrorCode::kInvalidArgument, "token id 96 at position 2, outside the vocabulary (0..95)", [&] {
    model.run({1, 2, 96});
  });
  expect_error(ErrorCode::kInvalidArgument, "token id -1 at position 0", [&] { model.run(std::vector<int64_t>{-1}); });
  expect_error(ErrorCode::kInvalidArgument, "has 33 tokens, the model has 32 positions",
               [&] { model.run(std::vector<int64_t>(33, 1)); });
  expect_error(ErrorCode::kInvalidArgument, "sequence 1 is empty", [&] { model.run_batch({{1}, {}}); });
  Result r = model.run({1, 2, 3});
  expect_error(ErrorCode::kOutOfRange, "head 4 requested, the model has 4 heads (0..3)", [&] { r.attention(0, 4); });
  expect_error(ErrorCode::kOutOfRange, "layer 9 requested, the model has 3 layers", [&] { r.queries(9); });
  expect_error(ErrorCode::kOutOfRange, "layer -4 requested", [&] { r.keys(-4); });
  expect_error(ErrorCode::kOutOfRange, "head 7", [&] { r.average_attention({}, {0, 7}); });
  expect_error(ErrorCode::kInvalidArgument, "temperature", [&] { r.attention(0, AttentionOptions{-1.0}); });
}

TEST(ModelRun, NonFiniteOutputIsAnError) {
  Model model = Model::load(model_path("constant.apx"));
  EXPECT_NO_THROW(model.run({1, 2}));
  expect_error(ErrorCode::kRuntime, "non-finite queries (NaN or Inf) at layer 0", [] {
    Model::load(model_path("nan.apx")).run({1, 2, 3});
  });
  // What a model computes at padding positions is never used, NaN included.
  std::vector<Result> results = Model::load(model_path("nan_at_padding.apx")).run_batch({{1, 2, 3, 4}, {5}});
  EXPECT_TRUE(at::isfinite(results[1].queries()).all().item<bool>());
}

TEST(ModelRun, AverageAttentionIsTheMeanOverLayersAndHeads) {
  Model model = Model::load(model_path("bert.apx"));
  Result r = model.run({2, 7, 1, 8, 2, 8});
  at::Tensor all = at::stack({r.attention(0), r.attention(1), r.attention(2)});  // [L, H, N, N]
  EXPECT_TRUE(at::allclose(r.average_attention(), all.mean(at::IntArrayRef{0, 1}), 1e-5, 1e-7));
  EXPECT_TRUE(at::allclose(r.average_attention({2}, {1, 3}), (all[2][1] + all[2][3]) / 2, 1e-5, 1e-7));
  EXPECT_TRUE(at::allclose(r.average_attention({0, -1}, {}), (all[0].mean(0) + all[2].mean(0)) / 2, 1e-5, 1e-7));
  AttentionOptions hot{3.0};
  EXPECT_TRUE(at::allclose(r.average_attention({1}, {0}, hot), r.attention(1, 0, hot)));
}

}  // namespace
}  // namespace attnprox

namespace attnprox {
namespace {

using testing::expect_error;
using testing::model_path;

TEST(ModelText, RunsTextThroughTheFilesTokenizer) {
  Model model = Model::load(model_path("bert-text.apx"));
  ASSERT_NE(model.tokenizer(), nullptr);
  const std::string text = "The bank by the river was steep.";
  Result r = model.run_text(text);
  // [CLS] the bank by the river was steep . [SEP]
  EXPECT_EQ(r.ids(), (std::vector<int64_t>{4, 10, 12, 13, 10, 14, 15, 16, 33, 5}));
  EXPECT_EQ(r.ids(), model.tokenizer()->encode(text, true).ids);
  EXPECT_EQ(r.text(), text);
  EXPECT_EQ(r.tokens().front(), "[CLS]");
  EXPECT_EQ(r.tokens()[2], "bank");
  EXPECT_EQ(r.offsets()[2], std::make_pair(size_t{4}, size_t{8}));
  // The same ids run as ids give the same attention.
  Result by_ids = model.run(r.ids());
  EXPECT_TRUE(at::allclose(by_ids.attention(-1), r.attention(-1)));
  EXPECT_TRUE(by_ids.text().empty());
  EXPECT_EQ(by_ids.tokens(), r.tokens());  // from the tokenizer's vocabulary
  TextOptions bare;
  bare.add_special_tokens = false;
  EXPECT_EQ(model.run_text(text, bare).num_tokens(), 8);
  std::vector<Result> batch = model.run_texts({"the sky is blue", text});
  EXPECT_EQ(batch[1].ids(), r.ids());
  EXPECT_LT((batch[1].attention(-1) - r.attention(-1)).abs().max().item<double>(), 1e-5);
}

TEST(ModelText, AddsTheBosTokenTheModelExpects) {
  Model model = Model::load(model_path("llama-text.apx"));  // tokenizer_config add_bos_token, bos id 1
  EXPECT_TRUE(model.manifest().tokenizer.add_bos);
  Result r = model.run_text("write a story about ai");
  EXPECT_EQ(r.ids(), (std::vector<int64_t>{1, 20, 11, 21, 22, 23}));
  EXPECT_EQ(r.offsets().front(), std::make_pair(size_t{0}, size_t{0}));
}

TEST(ModelText, ClearErrors) {
  expect_error(ErrorCode::kUnsupported, "has no tokenizer.json, so it takes token ids only",
               [] { Model::load(model_path("gpt2.apx")).run_text("hello"); });
  Model model = Model::load(model_path("bert-text.apx"));
  TextOptions bare;
  bare.add_special_tokens = false;
  expect_error(ErrorCode::kInvalidArgument, "the text gives no tokens", [&] { model.run_text("   ", bare); });
  expect_error(ErrorCode::kInvalidArgument, "not valid UTF-8", [&] { model.run_text("caf\xC3"); });
  expect_error(ErrorCode::kInvalidArgument, "no texts given", [&] { model.run_texts({}); });
  std::string long_text;
  for (int k = 0; k < 38; ++k) long_text += "a ";
  expect_error(ErrorCode::kInvalidArgument, "has 40 tokens, the model has 32 positions",
               [&] { model.run_text(long_text); });
}

TEST(ModelText, TruncationKeepsTheSpecialTokensAndTheTextsStart) {
  Model model = Model::load(model_path("bert-text.apx"));  // 32 positions, [CLS] … [SEP]
  std::string long_text;
  for (int k = 0; k < 38; ++k) long_text += k % 2 ? "river " : "bank ";  // 38 words: 40 tokens with [CLS], [SEP]
  TextOptions cut;
  cut.truncation = true;
  Result r = model.run_text(long_text, cut);
  ASSERT_EQ(r.num_tokens(), 32);  // the model's positions, [CLS] and [SEP] included
  std::vector<int64_t> want{4};
  for (int k = 0; k < 30; ++k) want.push_back(k % 2 ? 14 : 12);  // bank 12, river 14
  want.push_back(5);
  EXPECT_EQ(r.ids(), want);
  EXPECT_EQ(r.text(), long_text);
  EXPECT_EQ(r.offsets()[30], std::make_pair(size_t{159}, size_t{164}));  // word 29, "river": 15·5 + 14·6 bytes in
  cut.max_length = 5;
  EXPECT_EQ(model.encode(long_text, cut).ids, (std::vector<int64_t>{4, 12, 14, 12, 5}));
  // A text that fits is not changed.
  EXPECT_EQ(model.encode("the bank", cut).ids, (std::vector<int64_t>{4, 10, 12, 5}));
  cut.max_length = 2;
  expect_error(ErrorCode::kInvalidArgument, "max_length 2 leaves no room for the text: 2 special tokens",
               [&] { model.encode(long_text, cut); });
  cut.max_length = 33;
  expect_error(ErrorCode::kInvalidArgument, "max_length 33 is more than the model's 32 positions",
               [&] { model.encode(long_text, cut); });
  TextOptions no_truncation;
  no_truncation.max_length = 5;
  expect_error(ErrorCode::kInvalidArgument, "max_length is given without truncation",
               [&] { model.encode(long_text, no_truncation); });
}

TEST(ModelText, AByteOrderMarkIsNotATokenAndOffsetsIndexTheTextGiven) {
  Model model = Model::load(model_path("bert-text.apx"));
  const std::string marked = "\xEF\xBB\xBFthe bank";
  Result r = model.run_text(marked);
  EXPECT_EQ(r.ids(), (std::vector<int64_t>{4, 10, 12, 5}));  // as "the bank": [CLS] the bank [SEP]
  EXPECT_EQ(r.text(), marked);
  EXPECT_EQ(r.offsets()[1], std::make_pair(size_t{3}, size_t{6}));   // "the", after the mark's 3 bytes
  EXPECT_EQ(r.char_offsets()[2], std::make_pair(size_t{5}, size_t{9}));  // "bank", after the mark's 1 character
  EXPECT_EQ(r.offsets()[0], std::make_pair(size_t{0}, size_t{0}));   // [CLS] covers nothing
  expect_error(ErrorCode::kInvalidArgument, "the text gives no tokens", [&] { model.run_text("\xEF\xBB\xBF"); });
}

TEST(ModelText, RunEncodedIsRunText) {
  Model model = Model::load(model_path("bert-text.apx"));
  const std::vector<std::string> texts{"the sky is blue", "the bank by the river was steep ."};
  std::vector<Encoding> encodings{model.encode(texts[0]), model.encode(texts[1])};
  std::vector<Result> encoded = model.run_encoded(texts, encodings);
  for (size_t k = 0; k < texts.size(); ++k) {
    Result alone = model.run_text(texts[k]);
    EXPECT_EQ(encoded[k].ids(), alone.ids());
    EXPECT_EQ(encoded[k].offsets(), alone.offsets());
    EXPECT_EQ(encoded[k].text(), texts[k]);
    EXPECT_LT((encoded[k].attention(-1) - alone.attention(-1)).abs().max().item<double>(), 1e-5);
  }
  encodings[0].offsets[1] = {0, 99};
  expect_error(ErrorCode::kInvalidArgument, "encoding 0 has offsets [0, 99) outside its text of 15 bytes",
               [&] { model.run_encoded(texts, encodings); });
  encodings[0].tokens.pop_back();
  expect_error(ErrorCode::kInvalidArgument, "encoding 0 is inconsistent", [&] { model.run_encoded(texts, encodings); });
  expect_error(ErrorCode::kInvalidArgument, "has 33 tokens, the model has 32 positions",
               [&] { model.check_ids(std::vector<int64_t>(33, 10)); });
  model.check_ids(std::vector<int64_t>(32, 10));
}

TEST(ModelText, TextPairsGiveTheModelTheirTokenTypes) {
  const std::string path = model_path("bert-text.apx");
  Model model = Model::load(path);
  ASSERT_TRUE(model.manifest().takes_token_type_ids());
  Result r = model.run_text_pair("the bank", "the river");
  // The tiny tokenizer's pair template: [CLS] A [SEP] B:1 [SEP]:1.
  EXPECT_EQ(r.ids(), (std::vector<int64_t>{4, 10, 12, 5, 10, 14, 5}));
  EXPECT_EQ(r.type_ids(), (std::vector<int64_t>{0, 0, 0, 0, 1, 1, 1}));
  EXPECT_EQ(r.sequence_ids(), (std::vector<int32_t>{-1, 0, 0, -1, 1, 1, -1}));
  EXPECT_EQ(r.text(), "the bank");
  EXPECT_EQ(r.text_pair(), "the river");
  EXPECT_EQ(r.offsets()[5], std::make_pair(size_t{4}, size_t{9}));  // "river", in the pair
  // The reference: the file's TorchScript forward itself, on the same ids, mask and token type ids.
  torch::jit::Module module = torch::jit::load(path);
  c10::InferenceMode guard;
  const at::Tensor ids = at::tensor(r.ids()).unsqueeze(0);
  const at::Tensor types = at::tensor(r.type_ids()).unsqueeze(0);
  const auto out = module.forward({ids, at::ones_like(ids), types}).toTuple();
  const std::vector<at::Tensor> queries = out->elements()[0].toTensorVector(), keys = out->elements()[1].toTensorVector();
  const std::vector<int> layers = model.manifest().captured_layers();
  for (size_t k = 0; k < layers.size(); ++k) {
    EXPECT_TRUE(at::allclose(r.queries(layers[k]), queries[k][0], 1e-5, 1e-6)) << "layer " << layers[k];
    EXPECT_TRUE(at::allclose(r.keys(layers[k]), keys[k][0], 1e-5, 1e-6)) << "layer " << layers[k];
  }
  // The token types matter: the same ids, all of segment 0, give other queries for the pair's tokens.
  Result flat = model.run(r.ids());
  EXPECT_FALSE(at::allclose(flat.queries(0).narrow(1, 4, 3), r.queries(0).narrow(1, 4, 3), 1e-3, 1e-4));
  // (layer 0's queries of a token depend on that token alone: the first segment's are the same)
  EXPECT_TRUE(at::allclose(flat.queries(0).narrow(1, 0, 4), r.queries(0).narrow(1, 0, 4), 1e-5, 1e-6));
  // A pair in a batch of pairs is the pair alone.
  std::vector<Encoding> encodings{model.encode_pair("the sky is blue", "a bank"), model.encode_pair("the bank", "the river")};
  std::vector<Result> batch = model.run_encoded({"the sky is blue", "the bank"}, encodings, {"a bank", "the river"});
  EXPECT_EQ(batch[1].ids(), r.ids());
  EXPECT_LT((batch[1].attention(-1) - r.attention(-1)).abs().max().item<double>(), 1e-5);
}

TEST(ModelText, TextPairsTruncateTheLongerTextFirst) {
  Model model = Model::load(model_path("bert-text.apx"));
  TextOptions cut;
  cut.truncation = true;
  cut.max_length = 6;  // 3 added tokens: room for 3 text tokens; the texts have 5 and 2
  // Hugging Face's longest_first: the shorter keeps up to half (1), the longer the rest (2).
  EXPECT_EQ(model.encode_pair("the bank by the river", "the sky", cut).ids,
            (std::vector<int64_t>{4, 10, 12, 5, 10, 5}));
  cut.max_length = 9;  // room for 6: the shorter (2) whole, the longer 4
  EXPECT_EQ(model.encode_pair("the bank by the river", "the sky", cut).ids,
            (std::vector<int64_t>{4, 10, 12, 13, 10, 5, 10, 17, 5}));
  cut.max_length = 4;
  expect_error(ErrorCode::kInvalidArgument, "leaves no room", [&] { model.encode_pair("the bank", "the sky", cut); });
  expect_error(ErrorCode::kInvalidArgument, "the pair's second text gives no tokens",
               [&] { model.encode_pair("the bank", "  "); });
}

TEST(ModelText, TextPairsWithLayersGiveForwardLayersTheirTokenTypes) {
  // A file with token type ids and forward_layers: a pair run keeping fewer layers calls
  // forward_layers(ids, mask, layers, token_type_ids), and keeps what forward gives for those layers.
  const std::string path = model_path("bert-text.apx");
  Model model = Model::load(path);
  ASSERT_TRUE(model.manifest().takes_token_type_ids());
  ASSERT_EQ(model.manifest().captured_layers(), (std::vector<int>{0, 1, 2}));
  TextOptions first;
  first.layers = {0};
  Result full = model.run_text_pair("the bank", "the river");
  Result kept = model.run_text_pair("the bank", "the river", first);
  EXPECT_EQ(kept.layers(), (std::vector<int>{0}));
  EXPECT_EQ(kept.type_ids(), full.type_ids());
  EXPECT_EQ(kept.text_pair(), "the river");
  EXPECT_TRUE(at::equal(kept.queries(0), full.queries(0)));
  EXPECT_TRUE(at::equal(kept.keys(0), full.keys(0)));
  expect_error(ErrorCode::kOutOfRange, "layer 1 was not kept", [&] { kept.attention(1); });
  // the types reached forward_layers: segment 0 everywhere gives other queries for the pair's tokens
  Result flat = model.run(kept.ids(), RunOptions{{0}});
  EXPECT_FALSE(at::allclose(flat.queries(0).narrow(1, 4, 3), kept.queries(0).narrow(1, 4, 3), 1e-3, 1e-4));
  // the file's own forward_layers with the types after the layers, as the engine calls it
  {
    torch::jit::Module module = torch::jit::load(path);
    c10::InferenceMode guard;
    const at::Tensor ids = at::tensor(kept.ids()).unsqueeze(0);
    const at::Tensor types = at::tensor(kept.type_ids()).unsqueeze(0);
    c10::List<int64_t> layers({0});
    const auto out = module.get_method("forward_layers")({ids, at::ones_like(ids), layers, types}).toTuple();
    EXPECT_TRUE(at::equal(kept.queries(0), out->elements()[0].toTensorVector().at(0)[0]));
  }
  // with truncation, and chosen at load
  TextOptions cut = first;
  cut.truncation = true;
  cut.max_length = 6;
  Result short_pair = model.run_text_pair("the bank by the river", "the sky", cut);
  EXPECT_EQ(short_pair.ids(), (std::vector<int64_t>{4, 10, 12, 5, 10, 5}));
  EXPECT_EQ(short_pair.layers(), (std::vector<int>{0}));
  LoadOptions last;
  last.layers = {-1};
  Result at_load = Model::load(path, last).run_text_pair("the bank", "the river");
  EXPECT_EQ(at_load.layers(), (std::vector<int>{2}));
  EXPECT_TRUE(at::allclose(at_load.queries(2), full.queries(2), 1e-5, 1e-6));
  // a batch of pairs through run_encoded, keeping layers
  std::vector<Encoding> encodings{model.encode_pair("the sky is blue", "a bank"), model.encode_pair("the bank", "the river")};
  std::vector<Result> batch =
      model.run_encoded({"the sky is blue", "the bank"}, encodings, {"a bank", "the river"}, RunOptions{{0, 2}});
  EXPECT_EQ(batch[1].layers(), (std::vector<int>{0, 2}));
  EXPECT_LT((batch[1].attention(2) - full.attention(2)).abs().max().item<double>(), 1e-5);
  EXPECT_LT((batch[1].attention(0) - full.attention(0)).abs().max().item<double>(), 1e-5);
}

TEST(ModelText, TextPairsWithLayersFromAFileWithoutForwardLayers) {
  // A BERT file from before forward_layers: the whole forward runs with the token types, the layers asked for kept.
  LoadOptions options;
  options.layers = {1};
  Model model = Model::load(model_path("bert-text-forward-only.apx"), options);
  Result r = model.run_text_pair("the bank", "the river");
  Result full = Model::load(model_path("bert-text.apx")).run_text_pair("the bank", "the river");
  EXPECT_EQ(r.layers(), (std::vector<int>{1}));
  EXPECT_EQ(r.type_ids(), full.type_ids());
  EXPECT_TRUE(at::allclose(r.queries(1), full.queries(1), 1e-5, 1e-6));
  EXPECT_TRUE(at::allclose(r.keys(1), full.keys(1), 1e-5, 1e-6));
}

TEST(ModelLoad, ForwardLayersMustTakeTheTokenTypesTheManifestLists) {
  expect_error(ErrorCode::kUnsupported, "the probe forward_layers",
               [] { Model::load(model_path("bert-text-forward-layers-without-types.apx")); });
}

TEST(ModelText, TextPairsNeedAFileThatSaysItsInputs) {
  Model old = Model::load(model_path("bert-text-no-inputs.apx"));  // a file from before text pairs
  EXPECT_TRUE(old.manifest().inputs.empty());
  EXPECT_EQ(old.run_text("the bank").num_tokens(), 4);  // single texts run as ever
  expect_error(ErrorCode::kUnsupported, "export it again to run a text pair",
               [&] { old.run_text_pair("the bank", "the river"); });
  // A model without segments (its manifest lists ids and mask only) reads a pair as one sequence of type 0.
  Model llama = Model::load(model_path("llama-text.apx"));
  Result pair = llama.run_text_pair("the bank", "the river");
  EXPECT_EQ(pair.ids(), (std::vector<int64_t>{1, 10, 12, 10, 14}));  // BOS, then both texts (no template)
  EXPECT_EQ(pair.type_ids(), (std::vector<int64_t>(5, 0)));
}

}  // namespace
}  // namespace attnprox
