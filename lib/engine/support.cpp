// Small things every part of the engine uses: dtypes, logging, versions, libtorch error text.
#include <c10/util/Exception.h>
#if ATTNPROX_WITH_SPDLOG
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#endif
#include <torch/version.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>

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
    // A list of layers is a set: a layer named twice (3 and -1 may name one layer) counts once.
    std::sort(slots.begin(), slots.end());
    slots.erase(std::unique(slots.begin(), slots.end()), slots.end());
  }
  return slots;
}

std::vector<int64_t> checked_heads(const Manifest& manifest, const std::vector<int>& heads) {
  std::vector<int64_t> out;
  for (int head : heads) {
    manifest.kv_group(head);  // throws for a head out of range
    out.push_back(head);
  }
  // A list of heads is a set: a head named twice counts once.
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
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
/// The logger's one sink: stderr, or the host program's callback (set_log_callback), switched under its lock.
class SwitchSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  void set_callback(LogCallback callback) {
    std::lock_guard<std::mutex> lock(mutex_);
    callback_ = std::move(callback);
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    if (!callback_) {
      stderr_.log(msg);
      return;
    }
    LogLevel level = LogLevel::kError;
    switch (msg.level) {
      case spdlog::level::trace: level = LogLevel::kTrace; break;
      case spdlog::level::debug: level = LogLevel::kDebug; break;
      case spdlog::level::info: level = LogLevel::kInfo; break;
      case spdlog::level::warn: level = LogLevel::kWarn; break;
      default: break;
    }
    callback_(level, std::string(msg.payload.data(), msg.payload.size()));
  }
  void flush_() override { stderr_.flush(); }
  void set_formatter_(std::unique_ptr<spdlog::formatter> formatter) override {
    stderr_.set_formatter(formatter->clone());  // stderr lines keep the logger's pattern
    base_sink::set_formatter_(std::move(formatter));
  }

 private:
  spdlog::sinks::stderr_color_sink_st stderr_;
  LogCallback callback_;
};

const std::shared_ptr<SwitchSink>& switch_sink() {
  static const auto sink = std::make_shared<SwitchSink>();
  return sink;
}

std::shared_ptr<spdlog::logger> make_logger() {
  auto log = std::make_shared<spdlog::logger>("attnprox", switch_sink());
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

void set_log_callback(LogCallback callback) {
  logger();  // the sink's pattern is set once the logger exists
  switch_sink()->set_callback(std::move(callback));
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

void set_log_callback(LogCallback callback) {
  logger().set_callback(std::move(callback));
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
  return cause_first(text);
}

std::string cause_first(const std::string& message) {
  // A failure inside a TorchScript forward reads "The following operation failed in the TorchScript
  // interpreter.\nTraceback of TorchScript ...\n<the model's source>\nRuntimeError: <the cause>": the cause comes
  // first; the whole traceback goes to the log (debug level).
  static const std::string kMarker = "The following operation failed in the TorchScript interpreter";
  static const std::string kTraceback = "Traceback of TorchScript";
  if (message.find(kMarker) == std::string::npos && message.find(kTraceback) == std::string::npos) return message;
  std::string text = message;
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  const size_t line_start = text.rfind('\n');
  std::string cause = line_start == std::string::npos ? text : text.substr(line_start + 1);
  for (const char* prefix : {"RuntimeError: ", "Exception: ", "builtins.RuntimeError: "}) {
    if (cause.rfind(prefix, 0) == 0) cause.erase(0, std::strlen(prefix));
  }
  const size_t begin = cause.find_first_not_of(" \t");
  cause.erase(0, begin == std::string::npos ? cause.size() : begin);
  if (cause.empty()) return message;
  logger().debug("TorchScript traceback of \"{}\":\n{}", cause, message);
  return cause + " (raised inside the model's TorchScript forward; ATTNPROX_LOG_LEVEL=debug logs its traceback)";
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
