// libFuzzer target: arbitrary bytes as a tokenizer.json. Loading must either succeed or throw attnprox::Error (never
// another exception, never a crash); a loaded tokenizer must encode a fixed text the same way.
#include <cstdlib>
#include <exception>
#include <string>

#include "attnprox/tokenizer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string json(reinterpret_cast<const char*>(data), size);
  try {
    attnprox::Tokenizer t = attnprox::Tokenizer::from_json(json);
    attnprox::Encoding e = t.encode("Hello, world! Ünïcödé 12345 <mask> [CLS]", true);
    for (const auto& [start, end] : e.offsets) {
      if (start > end) std::abort();
    }
    (void)t.decode(e.ids);
  } catch (const attnprox::Error&) {
    return 0;
  } catch (const std::exception& other) {
    std::fprintf(stderr, "non-attnprox exception: %s\n", other.what());
    std::abort();
  }
  return 0;
}
