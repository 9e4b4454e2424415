// attnprox from C++: load a model file, run a text, print its Attention Proximity, APE and the strongest arcs of
// its last token.
//
//   cmake -S examples/cpp -B build-example -DCMAKE_PREFIX_PATH=<attnprox prefix> && cmake --build build-example
//   build-example/attention_proximity MODEL.apx "The bank by the river was steep."
#include <attnprox/engine.hpp>
#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s MODEL TEXT\n", argv[0]);
    return 2;
  }
  try {
    attnprox::Model model = attnprox::Model::load(argv[1]);
    attnprox::Result result = model.run_text(argv[2]);
    const attnprox::ApeResult ape = result.ape();
    std::printf("N=%lld AP=%.9f APE=%.9f normalized=%.9f undefined=%lld\n", static_cast<long long>(result.num_tokens()),
                result.ap(), ape.value.value_or(-1), ape.normalized.value_or(-1),
                static_cast<long long>(ape.undefined_rows));
    const std::vector<std::string> tokens = result.tokens();
    const int64_t last = result.num_tokens() - 1;
    for (const auto& arc : result.top_arcs(last, 3)) {
      std::printf("arc %s -> %s %.6f\n", tokens[last].c_str(), tokens[arc.key].c_str(), arc.weight);
    }
  } catch (const attnprox::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
