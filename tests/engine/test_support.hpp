// Helpers shared by the engine tests.
#pragma once

#include <cstdlib>
#include <stdexcept>
#include <string>

#include "../expect_error.hpp"

namespace attnprox::testing {

/// A model file written by tests/tools/make_test_models.py (the CTest fixture `test_models`).
inline std::string model_path(const std::string& name) {
  const char* dir = std::getenv("ATTNPROX_TEST_MODELS");
  if (!dir) throw std::runtime_error("ATTNPROX_TEST_MODELS is not set; run the tests through ctest");
  return std::string(dir) + "/" + name;
}

}  // namespace attnprox::testing
