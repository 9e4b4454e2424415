// attnprox — errors of the C++ API.
//
// Every failure the library detects is thrown as attnprox::Error: a message that says what was expected and
// what was found, and a code that the C ABI maps to its status codes and the Python module to its exception
// classes. Nothing else escapes the public API (errors from libtorch are caught and rethrown as Error).
#pragma once

#include <stdexcept>
#include <string>

namespace attnprox {

enum class ErrorCode {
  kInvalidArgument = 1,  // a value the caller passed is not acceptable (empty input, bad option, bad id)
  kOutOfRange = 2,       // an index (layer, head, token) outside what exists
  kNotFound = 3,         // a file that does not exist
  kInvalidModel = 4,     // a model file that breaks the model-file contract
  kUnsupported = 5,      // a valid request this build cannot serve (CUDA on a CPU-only build, a dtype)
  kRuntime = 6,          // a failure while computing (libtorch error, non-finite values)
};

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace attnprox
