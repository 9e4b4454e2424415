// Parsing and validating a model file's manifest (docs/model-file.md). No libtorch here.
#include "attnprox/manifest.hpp"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "../common/limits.hpp"
#include "attnprox/error.hpp"

namespace attnprox {
namespace {

using nlohmann::json;

[[noreturn]] void invalid(const std::string& what) {
  throw Error(ErrorCode::kInvalidModel, "manifest: " + what);
}

std::string shown(const json& value) {
  return limits::shown_json(value);  // bounded, whatever the value's size and nesting
}

const json& field(const json& object, const std::string& key, const std::string& where = "") {
  auto it = object.find(key);
  if (it == object.end()) invalid(where + "'" + key + "' is missing");
  return *it;
}

int64_t integer(const json& object, const std::string& key, int64_t min, int64_t max, const std::string& where = "") {
  const json& value = field(object, key, where);
  if (!value.is_number_integer() || value.get<int64_t>() < min || value.get<int64_t>() > max) {
    std::ostringstream message;
    message << where << "'" << key << "' must be an integer in " << min << ".." << max << ", found " << shown(value);
    invalid(message.str());
  }
  return value.get<int64_t>();
}

std::string text(const json& object, const std::string& key, bool required = true) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) {
    if (required) invalid("'" + key + "' is missing");
    return "";
  }
  if (!it->is_string()) invalid("'" + key + "' must be a string, found " + shown(*it));
  return it->get<std::string>();
}

bool boolean(const json& object, const std::string& key, std::optional<bool> fallback, const std::string& where = "") {
  auto it = object.find(key);
  if (it == object.end() && fallback) return *fallback;
  const json& value = field(object, key, where);
  if (!value.is_boolean()) invalid(where + "'" + key + "' must be true or false, found " + shown(value));
  return value.get<bool>();
}

std::optional<double> positive_number(const json& object, const std::string& key, const std::string& where) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::nullopt;
  if (!it->is_number() || !std::isfinite(it->get<double>()) || it->get<double>() <= 0) {
    invalid(where + "'" + key + "' must be a positive number or null, found " + shown(*it));
  }
  return it->get<double>();
}

std::optional<int64_t> optional_id(const json& object, const std::string& key, int64_t vocab_size) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::nullopt;
  return integer(object, key, 0, vocab_size - 1, "tokenizer.");
}

/// A "rope" entry (docs/model-file.md): null (no rotary embedding), {"unavailable": reason}, or the rotation.
RopeRecord parse_rope(const json& value, int head_dim, const std::string& where) {
  RopeRecord record;
  if (value.is_null()) {
    record.state = RopeRecord::State::kNone;
    return record;
  }
  if (!value.is_object()) invalid(where + "'rope' must be null or an object, found " + shown(value));
  if (auto reason = value.find("unavailable"); reason != value.end()) {
    if (!reason->is_string()) {
      invalid(where + "'rope.unavailable' must be a string (the reason), found " + shown(*reason));
    }
    record.state = RopeRecord::State::kUnavailable;
    record.reason = reason->get<std::string>();
    return record;
  }
  record.state = RopeRecord::State::kRotary;
  RotaryEmbedding& rotary = record.rotary;
  const json inv_freq = field(value, "inv_freq", where + "rope.");  // copies: GCC 13 reads a reference as dangling
  if (!inv_freq.is_array() || inv_freq.empty()) {
    invalid(where + "'rope.inv_freq' must be a non-empty list of numbers, found " + shown(inv_freq));
  }
  for (const json& f : inv_freq) {
    if (!f.is_number() || !std::isfinite(f.get<double>()) || f.get<double>() < 0) {
      invalid(where + "'rope.inv_freq' holds " + shown(f) + ", expected finite numbers >= 0");
    }
    rotary.inv_freq.push_back(f.get<double>());
  }
  rotary.rotary_dim = static_cast<int>(integer(value, "rotary_dim", 2, head_dim, where + "rope."));
  if (rotary.rotary_dim != 2 * static_cast<int>(rotary.inv_freq.size())) {
    invalid(where + "'rope.rotary_dim' is " + std::to_string(rotary.rotary_dim) + ", 'rope.inv_freq' holds " +
            std::to_string(rotary.inv_freq.size()) + " frequencies (one per rotated pair: rotary_dim / 2)");
  }
  const json layout_value = field(value, "layout", where + "rope.");
  if (!layout_value.is_string()) invalid(where + "'rope.layout' must be a string, found " + shown(layout_value));
  const std::string layout = layout_value.get<std::string>();
  if (layout == "rotate_half") {
    rotary.layout = RotaryEmbedding::Layout::kRotateHalf;
  } else if (layout == "interleaved") {
    rotary.layout = RotaryEmbedding::Layout::kInterleaved;
  } else {
    invalid(where + "'rope.layout' is \"" + layout + "\", expected \"rotate_half\" or \"interleaved\"");
  }
  if (value.contains("attention_scaling")) {
    auto scaling = positive_number(value, "attention_scaling", where + "rope.");
    if (!scaling) invalid(where + "'rope.attention_scaling' must be a positive number");
    rotary.attention_scaling = *scaling;
  }
  return record;
}

/// Families whose models have no rotary embedding: a file of theirs written before the manifest recorded "rope"
/// gives the same queries and keys before and after (there is no rotation).
bool family_without_rotary(const std::string& family) {
  return family == "gpt2" || family == "bert" || family == "distilbert" || family == "bart";
}

LayerInfo parse_layer(const json& entry, int expected_index, int num_heads, int head_dim) {
  const std::string where = "layers[" + std::to_string(expected_index) + "].";
  if (!entry.is_object()) invalid(where.substr(0, where.size() - 1) + " must be an object");
  LayerInfo layer;
  layer.index = static_cast<int>(integer(entry, "index", 0, 1 << 20, where));
  if (layer.index != expected_index) {
    invalid(where + "'index' is " + std::to_string(layer.index) + ", captured_layers says " +
            std::to_string(expected_index));
  }
  auto scaling = positive_number(entry, "scaling", where);
  if (!scaling) invalid(where + "'scaling' is missing");
  layer.scaling = *scaling;
  auto window = entry.find("sliding_window");
  if (window != entry.end() && !window->is_null()) {
    layer.sliding_window = integer(entry, "sliding_window", 1, int64_t{1} << 40, where);
  }
  layer.softcap = positive_number(entry, "softcap", where);
  auto sinks = entry.find("sinks");
  if (sinks != entry.end() && !sinks->is_null()) {
    if (!sinks->is_array() || static_cast<int>(sinks->size()) != num_heads) {
      invalid(where + "'sinks' must be a list of " + std::to_string(num_heads) +
              " numbers (one per query head), "
              "found " +
              shown(*sinks));
    }
    for (const json& sink : *sinks) {
      if (!sink.is_number() || !std::isfinite(sink.get<double>())) {
        invalid(where + "'sinks' holds a value that is not a finite number: " + shown(sink));
      }
      layer.sinks.push_back(sink.get<double>());
    }
  }
  layer.cross_attention = boolean(entry, "cross_attention", false, where);
  if (auto causal = entry.find("causal"); causal != entry.end() && !causal->is_null()) {
    layer.causal = boolean(entry, "causal", std::nullopt, where);
  }
  layer.name = text(entry, "name", false);
  if (auto rope = entry.find("rope"); rope != entry.end()) layer.rope = parse_rope(*rope, head_dim, where);
  return layer;
}

}  // namespace

Manifest Manifest::parse(const std::string& json_text) {
  if (json_text.size() > limits::kMaxManifestBytes) {
    invalid("it is " + std::to_string(json_text.size()) + " bytes, more than the " +
            std::to_string(limits::kMaxManifestBytes) + " a manifest may have");
  }
  if (const size_t at = limits::json_too_deep(json_text); at != std::string::npos) {
    invalid("JSON nested more than " + std::to_string(limits::kMaxJsonDepth) + " levels deep (at byte " +
            std::to_string(at) + ")");
  }
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::exception& e) {  // syntax errors, and numbers that do not fit
    invalid("not valid JSON (" + limits::clipped(e.what(), 200) + ")");  // it may quote a long token
  }
  if (!root.is_object()) invalid("the top level must be a JSON object");

  Manifest m;
  if (text(root, "format") != "attnprox-model") {
    invalid("'format' is \"" + limits::clipped(text(root, "format")) + "\", expected \"attnprox-model\"");
  }
  m.format_version = static_cast<int>(integer(root, "format_version", 1, 1 << 20));
  if (m.format_version > kFormatVersion) {
    invalid("format version " + std::to_string(m.format_version) + " is newer than this attnprox reads (" +
            std::to_string(kFormatVersion) + "); upgrade attnprox");
  }
  m.family = text(root, "family");
  m.model_type = text(root, "model_type", false);
  m.source = text(root, "source", false);
  if (auto exporter = root.find("exporter"); exporter != root.end() && exporter->is_object()) {
    m.exporter = text(*exporter, "name", false);
    m.torch_version = text(*exporter, "torch", false);
    m.traced_device = text(*exporter, "device", false);
  }
  m.num_layers = static_cast<int>(integer(root, "num_layers", 1, 1 << 20));
  m.num_heads = static_cast<int>(integer(root, "num_heads", 1, 1 << 16));
  m.num_kv_heads = static_cast<int>(integer(root, "num_kv_heads", 1, 1 << 16));
  if (m.num_heads % m.num_kv_heads != 0) {
    invalid("num_heads (" + std::to_string(m.num_heads) + ") must be a multiple of num_kv_heads (" +
            std::to_string(m.num_kv_heads) + ")");
  }
  m.head_dim = static_cast<int>(integer(root, "head_dim", 1, 1 << 16));
  m.causal = boolean(root, "causal", std::nullopt);
  m.max_positions = integer(root, "max_positions", 1, int64_t{1} << 40);
  m.vocab_size = integer(root, "vocab_size", 1, int64_t{1} << 40);
  m.dtype = text(root, "dtype");
  if (m.dtype != "float32" && m.dtype != "float16" && m.dtype != "bfloat16") {
    invalid("'dtype' is \"" + limits::clipped(m.dtype) + "\", expected float32, float16 or bfloat16");
  }

  const json captured = field(root, "captured_layers");  // a copy: GCC 13 misreads a reference here as dangling
  if (!captured.is_array() || captured.empty()) invalid("'captured_layers' must be a non-empty list of layers");
  std::vector<int> indices;
  for (const json& entry : captured) {
    if (!entry.is_number_integer() || entry.get<int64_t>() < 0 || entry.get<int64_t>() >= m.num_layers) {
      invalid("'captured_layers' holds " + shown(entry) + ", expected layer numbers in 0.." +
              std::to_string(m.num_layers - 1));
    }
    int index = entry.get<int>();
    if (!indices.empty() && index <= indices.back()) invalid("'captured_layers' must be strictly ascending");
    indices.push_back(index);
  }
  const json layers = field(root, "layers");
  if (!layers.is_array() || layers.size() != indices.size()) {
    invalid("'layers' must hold one entry per captured layer (" + std::to_string(indices.size()) + ")");
  }
  for (size_t k = 0; k < indices.size(); ++k) {
    m.layers.push_back(parse_layer(layers[k], indices[k], m.num_heads, m.head_dim));
  }
  if (auto rope = root.find("rope"); rope != root.end()) {
    m.rope = parse_rope(*rope, m.head_dim, "");
  } else if (family_without_rotary(m.family)) {
    m.rope.state = RopeRecord::State::kNone;
  }

  if (auto tok = root.find("tokenizer"); tok != root.end() && !tok->is_null()) {
    if (!tok->is_object()) invalid("'tokenizer' must be an object");
    m.tokenizer.bos_id = optional_id(*tok, "bos_id", m.vocab_size);
    m.tokenizer.eos_id = optional_id(*tok, "eos_id", m.vocab_size);
    m.tokenizer.pad_id = optional_id(*tok, "pad_id", m.vocab_size);
    m.tokenizer.add_bos = boolean(*tok, "add_bos", false, "tokenizer.");
    if (auto special = tok->find("special_tokens"); special != tok->end() && !special->is_null()) {
      if (!special->is_object()) invalid("'tokenizer.special_tokens' must be an object of token → id");
      for (const auto& [name, id] : special->items()) {
        if (!id.is_number_integer()) {
          invalid("tokenizer.special_tokens[\"" + limits::clipped(name) + "\"] must be an integer");
        }
        m.tokenizer.special_tokens[name] = id.get<int64_t>();
      }
    }
  }
  if (auto inputs = root.find("inputs"); inputs != root.end() && !inputs->is_null()) {
    const std::vector<std::string> pair{"input_ids", "attention_mask"},
        typed{"input_ids", "attention_mask", "token_type_ids"};
    if (inputs->is_array() &&
        std::all_of(inputs->begin(), inputs->end(), [](const json& x) { return x.is_string(); })) {
      m.inputs = inputs->get<std::vector<std::string>>();
    }
    if (m.inputs != pair && m.inputs != typed) {
      invalid("'inputs' is " + shown(*inputs) +
              R"(, expected ["input_ids", "attention_mask"] or ["input_ids", "attention_mask", "token_type_ids"])");
    }
  }
  m.raw_json = json_text;
  return m;
}

std::vector<int> Manifest::captured_layers() const {
  std::vector<int> out;
  for (const LayerInfo& layer : layers) out.push_back(layer.index);
  return out;
}

namespace {
std::string captured_list(const Manifest& m) {
  std::string out;
  for (const LayerInfo& layer : m.layers) out += (out.empty() ? "" : ", ") + std::to_string(layer.index);
  return out;
}
}  // namespace

size_t Manifest::slot(int layer) const {
  const int captured = static_cast<int>(layers.size());
  if (layer < 0) {
    if (layer < -captured) {
      const std::string holder = file_captured_layers.empty() ? "the model file has " : "this run kept ";
      throw Error(ErrorCode::kOutOfRange, "layer " + std::to_string(layer) + " requested, " + holder +
                                              std::to_string(captured) + " captured layers (" + captured_list(*this) +
                                              "; -1..-" + std::to_string(captured) + " count back from the last)");
    }
    return static_cast<size_t>(captured) - static_cast<size_t>(-layer);
  }
  for (size_t k = 0; k < layers.size(); ++k) {
    if (layers[k].index == layer) return k;
  }
  if (std::find(file_captured_layers.begin(), file_captured_layers.end(), layer) != file_captured_layers.end()) {
    throw Error(ErrorCode::kOutOfRange, "layer " + std::to_string(layer) + " was not kept by this run (it kept " +
                                            captured_list(*this) + "; ask for it with layers=...)");
  }
  if (layer >= num_layers) {
    throw Error(ErrorCode::kOutOfRange, "layer " + std::to_string(layer) + " requested, the model has " +
                                            std::to_string(num_layers) + " layers (0.." +
                                            std::to_string(num_layers - 1) + ")");
  }
  throw Error(ErrorCode::kOutOfRange, "layer " + std::to_string(layer) +
                                          " is not captured in this model file (captured: " + captured_list(*this) +
                                          ")");
}

Manifest Manifest::kept(const std::vector<size_t>& slots) const {
  Manifest out = *this;
  out.layers.clear();
  for (size_t slot : slots) out.layers.push_back(layers.at(slot));
  out.file_captured_layers = file_captured_layers.empty() ? captured_layers() : file_captured_layers;
  return out;
}

int Manifest::kv_group(int head) const {
  if (head < 0 || head >= num_heads) {
    throw Error(ErrorCode::kOutOfRange, "head " + std::to_string(head) + " requested, the model has " +
                                            std::to_string(num_heads) + " heads (0.." + std::to_string(num_heads - 1) +
                                            ")");
  }
  return head / (num_heads / num_kv_heads);
}

}  // namespace attnprox
