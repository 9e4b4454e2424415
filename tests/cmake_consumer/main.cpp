// attnprox from C++ in a project that builds it (tests/cmake_consumer): the version, and the AP of a text.
#include <attnprox/engine.hpp>
#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s MODEL TEXT\n", argv[0]);
    return 2;
  }
  try {
    const attnprox::Model model = attnprox::Model::load(argv[1]);
    const attnprox::Result result = model.run_text(argv[2]);
    std::printf("attnprox %s: N=%lld AP=%.9f\n", attnprox::version().c_str(),
                static_cast<long long>(result.num_tokens()), result.ap());
  } catch (const attnprox::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
