// Shared pieces of the tokenizer: reading JSON fields, patterns from JSON, GPT-2's byte alphabet, lossy UTF-8.
#include <array>

#include "../common/limits.hpp"
#include "attnprox/error.hpp"
#include "tokenizer_json.hpp"

namespace attnprox::tok {

void bad_json(const std::string& where, const std::string& what) {
  // Both may quote the file (tokens, patterns): bounded, so that a message never grows with the input.
  throw Error(ErrorCode::kInvalidArgument, "tokenizer.json: " + limits::clipped(where, 200) + ": " +
                                               limits::clipped(what, 300));
}

const Json& member(const Json& object, const char* key, const std::string& where) {
  if (!object.is_object()) bad_json(where, "expected an object");
  auto it = object.find(key);
  if (it == object.end()) bad_json(where, std::string("\"") + key + "\" is missing");
  return *it;
}

std::string string_member(const Json& object, const char* key, const std::string& where) {
  const Json& value = member(object, key, where);
  if (!value.is_string()) bad_json(where + "." + key, "expected a string");
  return value.get<std::string>();
}

std::string string_or(const Json& object, const char* key, const std::string& fallback, const std::string& where) {
  if (!object.is_object()) bad_json(where, "expected an object");
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return fallback;
  if (!it->is_string()) bad_json(where + "." + key, "expected a string");
  return it->get<std::string>();
}

bool bool_or(const Json& object, const char* key, bool fallback, const std::string& where) {
  if (!object.is_object()) bad_json(where, "expected an object");
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) bad_json(where + "." + key, "expected true or false");
  return it->get<bool>();
}

std::string type_of(const Json& object, const std::string& where) {
  return string_member(object, "type", where);
}

std::shared_ptr<const Pattern> make_pattern(const Json& j, const std::string& where) {
  if (j.is_object() && j.contains("Regex")) {
    const std::string expression = string_member(j, "Regex", where);
    if (expression.size() > limits::kMaxRegexBytes) {
      bad_json(where + ".Regex", "a regular expression of " + std::to_string(expression.size()) +
                                     " bytes, more than the " + std::to_string(limits::kMaxRegexBytes) + " allowed");
    }
    return std::make_shared<RegexPattern>(expression);
  }
  if (j.is_object() && j.contains("String")) {
    return std::make_shared<LiteralPattern>(string_member(j, "String", where));
  }
  if (j.is_string()) return std::make_shared<LiteralPattern>(j.get<std::string>());
  bad_json(where, "expected {\"String\": ...} or {\"Regex\": ...}");
}

PrependScheme metaspace_scheme(const Json& j, const std::string& where) {
  PrependScheme scheme = PrependScheme::kAlways;
  const std::string name = string_or(j, "prepend_scheme", "always", where);
  if (name == "first") {
    scheme = PrependScheme::kFirst;
  } else if (name == "never") {
    scheme = PrependScheme::kNever;
  } else if (name != "always") {
    bad_json(where + ".prepend_scheme", "expected always, first or never");
  }
  if (!bool_or(j, "add_prefix_space", true, where)) scheme = PrependScheme::kNever;
  return scheme;
}

namespace {
/// GPT-2's table (openai/gpt-2 encoder.py bytes_to_unicode): printable bytes stand for themselves, the others are
/// moved to U+0100 and up, in byte order.
struct ByteTable {
  std::array<char32_t, 256> to_char{};
  std::array<int, 512> to_byte{};
  ByteTable() {
    to_byte.fill(-1);
    auto printable = [](int b) {
      return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const char32_t c = printable(b) ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
      to_char[b] = c;
      to_byte[c] = b;
    }
  }
};
const ByteTable& byte_table() {
  static const ByteTable table;
  return table;
}
}  // namespace

char32_t byte_to_char(unsigned char b) {
  return byte_table().to_char[b];
}

int char_to_byte(char32_t c) {
  return c < 512 ? byte_table().to_byte[c] : -1;
}

std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t i = 0;
  while (i < bytes.size()) {
    const size_t bad = first_invalid_utf8(bytes.substr(i));
    if (bad == std::string_view::npos) {
      out.append(bytes.substr(i));
      break;
    }
    out.append(bytes.substr(i, bad));
    i += bad;
    // The maximal subpart of a valid sequence that starts here is replaced by one U+FFFD (Unicode §3.9, what Rust's
    // from_utf8_lossy does).
    const auto b0 = static_cast<unsigned char>(bytes[i]);
    size_t need = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      need = 1;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      need = 2;
      if (b0 == 0xE0) lo = 0xA0;
      if (b0 == 0xED) hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      need = 3;
      if (b0 == 0xF0) lo = 0x90;
      if (b0 == 0xF4) hi = 0x8F;
    }
    size_t consumed = 1;
    for (size_t k = 0; k < need && i + consumed < bytes.size(); ++k) {
      const auto b = static_cast<unsigned char>(bytes[i + consumed]);
      const unsigned char low = k == 0 ? lo : 0x80, high = k == 0 ? hi : 0xBF;
      if (b < low || b > high) break;
      ++consumed;
    }
    out += "\xEF\xBF\xBD";
    i += consumed;
  }
  return out;
}

}  // namespace attnprox::tok
