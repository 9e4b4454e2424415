// Helpers shared by the engine tests.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "attnprox/error.hpp"

namespace attnprox::testing {

/// A model file written by tests/tools/make_test_models.py (the CTest fixture `test_models`).
inline std::string model_path(const std::string& name) {
  const char* dir = std::getenv("ATTNPROX_TEST_MODELS");
  if (!dir) throw std::runtime_error("ATTNPROX_TEST_MODELS is not set; run the tests through ctest");
  return std::string(dir) + "/" + name;
}

/// Expects `body` to throw attnprox::Error with `code` and a message containing `fragment`.
template <typename Body>
void expect_error(ErrorCode code, const std::string& fragment, Body&& body) {
  try {
    body();
    ADD_FAILURE() << "expected an attnprox::Error containing \"" << fragment << "\", nothing was thrown";
  } catch (const Error& e) {
    EXPECT_EQ(static_cast<int>(e.code()), static_cast<int>(code)) << "message: " << e.what();
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos)
        << "message \"" << e.what() << "\" lacks \"" << fragment << "\"";
  }
}

}  // namespace attnprox::testing
