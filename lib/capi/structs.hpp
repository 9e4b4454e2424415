// Params and report structs of the C ABI grow at their end (attnprox.h, "Conventions"). A caller compiled against
// an older header passes its smaller struct_size; one compiled against a newer header a larger one. The library
// reads and writes only the bytes the caller's struct_size covers (at most this header's sizeof) and uses the
// defaults for the rest. Nothing here names a field: a field appended to a struct is covered without a change here.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string>

#include "attnprox/attnprox.h"
#include "errors.hpp"

namespace attnprox::capi {

/// The end of `field` in `Type`: the struct_size of a header whose struct ends with that field.
#define APX_END_OF(Type, field) (offsetof(Type, field) + sizeof(static_cast<Type*>(nullptr)->field))

/// Whether the caller's struct `s` (a pointer) holds `field`.
#define APX_COVERS(s, Type, field) ((s)->struct_size >= APX_END_OF(Type, field))

/// The smallest struct_size the library accepts: the struct as first published (attnprox 0.1 for the structs of
/// that release, the release that added it for the others). Fields after it are optional for callers.
template <typename T>
constexpr size_t kFirstPublished = sizeof(T);
template <>
constexpr size_t kFirstPublished<apx_load_params> = APX_END_OF(apx_load_params, threads);
template <>
constexpr size_t kFirstPublished<apx_model_info> = APX_END_OF(apx_model_info, has_tokenizer);
template <>
constexpr size_t kFirstPublished<apx_run_params> = APX_END_OF(apx_run_params, layer_count);
template <>
constexpr size_t kFirstPublished<apx_text_params> = APX_END_OF(apx_text_params, add_special_tokens);
template <>
constexpr size_t kFirstPublished<apx_ape_report> = APX_END_OF(apx_ape_report, policy);
template <>
constexpr size_t kFirstPublished<apx_attention_stats> = APX_END_OF(apx_attention_stats, most_attended);
template <>
constexpr size_t kFirstPublished<apx_encode_params> = APX_END_OF(apx_encode_params, add_special_tokens);

/// Refuses a struct_size below the first published one (not a struct of any header).
template <typename T>
void check_struct_size(const T& s, const char* name) {
  if (s.struct_size < kFirstPublished<T>) {
    throw CallError{APX_ERROR_INVALID_ARGUMENT, std::string(name) + ".struct_size is " +
                                                    std::to_string(s.struct_size) + ", at least " +
                                                    std::to_string(kFirstPublished<T>) + " expected"};
  }
}

/// The caller's params (NULL: the defaults) as this library's struct: the bytes inside the caller's struct_size
/// from the caller, the rest from `defaults`.
template <typename T>
T params_in(const T* caller, T defaults, const char* name) {
  if (!caller) return defaults;
  check_struct_size(*caller, name);
  std::memcpy(static_cast<void*>(&defaults), caller, std::min(caller->struct_size, sizeof(T)));
  defaults.struct_size = sizeof(T);
  return defaults;
}

/// Checks a report struct the caller passes to be filled (not NULL, a known struct_size) before any work.
template <typename T>
void check_report(const T* caller, const char* name) {
  if (!caller) throw CallError{APX_ERROR_NULL_POINTER, std::string(name) + " is NULL"};
  check_struct_size(*caller, name);
}

/// Writes a report into the caller's struct: only the bytes its struct_size covers; struct_size stays the caller's.
template <typename T>
void report_out(const T& report, T* caller, const char* name) {
  check_report(caller, name);
  const size_t size = std::min(caller->struct_size, sizeof(T));
  constexpr size_t kStart = offsetof(T, struct_size) + sizeof(size_t);
  static_assert(offsetof(T, struct_size) == 0, "struct_size comes first");
  std::memcpy(reinterpret_cast<char*>(caller) + kStart, reinterpret_cast<const char*>(&report) + kStart,
              size - kStart);
}

}  // namespace attnprox::capi
