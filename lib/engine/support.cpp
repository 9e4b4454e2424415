// Small things every part of the engine uses: dtypes, logging, versions, libtorch error text.
#include <c10/util/Exception.h>
#if ATTNPROX_WITH_SPDLOG
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#endif
#include <torch/version.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "attnprox/version.hpp"
#include <ATen/ATen.h>

#include "internal.hpp"

namespace attnprox {

DType parse_dtype(const std::string& name) {
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  if (lower == "float32" || lower == "fp32" || lower == "float") return DType::kFloat32;
  if (lower == "float16" || lower == "fp16" || lower == "half") return DType::kFloat16;
  if (lower == "bfloat16" || lower == "bf16") return DType::kBFloat16;
  throw Error(ErrorCode::kInvalidArgument, "dtype \"" + name + "\" is not supported (float32, float16, bfloat16)");
}

std::string to_string(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return "float32";
    case DType::kFloat16: return "float16";
    case DType::kBFloat16: return "bfloat16";
  }
  return "unknown";
}

std::vector<size_t> layer_slots(const Manifest& manifest, const std::vector<int>& layers) {
  std::vector<size_t> slots;
  if (layers.empty()) {
    for (size_t k = 0; k < manifest.layers.size(); ++k) slots.push_back(k);
  } else {
    for (int layer : layers) slots.push_back(manifest.slot(layer));
  }
  return slots;
}

std::vector<int64_t> checked_heads(const Manifest& manifest, const std::vector<int>& heads) {
  std::vector<int64_t> out;
  for (int head : heads) {
    manifest.kv_group(head);  // throws for a head out of range
    out.push_back(head);
  }
  return out;
}

c10::ScalarType scalar_type(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return c10::ScalarType::Float;
    case DType::kFloat16: return c10::ScalarType::Half;
    case DType::kBFloat16: return c10::ScalarType::BFloat16;
  }
  return c10::ScalarType::Float;
}

DType dtype_of(c10::ScalarType type) {
  switch (type) {
    case c10::ScalarType::Float: return DType::kFloat32;
    case c10::ScalarType::Half: return DType::kFloat16;
    case c10::ScalarType::BFloat16: return DType::kBFloat16;
    default:
      throw Error(ErrorCode::kUnsupported, std::string("tensors of dtype ") + c10::toString(type) +
                                               " are not supported (float32, float16, bfloat16)");
  }
}

#if ATTNPROX_WITH_SPDLOG
namespace {
std::shared_ptr<spdlog::logger> make_logger() {
  auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
  auto log = std::make_shared<spdlog::logger>("attnprox", sink);
  log->set_pattern("[attnprox %l] %v");
  const char* level = std::getenv("ATTNPROX_LOG_LEVEL");
  log->set_level(level ? spdlog::level::from_str(level) : spdlog::level::warn);
  return log;
}
void apply_level(const std::string& level) {
  logger().set_level(spdlog::level::from_str(level));
}
}  // namespace

Logger& logger() {
  static std::shared_ptr<spdlog::logger> instance = make_logger();
  return *instance;
}
#else
namespace {
Logger::Level level_of(const std::string& level) {
  static const std::vector<std::string> names = {"trace", "debug", "info", "warn", "error", "critical", "off"};
  auto at = std::find(names.begin(), names.end(), level);
  return at == names.end() ? Logger::kWarn : static_cast<Logger::Level>(at - names.begin());
}
void apply_level(const std::string& level) {
  logger().set_level(level_of(level));
}
}  // namespace

Logger& logger() {
  static Logger* instance = [] {
    auto* log = new Logger();  // never destroyed: usable from other objects' destructors
    const char* level = std::getenv("ATTNPROX_LOG_LEVEL");
    if (level) log->set_level(level_of(level));
    return log;
  }();
  return *instance;
}
#endif

void set_log_level(const std::string& level) {
  static const std::vector<std::string> known = {"trace",   "debug", "info",     "warn",
                                                 "warning", "error", "critical", "off"};
  if (std::find(known.begin(), known.end(), level) == known.end()) {
    throw Error(ErrorCode::kInvalidArgument,
                "log level \"" + level + "\" is not one of trace, debug, info, warn, error, critical, off");
  }
  apply_level(level == "warning" ? "warn" : level);
}

std::string version() {
  return ATTNPROX_VERSION_STRING;
}

std::string torch_version() {
  return TORCH_VERSION;
}

std::string torch_message(const c10::Error& error) {
  std::string text = error.what_without_backtrace();
  // libtorch appends its own source location and, for TorchScript, a serialized call stack; keep what a
  // reader can act on.
  auto cut = text.find("\nException raised from");
  if (cut != std::string::npos) text.resize(cut);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  return text;
}

at::Tensor finite(at::Tensor t, const std::string& what) {
  if (!at::isfinite(t).all().item<bool>()) {
    throw Error(ErrorCode::kRuntime, what + ": the result is not finite (NaN or Inf): the queries and keys are too "
                                            "large for " + std::string(c10::toString(t.scalar_type())) +
                                            " arithmetic");
  }
  return t;
}

}  // namespace attnprox
