// How the C ABI reports failures: every entry point runs its body through call(), which turns each exception into
// a status code and the calling thread's message (apx_last_error). No exception crosses the interface.
#pragma once

#include <memory>
#include <new>
#include <string>
#include <vector>

#include "attnprox/attnprox.h"
#include "attnprox/error.hpp"

namespace attnprox::capi {

/// A failure of the C layer itself (null pointer, small buffer, dead handle).
struct CallError {
  apx_status status;
  std::string message;
};

/// The message of the calling thread's last failure.
inline thread_local std::string last_error;

/// The objects the calling thread's current call uses (strong references taken by the handle lookup): they stay
/// alive until the call returns, even when another thread frees their handles meanwhile.
inline thread_local std::vector<std::shared_ptr<const void>> pinned;

inline void need(const void* pointer, const char* name) {
  if (!pointer) throw CallError{APX_ERROR_NULL_POINTER, std::string(name) + " is NULL"};
}

inline apx_status status_of(attnprox::ErrorCode code) {
  switch (code) {
    case attnprox::ErrorCode::kInvalidArgument: return APX_ERROR_INVALID_ARGUMENT;
    case attnprox::ErrorCode::kOutOfRange: return APX_ERROR_OUT_OF_RANGE;
    case attnprox::ErrorCode::kNotFound: return APX_ERROR_NOT_FOUND;
    case attnprox::ErrorCode::kInvalidModel: return APX_ERROR_INVALID_MODEL;
    case attnprox::ErrorCode::kUnsupported: return APX_ERROR_UNSUPPORTED;
    case attnprox::ErrorCode::kRuntime: return APX_ERROR_RUNTIME;
  }
  return APX_ERROR_INTERNAL;
}

/// `text` with every byte that is not part of a well-formed UTF-8 sequence replaced by U+FFFD: apx_last_error() is
/// UTF-8 even when a message quotes bytes of a broken file.
inline std::string valid_utf8(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  for (size_t i = 0; i < n;) {
    const unsigned char c = s[i];
    size_t length = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3
                                 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
    bool ok = length > 0 && i + length <= n;
    for (size_t k = 1; ok && k < length; ++k) ok = (s[i + k] & 0xC0) == 0x80;
    if (ok && length == 3) {  // no overlong forms, no surrogates
      ok = !(c == 0xE0 && s[i + 1] < 0xA0) && !(c == 0xED && s[i + 1] >= 0xA0);
    }
    if (ok && length == 4) ok = !(c == 0xF0 && s[i + 1] < 0x90) && !(c == 0xF4 && s[i + 1] >= 0x90);
    if (ok) {
      out.append(text, i, length);
      i += length;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

/// Runs `body`, turning every exception into a status and the thread's last-error message. The objects the body
/// pinned are released when it returns.
template <typename Body>
apx_status call(Body&& body) noexcept {
  last_error.clear();
  const size_t pins = pinned.size();
  struct Unpin {
    size_t keep;
    ~Unpin() { pinned.resize(keep); }
  } unpin{pins};
  try {
    body();
    return APX_OK;
  } catch (const CallError& e) {
    last_error = e.message;
    return e.status;
  } catch (const attnprox::Error& e) {
    last_error = valid_utf8(e.what());
    return status_of(e.code());
  } catch (const std::bad_alloc&) {
    last_error = "out of memory";
    return APX_ERROR_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    last_error = valid_utf8(std::string("internal error: ") + e.what());
    return APX_ERROR_INTERNAL;
  } catch (...) {
    last_error = "internal error: an unknown exception";
    return APX_ERROR_INTERNAL;
  }
}

}  // namespace attnprox::capi
