// The one way the C++ tests expect an error: an attnprox::Error with a given code and a message containing a given
// fragment (so that a test pins which error, not only that something was thrown).
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "attnprox/error.hpp"

namespace attnprox::testing {

/// Expects `body` to throw attnprox::Error with `code` and a message containing `fragment`. Any other exception
/// escapes and fails the test.
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
