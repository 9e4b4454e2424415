// What the C ABI's files share (lib/capi/*.cpp, one per section of attnprox.h): the objects behind the
// handles, their registries, and the translation of arguments and results between C and the C++ API.
#pragma once

#include <ATen/ATen.h>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <new>
#include <string>
#include "attnprox/attnprox.h"
#include "attnprox/engine.hpp"
#include "attnprox/metrics.hpp"
#include "attnprox/tokenizer.hpp"
#include "attnprox/version.hpp"
#include "errors.hpp"
#include "handles.hpp"
#include "structs.hpp"

namespace attnprox::capi {


// The objects behind the handles (handles.hpp: handles are numbers, never these objects' addresses).
struct ModelObject {
  attnprox::Model model;
  bool rope = false;  // apx_load_params.rope: the proximity family's queries and keys after RoPE by default
};
struct ResultObject {
  attnprox::Result result;
  bool rope = false;  // the run's choice (apx_run_params / apx_text_params .rope, else the model's)
  attnprox::ProximityOptions proximity() const { return {rope}; }
};
struct TokenizerObject {
  attnprox::Tokenizer tokenizer;
};

inline Registry<ModelObject>& models() {
  static Registry<ModelObject> r(1);
  return r;
}
inline Registry<ResultObject>& results() {
  static Registry<ResultObject> r(2);
  return r;
}
inline Registry<TokenizerObject>& tokenizers() {
  static Registry<TokenizerObject> r(3);
  return r;
}

/// A new handle for a new object.
template <typename Handle, typename Object>
Handle* make_handle(Registry<Object>& registry, Object object) {
  return to_handle<Handle>(registry.add(std::make_shared<const Object>(std::move(object))));
}

/// Caller-allocated output: reports the size, checks the capacity, copies.
template <typename T>
void deliver(const T* values, size_t count, T* out, size_t capacity, size_t* needed) {
  if (needed) *needed = count;
  if (!out) return;  // a size query
  if (capacity < count) {
    throw CallError{APX_ERROR_BUFFER_TOO_SMALL, "the buffer holds " + std::to_string(capacity) + " elements, " +
                                                    std::to_string(count) + " are needed"};
  }
  if (count) std::memcpy(out, values, count * sizeof(T));
}

template <typename T>
void deliver(const std::vector<T>& values, T* out, size_t capacity, size_t* needed) {
  deliver(values.data(), values.size(), out, capacity, needed);
}

/// A tensor, on the CPU in `dtype`, into a caller-allocated buffer.
template <typename T>
void deliver(const at::Tensor& tensor, at::ScalarType dtype, T* out, size_t capacity, size_t* needed) {
  const size_t count = static_cast<size_t>(tensor.numel());
  if (needed) *needed = count;
  if (!out) return;
  if (capacity < count) {
    throw CallError{APX_ERROR_BUFFER_TOO_SMALL, "the buffer holds " + std::to_string(capacity) + " elements, " +
                                                    std::to_string(count) + " are needed"};
  }
  const at::Tensor cpu = tensor.to(at::kCPU, dtype).contiguous();
  if (count) std::memcpy(out, cpu.data_ptr(), count * sizeof(T));
}

/// The largest length (bytes of a text) or count (elements of an array) the interface takes: a larger one is a
/// mistake (SIZE_MAX − 1, a negative number cast to size_t) and is refused before anything is read or allocated.
constexpr size_t kMaxInputElements = 0x7fffffff;

inline void check_count(size_t count, const char* name) {
  if (count > kMaxInputElements) {
    throw CallError{APX_ERROR_INVALID_ARGUMENT, std::string(name) + " is " + std::to_string(count) +
                                                    ", more than the " + std::to_string(kMaxInputElements) +
                                                    " (2^31 - 1) attnprox takes"};
  }
}

inline std::string text_of(const char* text, size_t length) {
  if (length == SIZE_MAX) return std::string(text);
  check_count(length, "length");
  return std::string(text, length);
}

/// values[0 .. count) as a vector, count checked against kMaxInputElements and values against NULL.
template <typename T>
std::vector<T> elements(const T* values, size_t count, const char* name) {
  check_count(count, (std::string(name) + " count").c_str());
  if (count) need(values, name);
  return std::vector<T>(values, values + count);
}

inline char* copy_string(const std::string& s) {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (!out) throw std::bad_alloc();
  std::memcpy(out, s.c_str(), s.size() + 1);
  return out;
}

/// head -1: every head (C's spelling of "no head"); any other negative head is out of range, as in C++ and Python.
inline std::optional<int> head_arg(int32_t head) {
  return head == -1 ? std::nullopt : std::optional<int>(head);
}

inline std::vector<int> int_list(const int32_t* values, size_t count, const char* name) {
  const std::vector<int32_t> list = elements(values, count, name);
  return std::vector<int>(list.begin(), list.end());
}

/// The integer a caller stored in an enum-typed field or argument, read without loading it as the enum: a C caller
/// may pass any int there, and a value outside the enum's range is not a valid value of the C++ enum type.
template <typename E>
int enum_int(const E& value) {
  static_assert(sizeof(E) == sizeof(int), "C enums are int-sized here");
  int out = 0;
  std::memcpy(&out, &value, sizeof out);
  return out;
}

inline attnprox::metrics::ApePolicy policy_of(const apx_ape_policy& given) {
  const int policy = enum_int(given);
  switch (policy) {
    case APX_APE_DEFAULT: return attnprox::metrics::kDefaultApePolicy;
    case APX_APE_LITERAL: return attnprox::metrics::ApePolicy::kLiteral;
    case APX_APE_SHIFT: return attnprox::metrics::ApePolicy::kShift;
    case APX_APE_CLAMP: return attnprox::metrics::ApePolicy::kClamp;
    case APX_APE_SOFTMAX: return attnprox::metrics::ApePolicy::kSoftmax;
  }
  throw CallError{APX_ERROR_INVALID_ARGUMENT, "unknown APE policy " + std::to_string(policy)};
}

inline apx_ape_policy policy_code(attnprox::metrics::ApePolicy policy) {
  switch (policy) {
    case attnprox::metrics::ApePolicy::kLiteral: return APX_APE_LITERAL;
    case attnprox::metrics::ApePolicy::kShift: return APX_APE_SHIFT;
    case attnprox::metrics::ApePolicy::kClamp: return APX_APE_CLAMP;
    case attnprox::metrics::ApePolicy::kSoftmax: return APX_APE_SOFTMAX;
  }
  return APX_APE_DEFAULT;
}

inline void fill_report(apx_ape_report* report, std::optional<double> value, std::optional<double> normalized,
                 int64_t undefined, attnprox::metrics::ApePolicy policy) {
  apx_ape_report full;
  full.struct_size = sizeof full;
  full.has_value = value.has_value() ? 1 : 0;
  full.value = value.value_or(std::numeric_limits<double>::quiet_NaN());
  full.normalized = normalized.value_or(std::numeric_limits<double>::quiet_NaN());
  full.undefined_rows = undefined;
  full.policy = policy_code(policy);
  report_out(full, report, "report");
}

/// The C report of attention statistics (engine or Eigen reference: the same fields).
template <typename Stats>
apx_attention_stats stats_report(const Stats& s) {
  apx_attention_stats out;
  out.struct_size = sizeof out;
  out.mean_entropy = s.mean_entropy;
  out.mean_normalized_entropy = s.mean_normalized_entropy;
  out.max_weight = s.max_weight;
  out.max_query = s.max_query;
  out.max_key = s.max_key;
  out.most_attended = s.most_attended;
  return out;
}

inline apx_encoding* make_encoding(const attnprox::Encoding& e, const std::vector<std::string>& tokens) {
  auto* out = static_cast<apx_encoding*>(std::calloc(1, sizeof(apx_encoding)));
  if (!out) throw std::bad_alloc();
  const size_t n = e.ids.size();
  out->count = n;
  out->ids = static_cast<int64_t*>(std::calloc(n ? n : 1, sizeof(int64_t)));
  out->tokens = static_cast<char**>(std::calloc(n ? n : 1, sizeof(char*)));
  out->offsets = static_cast<size_t*>(std::calloc(n ? 2 * n : 1, sizeof(size_t)));
  out->char_offsets = static_cast<size_t*>(std::calloc(n ? 2 * n : 1, sizeof(size_t)));
  out->special = static_cast<uint8_t*>(std::calloc(n ? n : 1, 1));
  if (!out->ids || !out->tokens || !out->offsets || !out->char_offsets || !out->special) {
    apx_encoding_free(out);
    throw std::bad_alloc();
  }
  for (size_t i = 0; i < n; ++i) {
    out->ids[i] = e.ids[i];
    out->tokens[i] = copy_string(i < tokens.size() ? tokens[i] : std::string());
    if (i < e.offsets.size()) {
      out->offsets[2 * i] = e.offsets[i].first;
      out->offsets[2 * i + 1] = e.offsets[i].second;
      out->char_offsets[2 * i] = e.char_offsets[i].first;
      out->char_offsets[2 * i + 1] = e.char_offsets[i].second;
    }
    out->special[i] = i < e.special.size() ? e.special[i] : 0;
  }
  return out;
}

/// The Eigen view of caller arrays, by dtype.
template <typename F>
void with_queries_keys(const apx_queries_keys* qk, F&& f) {
  need(qk, "qk");
  need(qk->queries, "qk->queries");
  need(qk->keys, "qk->keys");
  auto view = [&](auto tag) {
    using T = decltype(tag);
    attnprox::metrics::QueriesKeys<T> v;
    v.queries = static_cast<const T*>(qk->queries);
    v.keys = static_cast<const T*>(qk->keys);
    v.heads = qk->heads;
    v.kv_heads = qk->kv_heads;
    v.tokens = qk->tokens;
    v.head_dim = qk->head_dim;
    f(v);
  };
  switch (enum_int(qk->dtype)) {
    case APX_DTYPE_FLOAT32: view(float{}); break;
    case APX_DTYPE_FLOAT64: view(double{}); break;
    case APX_DTYPE_FLOAT16: view(Eigen::half{}); break;
    case APX_DTYPE_BFLOAT16: view(Eigen::bfloat16{}); break;
    default: throw CallError{APX_ERROR_INVALID_ARGUMENT, "qk->dtype must be FLOAT32, FLOAT64, FLOAT16 or BFLOAT16"};
  }
}

inline Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> matrix(
    const double* a, int64_t rows, int64_t cols) {
  need(a, "matrix");
  if (rows < 1 || cols < 1) throw CallError{APX_ERROR_INVALID_ARGUMENT, "matrix dimensions must be positive"};
  return {a, rows, cols};
}

/// A params struct's `rope` (-1: the model's choice, 0: before RoPE, 1: after) resolved against the model's.
inline bool rope_choice(int32_t rope, const ModelObject& model, const char* name) {
  if (rope < -1 || rope > 1) {
    throw CallError{APX_ERROR_INVALID_ARGUMENT, std::string(name) + " must be -1 (the model's choice), 0 (queries and "
                                                "keys before RoPE) or 1 (after RoPE), found " + std::to_string(rope)};
  }
  return rope == -1 ? model.rope : rope == 1;
}

/// The options of apx_run_params (NULL: the defaults).
inline attnprox::RunOptions run_options(const apx_run_params* params) {
  const apx_run_params p = params_in(params, apx_run_default_params(), "params");
  attnprox::RunOptions options;
  options.layers = int_list(p.layers, p.layer_count, "params->layers");
  return options;
}

}  // namespace attnprox::capi
