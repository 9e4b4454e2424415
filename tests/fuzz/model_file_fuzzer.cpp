// libFuzzer target: arbitrary bytes as a model file, through what attnprox reads of it before libtorch does: the
// zip archive (central directory, local headers, every entry's CRC-32, bounded inflating) and the manifest. Each
// step must succeed or throw attnprox::Error (never another exception, a crash, a hang or unbounded memory).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "../../lib/common/limits.hpp"
#include "../../lib/engine/archive.hpp"
#include "attnprox/error.hpp"
#include "attnprox/manifest.hpp"

namespace {
std::string scratch_file() {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/attnprox-model-fuzz-" + std::to_string(::getpid()) + ".apx";
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = scratch_file();
  if (std::FILE* f = std::fopen(path.c_str(), "wb")) {
    std::fwrite(data, 1, size, f);
    std::fclose(f);
  } else {
    std::abort();
  }
  try {
    attnprox::archive::check_regular_file(path, "model file");
    const attnprox::archive::ZipFile zip(path);
    for (const auto& entry : zip.entries()) {
      if (entry.data_offset > size || entry.compressed > size - entry.data_offset) std::abort();
    }
    if (const auto* manifest = zip.find_record("extra/attnprox/manifest.json")) {
      const std::string text = zip.read(*manifest, attnprox::limits::kMaxManifestBytes, "its manifest");
      if (text.size() != manifest->size) std::abort();
      (void)attnprox::Manifest::parse(text);
    }
    zip.verify_all();
  } catch (const attnprox::Error&) {
    return 0;
  } catch (const std::exception& other) {
    std::fprintf(stderr, "non-attnprox exception: %s\n", other.what());
    std::abort();
  }
  return 0;
}
