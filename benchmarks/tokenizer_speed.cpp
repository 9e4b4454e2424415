// Tokenizer speed: tokens per second over a corpus of text files, one thread, best of several passes (loading the
// tokenizer and reading the files are not timed).
//
//   tokenizer_speed NAME=SPEC [NAME=SPEC ...] -- FILE [FILE ...]
//     SPEC: path/to/tokenizer.json | wordpiece:path/to/vocab.txt | bpe:path/to/vocab.json,path/to/merges.txt
//
// Prints one line per tokenizer: tokens, bytes, seconds of the best pass, tokens/s and MB/s.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "attnprox/tokenizer.hpp"

namespace {

attnprox::Tokenizer load(const std::string& spec) {
  if (spec.rfind("wordpiece:", 0) == 0) return attnprox::Tokenizer::wordpiece(spec.substr(10));
  if (spec.rfind("bpe:", 0) == 0) {
    const std::string rest = spec.substr(4);
    const size_t comma = rest.find(',');
    return attnprox::Tokenizer::byte_level_bpe(rest.substr(0, comma), rest.substr(comma + 1));
  }
  return attnprox::Tokenizer::from_file(spec);
}

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::pair<std::string, std::string>> specs;
  std::vector<std::string> files;
  bool after = false;
  for (int k = 1; k < argc; ++k) {
    const std::string arg = argv[k];
    if (arg == "--") {
      after = true;
    } else if (after) {
      files.push_back(arg);
    } else {
      const size_t eq = arg.find('=');
      specs.emplace_back(arg.substr(0, eq), arg.substr(eq + 1));
    }
  }
  if (specs.empty() || files.empty()) {
    std::fprintf(stderr, "usage: %s NAME=SPEC [...] -- FILE [...]\n", argv[0]);
    return 2;
  }
  std::vector<std::string> texts;
  size_t bytes = 0;
  for (const std::string& f : files) {
    texts.push_back(read(f));
    bytes += texts.back().size();
  }
  for (const auto& [name, spec] : specs) {
    const auto t0 = std::chrono::steady_clock::now();
    attnprox::Tokenizer tokenizer = load(spec);
    const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double best = 1e30;
    size_t tokens = 0;
    for (int pass = 0; pass < 4; ++pass) {  // the first pass fills the word cache, as it would in use
      size_t count = 0;
      const auto start = std::chrono::steady_clock::now();
      for (const std::string& text : texts) count += tokenizer.encode(text).size();
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      tokens = count;
    }
    std::printf("%-8s %9zu tokens %9zu bytes  best %.3f s  %10.0f tokens/s  %6.2f MB/s  (load %.2f s)\n", name.c_str(),
                tokens, bytes, best, tokens / best, bytes / best / 1e6, load_s);
  }
  return 0;
}
