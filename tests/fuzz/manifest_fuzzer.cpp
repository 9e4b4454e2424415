// libFuzzer target: arbitrary bytes as a model file's manifest. Parsing must succeed or throw attnprox::Error
// (never another exception, a crash, or a message that grows with the input); a parsed manifest must be
// self-consistent (layers ascending, every query head maps to a key head).
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "attnprox/error.hpp"
#include "attnprox/manifest.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const attnprox::Manifest m = attnprox::Manifest::parse(text);
    if (m.layers.empty() || m.num_heads % m.num_kv_heads != 0) std::abort();
    for (size_t k = 1; k < m.layers.size(); ++k) {
      if (m.layers[k].index <= m.layers[k - 1].index) std::abort();
    }
    for (int h = 0; h < m.num_heads; ++h) {
      if (m.kv_group(h) < 0 || m.kv_group(h) >= m.num_kv_heads) std::abort();
    }
    (void)m.slot(-1);
  } catch (const attnprox::Error& e) {
    if (std::string(e.what()).size() > 2048) {
      std::fprintf(stderr, "unbounded message (%zu bytes)\n", std::string(e.what()).size());
      std::abort();
    }
  } catch (const std::exception& other) {
    std::fprintf(stderr, "non-attnprox exception: %s\n", other.what());
    std::abort();
  }
  return 0;
}
