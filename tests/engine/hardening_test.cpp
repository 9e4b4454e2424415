// What a hostile or careless model file does to loading (docs/limits.md): deep JSON, FIFOs, corrupt archives,
// bounded messages; each is a clear error, never a crash, a hang or a silently different model.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <future>
#include <nlohmann/json.hpp>

#include "attnprox/engine.hpp"
#include "test_support.hpp"

namespace attnprox {
namespace {

using testing::expect_error;
using testing::model_path;

std::string valid_manifest_with(const std::string& key, const std::string& value_text) {
  nlohmann::json m = {{"format", "attnprox-model"}, {"format_version", 1},  {"family", "test"},
                      {"num_layers", 1},            {"captured_layers", {0}}, {"num_heads", 2},
                      {"num_kv_heads", 1},          {"head_dim", 4},        {"causal", true},
                      {"max_positions", 16},        {"vocab_size", 10},     {"dtype", "float32"},
                      {"layers", {{{"index", 0}, {"scaling", 0.5}}}}};
  m[key] = "PLACEHOLDER";
  std::string text = m.dump();
  text.replace(text.find("\"PLACEHOLDER\""), 13, value_text);
  return text;
}

TEST(Hardening, ManifestNested100000DeepIsAnError) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  expect_error(ErrorCode::kInvalidModel, "nested more than 100 levels",
               [&] { Manifest::parse(valid_manifest_with("num_layers", deep)); });
  expect_error(ErrorCode::kInvalidModel, "nested more than 100 levels", [&] { Manifest::parse(deep); });
  // Just under the bound: parsed, and the value's message is short.
  const std::string shallow = std::string(99, '[') + std::string(99, ']');
  try {
    Manifest::parse(valid_manifest_with("num_layers", shallow));
    ADD_FAILURE() << "a list is not a layer count";
  } catch (const Error& e) {
    EXPECT_LT(std::string(e.what()).size(), 300u) << e.what();
    EXPECT_NE(std::string(e.what()).find("'num_layers' must be an integer"), std::string::npos) << e.what();
  }
}

TEST(Hardening, ModelFileWithADeepManifestIsAnError) {
  expect_error(ErrorCode::kInvalidModel, "nested more than 100 levels",
               [] { Model::load(model_path("deep_manifest.apx")); });
}

TEST(Hardening, MessagesShowABoundedPartOfAValue) {
  const std::string big_list = "[" + std::string(1 << 20, '1') + "]";
  const std::string big_text = "\"" + std::string(1 << 20, 'x') + "\"";
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"num_layers", big_list}, {"format", big_text}, {"dtype", big_text}, {"inputs", big_text}}) {
    try {
      Manifest::parse(valid_manifest_with(key, value));
      ADD_FAILURE() << key;
    } catch (const Error& e) {
      EXPECT_LT(std::string(e.what()).size(), 400u) << key;
    }
  }
}

/// Runs `load` on another thread; a FIFO makes a blocking open() wait for a writer forever, so after the deadline
/// the test opens the FIFO's other end itself (which lets a blocked open return) and fails.
template <typename Load>
void expect_refused_without_blocking(const std::string& fifo, Load&& load, const std::string& fragment) {
  auto done = std::async(std::launch::async, [&] {
    expect_error(ErrorCode::kInvalidArgument, fragment, load);
  });
  if (done.wait_for(std::chrono::seconds(20)) != std::future_status::ready) {
    ADD_FAILURE() << "loading a FIFO blocked";
    const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd >= 0) ::close(fd);
  }
  done.wait();
}

TEST(Hardening, FifoIsRefusedBeforeItIsOpened) {
  const auto dir = std::filesystem::temp_directory_path() / ("attnprox-fifo-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string fifo = (dir / "model.apx").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  expect_refused_without_blocking(fifo, [&] { Model::load(fifo); }, "not a regular file");
  expect_refused_without_blocking(fifo, [&] { Tokenizer::from_file(fifo); }, "not a regular file");
  expect_refused_without_blocking(fifo, [&] { Tokenizer::wordpiece(fifo); }, "not a regular file");
  expect_error(ErrorCode::kInvalidArgument, "not a regular file", [] { Model::load("/dev/zero"); });
  // POSIX calls, not std::filesystem::remove_all: a PyTorch wheel's libtorch exports its own std::filesystem, whose
  // remove_all crashes when called from code built by a newer GCC (seen with GCC 13 on the GPU machine).
  ::unlink(fifo.c_str());
  ::rmdir(dir.c_str());
}

TEST(Hardening, CorruptEntryIsRefused) {
  // corrupt.apx is constant.apx with one bit of its (compressed) code flipped.
  Model::load(model_path("constant.apx"));
  expect_error(ErrorCode::kInvalidModel, "is corrupt", [] { Model::load(model_path("corrupt.apx")); });
}

TEST(Hardening, TokenizerTextIsReadAgainFromTheFile) {
  const Model model = Model::load(model_path("bert-text.apx"));
  const std::string text = model.tokenizer_json();
  ASSERT_FALSE(text.empty());
  const Tokenizer again = Tokenizer::from_json(text);
  EXPECT_EQ(again.encode("the bank").ids, model.tokenizer()->encode("the bank").ids);
}

}  // namespace
}  // namespace attnprox
