// Internal to the engine: shared pieces of the Model and Result implementations.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/ScalarType.h>
#include <c10/util/Exception.h>
#include <spdlog/logger.h>

#include <memory>
#include <string>
#include <vector>

#include "attnprox/engine.hpp"

namespace attnprox {

struct Result::Data {
  std::shared_ptr<const Manifest> manifest;
  std::shared_ptr<const Tokenizer> tokenizer;  // may be null
  std::vector<int64_t> ids;
  std::string text;
  Encoding encoding;  // tokens and offsets when a text was run
  std::vector<at::Tensor> queries;  // per captured layer, [H, N, d]
  std::vector<at::Tensor> keys;     // per captured layer, [Hkv, N, d]
};

/// Rows first_row.. of the attention weights: `queries` [H, rows, d] are the queries of tokens first_row..,
/// masks placed as for those positions (attention_weights is first_row = 0).
at::Tensor attention_rows(const at::Tensor& queries, const at::Tensor& keys, const AttentionSpec& spec,
                          int64_t first_row);

/// Qg: the queries summed over the heads that read each key head, [Hkv, N, d], in `dtype`.
at::Tensor grouped_queries(const at::Tensor& queries, int64_t kv_heads, at::ScalarType dtype);

c10::ScalarType scalar_type(DType dtype);
DType dtype_of(c10::ScalarType type);

/// The library's logger ("attnprox"); its level comes from ATTNPROX_LOG_LEVEL (default "warn").
spdlog::logger& logger();

/// The first line of a libtorch error, without its C++ backtrace.
std::string torch_message(const c10::Error& error);

/// Runs `body`, turning libtorch errors into Error(kRuntime) prefixed with `what`.
template <typename Body>
auto guarded(const std::string& what, Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const c10::Error& e) {
    throw Error(ErrorCode::kRuntime, what + ": " + torch_message(e));
  }
}

}  // namespace attnprox
