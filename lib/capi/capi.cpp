// The C ABI (include/attnprox/attnprox.h): a thin translation between opaque handles and the C++ objects, and
// between exceptions and status codes. Nothing here computes; everything is forwarded to the C++ API.
#include <ATen/ATen.h>

#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <mutex>
#include <new>
#include <string>
#include <unordered_set>

#include "attnprox/attnprox.h"
#include "attnprox/engine.hpp"
#include "attnprox/metrics.hpp"
#include "attnprox/tokenizer.hpp"
#include "attnprox/version.hpp"

struct apx_model {
  attnprox::Model model;
};
struct apx_result {
  attnprox::Result result;
};
struct apx_tokenizer {
  attnprox::Tokenizer tokenizer;
};

namespace {

thread_local std::string last_error;

/// A failure of the C layer itself (null pointer, small buffer, dead handle).
struct CallError {
  apx_status status;
  std::string message;
};

/// The live handles of one kind: freeing twice, or using a freed handle, is detected (while the address is not
/// reused by a new handle of the same kind).
template <typename T>
class Registry {
 public:
  T* add(T* handle) {
    std::lock_guard<std::mutex> lock(mutex_);
    live_.insert(handle);
    return handle;
  }
  bool remove(T* handle) {
    std::lock_guard<std::mutex> lock(mutex_);
    return live_.erase(handle) > 0;
  }
  bool contains(const T* handle) {
    std::lock_guard<std::mutex> lock(mutex_);
    return live_.count(const_cast<T*>(handle)) > 0;
  }

 private:
  std::mutex mutex_;
  std::unordered_set<T*> live_;
};

Registry<apx_model>& models() {
  static Registry<apx_model> r;
  return r;
}
Registry<apx_result>& results() {
  static Registry<apx_result> r;
  return r;
}
Registry<apx_tokenizer>& tokenizers() {
  static Registry<apx_tokenizer> r;
  return r;
}

apx_status status_of(attnprox::ErrorCode code) {
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

/// Runs `body`, turning every exception into a status and the thread's last-error message.
template <typename Body>
apx_status call(Body&& body) noexcept {
  last_error.clear();
  try {
    body();
    return APX_OK;
  } catch (const CallError& e) {
    last_error = e.message;
    return e.status;
  } catch (const attnprox::Error& e) {
    last_error = e.what();
    return status_of(e.code());
  } catch (const std::bad_alloc&) {
    last_error = "out of memory";
    return APX_ERROR_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    last_error = std::string("internal error: ") + e.what();
    return APX_ERROR_INTERNAL;
  } catch (...) {
    last_error = "internal error: an unknown exception";
    return APX_ERROR_INTERNAL;
  }
}

void need(const void* pointer, const char* name) {
  if (!pointer) throw CallError{APX_ERROR_NULL_POINTER, std::string(name) + " is NULL"};
}

template <typename T>
const T& live(Registry<T>& registry, const T* handle, const char* name) {
  need(handle, name);
  if (!registry.contains(handle)) {
    throw CallError{APX_ERROR_INVALID_HANDLE, std::string(name) + " is not a live handle (freed already?)"};
  }
  return *handle;
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

std::string text_of(const char* text, size_t length) {
  return length == SIZE_MAX ? std::string(text) : std::string(text, length);
}

char* copy_string(const std::string& s) {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (!out) throw std::bad_alloc();
  std::memcpy(out, s.c_str(), s.size() + 1);
  return out;
}

std::optional<int> head_arg(int32_t head) {
  return head < 0 ? std::nullopt : std::optional<int>(head);
}

std::vector<int> int_list(const int32_t* values, size_t count, const char* name) {
  if (count) need(values, name);
  return std::vector<int>(values, values + count);
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

attnprox::metrics::ApePolicy policy_of(const apx_ape_policy& given) {
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

apx_ape_policy policy_code(attnprox::metrics::ApePolicy policy) {
  switch (policy) {
    case attnprox::metrics::ApePolicy::kLiteral: return APX_APE_LITERAL;
    case attnprox::metrics::ApePolicy::kShift: return APX_APE_SHIFT;
    case attnprox::metrics::ApePolicy::kClamp: return APX_APE_CLAMP;
    case attnprox::metrics::ApePolicy::kSoftmax: return APX_APE_SOFTMAX;
  }
  return APX_APE_DEFAULT;
}

/// Whether the caller's struct `s` (a pointer) holds `field`: structs grow at their end, and an older caller
/// passes its smaller struct_size; fields added after the first published size are read only when it has them.
#define APX_COVERS(s, Type, field) ((s)->struct_size >= offsetof(Type, field) + sizeof((s)->field))

/// The first published sizes of the structs that grew since: what the library accepts at least.
constexpr size_t kTextParamsV1 = offsetof(apx_text_params, add_special_tokens) + sizeof(int32_t);
constexpr size_t kLoadParamsV1 = offsetof(apx_load_params, threads) + sizeof(int32_t);

void check_struct(size_t struct_size, size_t minimum, const char* name) {
  if (struct_size < minimum) {
    throw CallError{APX_ERROR_INVALID_ARGUMENT, std::string(name) + ".struct_size is " + std::to_string(struct_size) +
                                                    ", at least " + std::to_string(minimum) + " expected"};
  }
}

void fill_report(apx_ape_report* report, std::optional<double> value, std::optional<double> normalized,
                 int64_t undefined, attnprox::metrics::ApePolicy policy) {
  need(report, "report");
  check_struct(report->struct_size, sizeof(apx_ape_report), "report");
  report->has_value = value.has_value() ? 1 : 0;
  report->value = value.value_or(std::numeric_limits<double>::quiet_NaN());
  report->normalized = normalized.value_or(std::numeric_limits<double>::quiet_NaN());
  report->undefined_rows = undefined;
  report->policy = policy_code(policy);
}

apx_encoding* make_encoding(const attnprox::Encoding& e, const std::vector<std::string>& tokens) {
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

Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> matrix(const double* a,
                                                                                                int64_t rows,
                                                                                                int64_t cols) {
  need(a, "matrix");
  if (rows < 1 || cols < 1) throw CallError{APX_ERROR_INVALID_ARGUMENT, "matrix dimensions must be positive"};
  return {a, rows, cols};
}

/// The options of apx_run_params (NULL: the defaults).
attnprox::RunOptions run_options(const apx_run_params* params) {
  attnprox::RunOptions options;
  if (params) {
    check_struct(params->struct_size, sizeof(apx_run_params), "params");
    options.layers = int_list(params->layers, params->layer_count, "params->layers");
  }
  return options;
}

}  // namespace

extern "C" {

// ---- library ----

const char* apx_last_error(void) {
  return last_error.c_str();
}
const char* apx_version(void) {
  return ATTNPROX_VERSION_STRING;
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

void apx_string_free(char* text) {
  std::free(text);
}

// ---- models ----

apx_load_params apx_load_default_params(void) {
  apx_load_params p;
  p.struct_size = sizeof(apx_load_params);
  p.device = nullptr;
  p.dtype = APX_DTYPE_DEFAULT;
  p.threads = 0;
  p.layers = nullptr;
  p.layer_count = 0;
  return p;
}

apx_status apx_model_load(const char* path, const apx_load_params* params, apx_model** model) {
  return call([&] {
    need(path, "path");
    need(model, "model");
    *model = nullptr;
    attnprox::LoadOptions options;
    if (params) {
      check_struct(params->struct_size, kLoadParamsV1, "params");
      if (params->device) options.device = params->device;
      switch (enum_int(params->dtype)) {
        case APX_DTYPE_DEFAULT: break;
        case APX_DTYPE_FLOAT32: options.dtype = attnprox::DType::kFloat32; break;
        case APX_DTYPE_FLOAT16: options.dtype = attnprox::DType::kFloat16; break;
        case APX_DTYPE_BFLOAT16: options.dtype = attnprox::DType::kBFloat16; break;
        default:
          throw CallError{APX_ERROR_INVALID_ARGUMENT,
                          "params->dtype must be DEFAULT, FLOAT32, FLOAT16 or "
                          "BFLOAT16"};
      }
      options.threads = params->threads;
      if (APX_COVERS(params, apx_load_params, layer_count)) {
        options.layers = int_list(params->layers, params->layer_count, "params->layers");
      }
    }
    *model = models().add(new apx_model{attnprox::Model::load(path, options)});
  });
}

void apx_model_free(apx_model* model) {
  if (model && models().remove(model)) delete model;
}

apx_status apx_model_get_info(const apx_model* model, apx_model_info* info) {
  return call([&] {
    const attnprox::Model& m = live(models(), model, "model").model;
    need(info, "info");
    check_struct(info->struct_size, sizeof(apx_model_info), "info");
    const attnprox::Manifest& manifest = m.manifest();
    info->num_layers = manifest.num_layers;
    info->num_captured_layers = static_cast<int32_t>(manifest.layers.size());
    info->num_heads = manifest.num_heads;
    info->num_kv_heads = manifest.num_kv_heads;
    info->head_dim = manifest.head_dim;
    info->causal = manifest.causal ? 1 : 0;
    info->max_positions = manifest.max_positions;
    info->vocab_size = manifest.vocab_size;
    switch (m.dtype()) {
      case attnprox::DType::kFloat32: info->dtype = APX_DTYPE_FLOAT32; break;
      case attnprox::DType::kFloat16: info->dtype = APX_DTYPE_FLOAT16; break;
      case attnprox::DType::kBFloat16: info->dtype = APX_DTYPE_BFLOAT16; break;
    }
    info->has_tokenizer = m.tokenizer() ? 1 : 0;
  });
}

apx_status apx_model_captured_layers(const apx_model* model, int32_t* out, size_t capacity, size_t* needed) {
  return call([&] {
    const std::vector<int> layers = live(models(), model, "model").model.manifest().captured_layers();
    deliver(std::vector<int32_t>(layers.begin(), layers.end()), out, capacity, needed);
  });
}

apx_status apx_model_layers(const apx_model* model, int32_t* out, size_t capacity, size_t* needed) {
  return call([&] {
    const std::vector<int> layers = live(models(), model, "model").model.layers();
    deliver(std::vector<int32_t>(layers.begin(), layers.end()), out, capacity, needed);
  });
}

apx_status apx_model_manifest_json(const apx_model* model, char** json) {
  return call([&] {
    const attnprox::Model& m = live(models(), model, "model").model;
    need(json, "json");
    *json = copy_string(m.manifest().raw_json);
  });
}

apx_status apx_model_device(const apx_model* model, char** device) {
  return call([&] {
    const attnprox::Model& m = live(models(), model, "model").model;
    need(device, "device");
    *device = copy_string(m.device());
  });
}

apx_status apx_model_tokenizer(const apx_model* model, apx_tokenizer** tokenizer) {
  return call([&] {
    const attnprox::Model& m = live(models(), model, "model").model;
    need(tokenizer, "tokenizer");
    *tokenizer = nullptr;
    if (!m.tokenizer()) {
      throw CallError{APX_ERROR_UNSUPPORTED, "model file '" + m.path() + "' has no tokenizer"};
    }
    *tokenizer = tokenizers().add(new apx_tokenizer{*m.tokenizer()});
  });
}

// ---- running ----

apx_run_params apx_run_default_params(void) {
  apx_run_params p;
  p.struct_size = sizeof(apx_run_params);
  p.layers = nullptr;
  p.layer_count = 0;
  return p;
}

apx_status apx_model_run_ids(const apx_model* model, const int64_t* ids, size_t count, apx_result** result) {
  return apx_model_run_ids_with(model, ids, count, nullptr, result);
}

apx_status apx_model_run_ids_with(const apx_model* model, const int64_t* ids, size_t count,
                                  const apx_run_params* params, apx_result** result) {
  return call([&] {
    const attnprox::Model& m = live(models(), model, "model").model;
    need(result, "result");
    *result = nullptr;
    if (count) need(ids, "ids");
    const attnprox::RunOptions options = run_options(params);
    *result = results().add(new apx_result{m.run(std::vector<int64_t>(ids, ids + count), options)});
  });
}

apx_status apx_model_run_batch(const apx_model* model, const int64_t* const* ids, const size_t* counts, size_t batch,
                               apx_result** results_out) {
  return apx_model_run_batch_with(model, ids, counts, batch, nullptr, results_out);
}

apx_status apx_model_run_batch_with(const apx_model* model, const int64_t* const* ids, const size_t* counts,
                                    size_t batch, const apx_run_params* params, apx_result** results_out) {
  return call([&] {
    const attnprox::Model& m = live(models(), model, "model").model;
    const attnprox::RunOptions options = run_options(params);
    need(results_out, "results");
    if (batch) {
      need(ids, "ids");
      need(counts, "counts");
    }
    std::vector<std::vector<int64_t>> sequences;
    for (size_t b = 0; b < batch; ++b) {
      if (counts[b]) need(ids[b], "ids[b]");
      sequences.emplace_back(ids[b], ids[b] + counts[b]);
    }
    std::vector<attnprox::Result> run = m.run_batch(sequences, options);
    for (size_t b = 0; b < batch; ++b) results_out[b] = results().add(new apx_result{std::move(run[b])});
  });
}

apx_text_params apx_text_default_params(void) {
  apx_text_params p;
  p.struct_size = sizeof(apx_text_params);
  p.add_special_tokens = 1;
  p.max_length = 0;
  p.truncation = 0;
  p.layers = nullptr;
  p.layer_count = 0;
  return p;
}

namespace {
attnprox::TextOptions text_options(const apx_text_params* params) {
  attnprox::TextOptions options;
  if (!params) return options;
  check_struct(params->struct_size, kTextParamsV1, "params");
  options.add_special_tokens = params->add_special_tokens != 0;
  if (APX_COVERS(params, apx_text_params, truncation)) options.truncation = params->truncation != 0;
  if (APX_COVERS(params, apx_text_params, max_length) && params->max_length != 0) {
    if (params->max_length < 0) {
      throw CallError{APX_ERROR_INVALID_ARGUMENT, "params->max_length must be 0 (the model's positions) or positive, "
                                                  "found " + std::to_string(params->max_length)};
    }
    if (options.truncation) options.max_length = params->max_length;
  }
  if (APX_COVERS(params, apx_text_params, layer_count)) {
    options.layers = int_list(params->layers, params->layer_count, "params->layers");
  }
  return options;
}
}  // namespace

apx_status apx_model_run_text(const apx_model* model, const char* text, size_t length, const apx_text_params* params,
                              apx_result** result) {
  return call([&] {
    const attnprox::Model& m = live(models(), model, "model").model;
    need(text, "text");
    need(result, "result");
    *result = nullptr;
    const attnprox::TextOptions options = text_options(params);
    *result = results().add(new apx_result{m.run_text(text_of(text, length), options)});
  });
}

apx_status apx_model_run_text_pair(const apx_model* model, const char* text, size_t length, const char* pair,
                                   size_t pair_length, const apx_text_params* params, apx_result** result) {
  return call([&] {
    const attnprox::Model& m = live(models(), model, "model").model;
    need(text, "text");
    need(pair, "pair");
    need(result, "result");
    *result = nullptr;
    const attnprox::TextOptions options = text_options(params);
    *result = results().add(
        new apx_result{m.run_text_pair(text_of(text, length), text_of(pair, pair_length), options)});
  });
}

void apx_result_free(apx_result* result) {
  if (result && results().remove(result)) delete result;
}

// ---- what a result holds ----

apx_status apx_result_num_tokens(const apx_result* result, size_t* count) {
  return call([&] {
    const attnprox::Result& r = live(results(), result, "result").result;
    need(count, "count");
    *count = static_cast<size_t>(r.num_tokens());
  });
}

apx_status apx_result_layers(const apx_result* result, int32_t* out, size_t capacity, size_t* needed) {
  return call([&] {
    const std::vector<int> layers = live(results(), result, "result").result.layers();
    deliver(std::vector<int32_t>(layers.begin(), layers.end()), out, capacity, needed);
  });
}

apx_status apx_result_ids(const apx_result* result, int64_t* out, size_t capacity, size_t* needed) {
  return call([&] { deliver(live(results(), result, "result").result.ids(), out, capacity, needed); });
}

apx_status apx_result_queries(const apx_result* result, int32_t layer, float* out, size_t capacity, size_t* needed) {
  return call(
      [&] { deliver(live(results(), result, "result").result.queries(layer), at::kFloat, out, capacity, needed); });
}

apx_status apx_result_keys(const apx_result* result, int32_t layer, float* out, size_t capacity, size_t* needed) {
  return call(
      [&] { deliver(live(results(), result, "result").result.keys(layer), at::kFloat, out, capacity, needed); });
}

apx_status apx_result_attention(const apx_result* result, int32_t layer, int32_t head, double temperature, float* out,
                                size_t capacity, size_t* needed) {
  return call([&] {
    const attnprox::Result& r = live(results(), result, "result").result;
    const attnprox::AttentionOptions options{temperature};
    const at::Tensor p = head < 0 ? r.attention(layer, options) : r.attention(layer, head, options);
    deliver(p, at::kFloat, out, capacity, needed);
  });
}

apx_status apx_result_average_attention(const apx_result* result, const int32_t* layers, size_t layer_count,
                                        const int32_t* heads, size_t head_count, double temperature, float* out,
                                        size_t capacity, size_t* needed) {
  return call([&] {
    const attnprox::Result& r = live(results(), result, "result").result;
    const at::Tensor p = r.average_attention(int_list(layers, layer_count, "layers"),
                                             int_list(heads, head_count, "heads"), {temperature});
    deliver(p, at::kFloat, out, capacity, needed);
  });
}

// ---- Attention Proximity ----

apx_status apx_result_proximity(const apx_result* result, int32_t layer, float* out, size_t capacity, size_t* needed) {
  return call(
      [&] { deliver(live(results(), result, "result").result.proximity(layer), at::kFloat, out, capacity, needed); });
}

apx_status apx_result_average_proximity(const apx_result* result, const int32_t* layers, size_t layer_count,
                                        const int32_t* heads, size_t head_count, int32_t symmetric, float* out,
                                        size_t capacity, size_t* needed) {
  return call([&] {
    const attnprox::Result& r = live(results(), result, "result").result;
    const at::Tensor a = r.average_proximity(int_list(layers, layer_count, "layers"),
                                             int_list(heads, head_count, "heads"), symmetric != 0);
    deliver(a, at::kFloat, out, capacity, needed);
  });
}

apx_status apx_result_ap(const apx_result* result, int32_t layer, double* ap) {
  return call([&] {
    const attnprox::Result& r = live(results(), result, "result").result;
    need(ap, "ap");
    *ap = r.ap(layer);
  });
}

apx_status apx_result_ap_tokens(const apx_result* result, int32_t layer, double* out, size_t capacity, size_t* needed) {
  return call(
      [&] { deliver(live(results(), result, "result").result.ap_tokens(layer), at::kDouble, out, capacity, needed); });
}

apx_status apx_result_subset_proximity(const apx_result* result, int32_t layer, const int64_t* subset, size_t count,
                                       double* out, size_t capacity, size_t* needed) {
  return call([&] {
    const attnprox::Result& r = live(results(), result, "result").result;
    if (count) need(subset, "subset");
    deliver(r.subset_proximity(std::vector<int64_t>(subset, subset + count), layer), at::kDouble, out, capacity,
            needed);
  });
}

apx_status apx_result_ape(const apx_result* result, int32_t layer, apx_ape_policy policy, apx_ape_report* report,
                          double* tokens, size_t capacity, size_t* needed) {
  return call([&] {
    const attnprox::Result& r = live(results(), result, "result").result;
    need(report, "report");
    const attnprox::ApeResult a = r.ape(layer, policy_of(policy));
    deliver(a.tokens, at::kDouble, tokens, capacity, needed);
    fill_report(report, a.value, a.normalized, a.undefined_rows, a.policy);
  });
}

// ---- attention statistics ----

apx_status apx_result_attention_entropy(const apx_result* result, int32_t layer, int32_t normalized, double temperature,
                                        double* out, size_t capacity, size_t* needed) {
  return call([&] {
    const attnprox::Result& r = live(results(), result, "result").result;
    deliver(r.attention_entropy(layer, normalized != 0, {temperature}), at::kDouble, out, capacity, needed);
  });
}

apx_status apx_result_attention_stats(const apx_result* result, int32_t layer, int32_t head, double temperature,
                                      apx_attention_stats* stats) {
  return call([&] {
    const attnprox::Result& r = live(results(), result, "result").result;
    need(stats, "stats");
    check_struct(stats->struct_size, sizeof(apx_attention_stats), "stats");
    const attnprox::AttentionStatistics s = r.attention_stats(layer, head_arg(head), {temperature});
    stats->mean_entropy = s.mean_entropy;
    stats->mean_normalized_entropy = s.mean_normalized_entropy;
    stats->max_weight = s.max_weight;
    stats->max_query = s.max_query;
    stats->max_key = s.max_key;
    stats->most_attended = s.most_attended;
  });
}

apx_status apx_result_top_arcs(const apx_result* result, int32_t layer, int32_t head, int64_t query, int64_t k,
                               double temperature, int64_t* keys, double* weights, size_t capacity, size_t* needed) {
  return call([&] {
    const attnprox::Result& r = live(results(), result, "result").result;
    const std::vector<attnprox::metrics::Arc> arcs = r.top_arcs(query, k, layer, head_arg(head), {temperature});
    std::vector<int64_t> key_list;
    std::vector<double> weight_list;
    for (const auto& arc : arcs) {
      key_list.push_back(arc.key);
      weight_list.push_back(arc.weight);
    }
    if (keys || weights) {
      need(keys, "keys");
      need(weights, "weights");
    }
    deliver(key_list, keys, capacity, needed);
    deliver(weight_list, weights, capacity, needed);
  });
}

apx_status apx_result_attention_maxima(const apx_result* result, int32_t layer, int32_t head, double temperature,
                                       double* max_weights, int64_t* argmax_keys, size_t capacity, size_t* needed) {
  return call([&] {
    const attnprox::Result& r = live(results(), result, "result").result;
    if (max_weights || argmax_keys) {
      need(max_weights, "max_weights");
      need(argmax_keys, "argmax_keys");
    }
    const attnprox::AttentionStatistics s = r.attention_stats(layer, head_arg(head), {temperature});
    deliver(s.max_weights, at::kDouble, max_weights, capacity, needed);
    deliver(s.argmax_keys, at::kLong, argmax_keys, capacity, needed);
  });
}

apx_status apx_result_linking_heads(const apx_result* result, int64_t a, int64_t b, double temperature,
                                    apx_head_link* out, size_t capacity, size_t* needed) {
  return call([&] {
    const attnprox::Result& r = live(results(), result, "result").result;
    std::vector<apx_head_link> links;
    for (const auto& link : r.linking_heads(a, b, {temperature})) links.push_back({link.layer, link.head, link.score});
    deliver(links, out, capacity, needed);
  });
}

// ---- tokenizers ----

apx_status apx_tokenizer_from_file(const char* path, apx_tokenizer** tokenizer) {
  return call([&] {
    need(path, "path");
    need(tokenizer, "tokenizer");
    *tokenizer = nullptr;
    *tokenizer = tokenizers().add(new apx_tokenizer{attnprox::Tokenizer::from_file(path)});
  });
}

apx_status apx_tokenizer_from_json(const char* json, size_t length, apx_tokenizer** tokenizer) {
  return call([&] {
    need(json, "json");
    need(tokenizer, "tokenizer");
    *tokenizer = nullptr;
    *tokenizer = tokenizers().add(new apx_tokenizer{attnprox::Tokenizer::from_json(text_of(json, length))});
  });
}

apx_status apx_tokenizer_byte_level_bpe(const char* vocab_json, const char* merges_txt, apx_tokenizer** tokenizer) {
  return call([&] {
    need(vocab_json, "vocab_json");
    need(merges_txt, "merges_txt");
    need(tokenizer, "tokenizer");
    *tokenizer = nullptr;
    *tokenizer = tokenizers().add(new apx_tokenizer{attnprox::Tokenizer::byte_level_bpe(vocab_json, merges_txt)});
  });
}

apx_status apx_tokenizer_wordpiece(const char* vocab_txt, int32_t lowercase, apx_tokenizer** tokenizer) {
  return call([&] {
    need(vocab_txt, "vocab_txt");
    need(tokenizer, "tokenizer");
    *tokenizer = nullptr;
    *tokenizer = tokenizers().add(new apx_tokenizer{attnprox::Tokenizer::wordpiece(vocab_txt, lowercase != 0)});
  });
}

void apx_tokenizer_free(apx_tokenizer* tokenizer) {
  if (tokenizer && tokenizers().remove(tokenizer)) delete tokenizer;
}

void apx_encoding_free(apx_encoding* encoding) {
  if (!encoding) return;
  if (encoding->tokens) {
    for (size_t i = 0; i < encoding->count; ++i) std::free(encoding->tokens[i]);
  }
  std::free(encoding->ids);
  std::free(encoding->tokens);
  std::free(encoding->offsets);
  std::free(encoding->char_offsets);
  std::free(encoding->special);
  std::free(encoding);
}

apx_status apx_tokenizer_encode(const apx_tokenizer* tokenizer, const char* text, size_t length,
                                int32_t add_special_tokens, apx_encoding** encoding) {
  return call([&] {
    const attnprox::Tokenizer& t = live(tokenizers(), tokenizer, "tokenizer").tokenizer;
    need(text, "text");
    need(encoding, "encoding");
    *encoding = nullptr;
    const attnprox::Encoding e = t.encode(text_of(text, length), add_special_tokens != 0);
    *encoding = make_encoding(e, e.tokens);
  });
}

apx_status apx_tokenizer_decode(const apx_tokenizer* tokenizer, const int64_t* ids, size_t count,
                                int32_t skip_special_tokens, char** text) {
  return call([&] {
    const attnprox::Tokenizer& t = live(tokenizers(), tokenizer, "tokenizer").tokenizer;
    if (count) need(ids, "ids");
    need(text, "text");
    *text = copy_string(t.decode(std::vector<int64_t>(ids, ids + count), skip_special_tokens != 0));
  });
}

apx_status apx_tokenizer_vocab_size(const apx_tokenizer* tokenizer, size_t* size) {
  return call([&] {
    const attnprox::Tokenizer& t = live(tokenizers(), tokenizer, "tokenizer").tokenizer;
    need(size, "size");
    *size = t.vocab_size();
  });
}

apx_status apx_tokenizer_token_to_id(const apx_tokenizer* tokenizer, const char* token, int64_t* id) {
  return call([&] {
    const attnprox::Tokenizer& t = live(tokenizers(), tokenizer, "tokenizer").tokenizer;
    need(token, "token");
    need(id, "id");
    *id = t.token_to_id(token).value_or(-1);
  });
}

apx_status apx_result_encoding(const apx_result* result, apx_encoding** encoding) {
  return call([&] {
    const attnprox::Result& r = live(results(), result, "result").result;
    need(encoding, "encoding");
    *encoding = nullptr;
    attnprox::Encoding e;
    e.ids = r.ids();
    e.offsets = r.offsets();
    e.char_offsets = r.char_offsets();
    *encoding = make_encoding(e, r.tokens());
  });
}

// ---- measurements on arrays ----

apx_status apx_metrics_proximity(const apx_queries_keys* qk, double* out, size_t capacity, size_t* needed) {
  return call([&] {
    with_queries_keys(qk, [&](const auto& v) {
      const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> a = attnprox::metrics::proximity(v);
      deliver(a.data(), static_cast<size_t>(a.size()), out, capacity, needed);
    });
  });
}

apx_status apx_metrics_ap(const apx_queries_keys* qk, double* ap) {
  return call([&] {
    need(ap, "ap");
    with_queries_keys(qk, [&](const auto& v) { *ap = attnprox::metrics::ap(v); });
  });
}

apx_status apx_metrics_ap_tokens(const apx_queries_keys* qk, double* out, size_t capacity, size_t* needed) {
  return call([&] {
    with_queries_keys(qk, [&](const auto& v) {
      const Eigen::VectorXd values = attnprox::metrics::ap_tokens(v);
      deliver(values.data(), static_cast<size_t>(values.size()), out, capacity, needed);
    });
  });
}

apx_status apx_metrics_subset_proximity(const apx_queries_keys* qk, const int64_t* subset, size_t count, double* out,
                                        size_t capacity, size_t* needed) {
  return call([&] {
    if (count) need(subset, "subset");
    const std::vector<int64_t> s(subset, subset + count);
    with_queries_keys(qk, [&](const auto& v) {
      const Eigen::VectorXd values = attnprox::metrics::subset_proximity(v, s);
      deliver(values.data(), static_cast<size_t>(values.size()), out, capacity, needed);
    });
  });
}

apx_status apx_metrics_ape(const apx_queries_keys* qk, apx_ape_policy policy, apx_ape_report* report, double* tokens,
                           size_t capacity, size_t* needed) {
  return call([&] {
    need(report, "report");
    const auto p = policy_of(policy);
    with_queries_keys(qk, [&](const auto& v) {
      const attnprox::metrics::Ape a = attnprox::metrics::ape(v, p);
      deliver(a.tokens.data(), static_cast<size_t>(a.tokens.size()), tokens, capacity, needed);
      fill_report(report, a.value, a.normalized, a.undefined_rows, p);
    });
  });
}

apx_status apx_metrics_ap_tokens_of(const double* a, int64_t n, double* out, size_t capacity, size_t* needed) {
  return call([&] {
    const Eigen::MatrixXd m = matrix(a, n, n);
    const Eigen::VectorXd values = attnprox::metrics::ap_tokens(m);
    deliver(values.data(), static_cast<size_t>(values.size()), out, capacity, needed);
  });
}

apx_status apx_metrics_ape_of(const double* a, int64_t n, apx_ape_policy policy, apx_ape_report* report, double* tokens,
                              size_t capacity, size_t* needed) {
  return call([&] {
    need(report, "report");
    const auto p = policy_of(policy);
    const attnprox::metrics::Ape result = attnprox::metrics::ape(Eigen::MatrixXd(matrix(a, n, n)), p);
    deliver(result.tokens.data(), static_cast<size_t>(result.tokens.size()), tokens, capacity, needed);
    fill_report(report, result.value, result.normalized, result.undefined_rows, p);
  });
}

apx_status apx_metrics_attention_stats(const double* weights, int64_t n, int64_t keys, int32_t causal,
                                       int64_t sliding_window, apx_attention_stats* stats, double* entropy,
                                       double* normalized_entropy, size_t capacity) {
  return call([&] {
    need(stats, "stats");
    check_struct(stats->struct_size, sizeof(apx_attention_stats), "stats");
    attnprox::metrics::Visibility visibility;
    visibility.causal = causal != 0;
    if (sliding_window > 0) visibility.sliding_window = sliding_window;
    const attnprox::metrics::AttentionStats s =
        attnprox::metrics::attention_stats(Eigen::MatrixXd(matrix(weights, n, keys)), visibility);
    deliver(s.entropy.data(), static_cast<size_t>(s.entropy.size()), entropy, capacity, nullptr);
    deliver(s.normalized_entropy.data(), static_cast<size_t>(s.normalized_entropy.size()), normalized_entropy, capacity,
            nullptr);
    stats->mean_entropy = s.mean_entropy;
    stats->mean_normalized_entropy = s.mean_normalized_entropy;
    stats->max_weight = s.max_weight;
    stats->max_query = s.max_query;
    stats->max_key = s.max_key;
    stats->most_attended = s.most_attended;
  });
}

apx_status apx_metrics_attention_maxima(const double* weights, int64_t n, int64_t keys, int32_t causal,
                                        int64_t sliding_window, double* max_weights, int64_t* argmax_keys,
                                        size_t capacity, size_t* needed) {
  return call([&] {
    if (max_weights || argmax_keys) {
      need(max_weights, "max_weights");
      need(argmax_keys, "argmax_keys");
    }
    attnprox::metrics::Visibility visibility;
    visibility.causal = causal != 0;
    if (sliding_window > 0) visibility.sliding_window = sliding_window;
    const attnprox::metrics::AttentionStats s =
        attnprox::metrics::attention_stats(Eigen::MatrixXd(matrix(weights, n, keys)), visibility);
    deliver(s.max_weights.data(), static_cast<size_t>(s.max_weights.size()), max_weights, capacity, needed);
    deliver(s.argmax_keys.data(), static_cast<size_t>(s.argmax_keys.size()), argmax_keys, capacity, needed);
  });
}

}  // extern "C"
