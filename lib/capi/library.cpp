// The C ABI: library (the section "library" of include/attnprox/attnprox.h).
#include "internal.hpp"

using namespace attnprox::capi;

extern "C" {

const char* apx_last_error(void) {
  return last_error.c_str();
}
const char* apx_version(void) {
  return APX_VERSION_STRING;
}
int apx_version_number(void) {
  return APX_VERSION_NUMBER;
}
int apx_abi_version(void) {
  return APX_ABI_VERSION;
}

const char* apx_status_name(apx_status status) {
  switch (status) {
    case APX_OK: return "APX_OK";
    case APX_ERROR_INVALID_ARGUMENT: return "APX_ERROR_INVALID_ARGUMENT";
    case APX_ERROR_OUT_OF_RANGE: return "APX_ERROR_OUT_OF_RANGE";
    case APX_ERROR_NOT_FOUND: return "APX_ERROR_NOT_FOUND";
    case APX_ERROR_INVALID_MODEL: return "APX_ERROR_INVALID_MODEL";
    case APX_ERROR_UNSUPPORTED: return "APX_ERROR_UNSUPPORTED";
    case APX_ERROR_RUNTIME: return "APX_ERROR_RUNTIME";
    case APX_ERROR_NULL_POINTER: return "APX_ERROR_NULL_POINTER";
    case APX_ERROR_BUFFER_TOO_SMALL: return "APX_ERROR_BUFFER_TOO_SMALL";
    case APX_ERROR_INVALID_HANDLE: return "APX_ERROR_INVALID_HANDLE";
    case APX_ERROR_OUT_OF_MEMORY: return "APX_ERROR_OUT_OF_MEMORY";
    case APX_ERROR_INTERNAL: return "APX_ERROR_INTERNAL";
  }
  return "APX_UNKNOWN_STATUS";
}

apx_status apx_set_log_level(const char* level) {
  return call([&] {
    need(level, "level");
    attnprox::set_log_level(level);
  });
}

void apx_log_set(apx_log_callback callback, void* user_data) {
  if (!callback) {
    attnprox::set_log_callback({});
    return;
  }
  attnprox::set_log_callback([callback, user_data](attnprox::LogLevel level, const std::string& message) {
    callback(static_cast<apx_log_level>(level), message.c_str(), user_data);
  });
}

void apx_string_free(char* text) {
  std::free(text);
}

}  // extern "C"
