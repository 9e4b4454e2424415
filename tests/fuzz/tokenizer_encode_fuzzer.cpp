// libFuzzer target: arbitrary bytes as text through a tokenizer. Invalid UTF-8 must be an attnprox::Error; valid
// text must encode with offsets inside the text and ids that decode. Anything else (a crash, another exception,
// an out-of-range offset) is a bug.
//
// The tokenizer is ATTNPROX_FUZZ_TOKENIZER (a tokenizer.json), else the small BERT-like one in this folder.
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "attnprox/tokenizer.hpp"

namespace {
const attnprox::Tokenizer& tokenizer() {
  static const attnprox::Tokenizer t = [] {
    const char* path = std::getenv("ATTNPROX_FUZZ_TOKENIZER");
    return attnprox::Tokenizer::from_file(path ? path : ATTNPROX_FUZZ_DEFAULT_TOKENIZER);
  }();
  return t;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  attnprox::Encoding e;
  try {
    e = tokenizer().encode(text, size % 2 == 0);
  } catch (const attnprox::Error& error) {
    if (error.code() != attnprox::ErrorCode::kInvalidArgument) std::abort();
    return 0;  // invalid UTF-8, reported
  }
  if (e.ids.size() != e.offsets.size() || e.ids.size() != e.char_offsets.size()) std::abort();
  for (const auto& [start, end] : e.offsets) {
    if (start > end || end > text.size()) std::abort();
  }
  (void)tokenizer().decode(e.ids);  // every id the tokenizer produced must decode
  return 0;
}
