// Internal to the engine: shared pieces of the Model and Result implementations.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/ScalarType.h>
#include <c10/util/Exception.h>
#if ATTNPROX_WITH_SPDLOG
#include <spdlog/logger.h>
#else
#include <algorithm>
#include <atomic>
#include <cstring>
#include <iostream>
#include <sstream>
#endif

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "attnprox/engine.hpp"

namespace attnprox {

struct Result::Data {
  std::shared_ptr<const Manifest> manifest;
  std::shared_ptr<const Tokenizer> tokenizer;  // may be null
  std::vector<int64_t> ids;
  std::string text;
  std::string text_pair;            // the second text of a text pair
  Encoding encoding;                // tokens and offsets when a text was run
  std::vector<int64_t> type_ids;    // the token type ids the model was given (zeros but for text pairs)
  std::vector<at::Tensor> queries;  // per captured layer, [H, N, d]
  std::vector<at::Tensor> keys;     // per captured layer, [Hkv, N, d]
};

namespace detail {
/// The engine's code outside the members of Model and Result names their private state through these.
struct EngineAccess {
  using ModelImpl = Model::Impl;
  using ResultData = Result::Data;
};
}  // namespace detail
using ModelImpl = detail::EngineAccess::ModelImpl;
using ResultData = detail::EngineAccess::ResultData;

/// Rows first_row.. of the attention weights: `queries` [H, rows, d] are the queries of tokens first_row..,
/// masks placed as for those positions (attention_weights is first_row = 0).
at::Tensor attention_rows(const at::Tensor& queries, const at::Tensor& keys, const AttentionSpec& spec,
                          int64_t first_row);

/// The slots (positions in manifest.layers) of the layers asked for, each given as Manifest::slot takes it,
/// ascending and distinct (a layer named twice counts once); empty: every captured layer. Throws
/// Error(kOutOfRange) for a layer that is not captured.
std::vector<size_t> layer_slots(const Manifest& manifest, const std::vector<int>& layers);
/// The query heads asked for, checked, ascending and distinct (a head named twice counts once); empty stays empty
/// (the caller decides what "every head" means).
/// Throws Error(kOutOfRange) for a head out of range.
std::vector<int64_t> checked_heads(const Manifest& manifest, const std::vector<int>& heads);

/// Qg: the queries summed over the heads that read each key head, [Hkv, N, d], in `dtype`.
at::Tensor grouped_queries(const at::Tensor& queries, int64_t kv_heads, at::ScalarType dtype);

c10::ScalarType scalar_type(DType dtype);

/// A libtorch message with its cause first: a TorchScript interpreter traceback (whose cause is its last line)
/// becomes that cause and a note; the traceback itself is logged at debug level. Other messages stay as they are.
std::string cause_first(const std::string& message);

/// Refuses a path to read that holds a NUL character (InvalidArgument), does not exist (NotFound) or cannot be
/// read (InvalidArgument naming the system's reason: permission denied, a parent that is not a folder).
void check_readable(const std::string& path, const char* what);
DType dtype_of(c10::ScalarType type);

#if ATTNPROX_WITH_SPDLOG
using Logger = spdlog::logger;
#else
/// Without spdlog (ATTNPROX_WITH_SPDLOG=OFF): the calls of spdlog's logger used here, "{}" placeholders filled
/// in order, one line per message on stderr.
class Logger {
 public:
  enum Level { kTrace, kDebug, kInfo, kWarn, kError, kCritical, kOff };
  void set_level(Level level) { level_ = level; }
  template <typename... Args>
  void debug(const char* format, const Args&... args) {
    log(kDebug, "debug", format, args...);
  }
  template <typename... Args>
  void warn(const char* format, const Args&... args) {
    log(kWarn, "warning", format, args...);
  }

 private:
  template <typename... Args>
  void log(Level level, const char* name, const char* format, const Args&... args) {
    if (level < level_.load()) return;
    std::ostringstream out;
    out << "[attnprox " << name << "] ";
    const char* rest = format;
    auto put = [&](const auto& arg) {
      const char* hole = std::strstr(rest, "{}");
      if (!hole) return;
      out.write(rest, hole - rest);
      out << arg;
      rest = hole + 2;
    };
    (put(args), ...);
    out << rest;
    std::lock_guard<std::mutex> lock(mutex_);
    if (callback_) {
      callback_(static_cast<LogLevel>(std::min<int>(level, kError)), out.str().substr(out.str().find("] ") + 2));
    } else {
      std::cerr << out.str() + '\n';
    }
  }
  std::atomic<Level> level_{kWarn};
  std::mutex mutex_;
  LogCallback callback_;

 public:
  void set_callback(LogCallback callback) {
    std::lock_guard<std::mutex> lock(mutex_);
    callback_ = std::move(callback);
  }
};
#endif

/// The library's logger ("attnprox"); its level comes from ATTNPROX_LOG_LEVEL (default "warn").
Logger& logger();

/// The first line of a libtorch error, without its C++ backtrace.
std::string torch_message(const c10::Error& error);

/// `t` itself when all its values are finite; otherwise Error(kRuntime) "<what>: ... not finite": no measurement
/// returns NaN or Inf with success (queries and keys too large for the arithmetic's float type overflow).
at::Tensor finite(at::Tensor t, const std::string& what);

/// Runs `body`, turning libtorch errors into Error(kRuntime) prefixed with `what`.
template <typename Body>
auto guarded(const std::string& what, Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw Error(ErrorCode::kRuntime, what + ": " + torch_message(e));
  } catch (const std::exception& e) {  // TorchScript's own exceptions (raise in a forward) are not c10::Errors
    throw Error(ErrorCode::kRuntime, what + ": " + cause_first(e.what()));
  }
}

}  // namespace attnprox
