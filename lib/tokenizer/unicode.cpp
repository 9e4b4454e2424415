// Unicode properties and normalization with alignment changes (see unicode.hpp).
#include "unicode.hpp"

#include <utf8proc.h>

#include <algorithm>
#include <array>

namespace attnprox::tok {

size_t first_invalid_utf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char b = s[i];
    if (b < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    char32_t c;
    if ((b & 0xE0) == 0xC0) {
      len = 2;
      c = b & 0x1F;
    } else if ((b & 0xF0) == 0xE0) {
      len = 3;
      c = b & 0x0F;
    } else if ((b & 0xF8) == 0xF0) {
      len = 4;
      c = b & 0x07;
    } else {
      return i;
    }
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return i;
      c = (c << 6) | (s[i + k] & 0x3F);
    }
    const char32_t min = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return i;
    i += len;
  }
  return std::string_view::npos;
}

char32_t next_char(std::string_view text, size_t& pos) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const unsigned char b = s[pos];
  if (b < 0x80) {
    ++pos;
    return b;
  }
  if ((b & 0xE0) == 0xC0) {
    const char32_t c = ((b & 0x1F) << 6) | (s[pos + 1] & 0x3F);
    pos += 2;
    return c;
  }
  if ((b & 0xF0) == 0xE0) {
    const char32_t c = ((b & 0x0F) << 12) | ((s[pos + 1] & 0x3F) << 6) | (s[pos + 2] & 0x3F);
    pos += 3;
    return c;
  }
  const char32_t c =
      ((b & 0x07) << 18) | ((s[pos + 1] & 0x3F) << 12) | ((s[pos + 2] & 0x3F) << 6) | (s[pos + 3] & 0x3F);
  pos += 4;
  return c;
}

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

size_t utf8_length(char32_t c) {
  return c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
}

std::u32string to_u32(std::string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) out.push_back(next_char(text, pos));
  return out;
}

size_t char_count(std::string_view text) {
  size_t count = 0;
  for (unsigned char b : text) count += (b & 0xC0) != 0x80;
  return count;
}

namespace {
utf8proc_category_t category(char32_t c) {
  return utf8proc_category(static_cast<utf8proc_int32_t>(c));
}
}  // namespace

bool is_whitespace(char32_t c) {
  // The White_Space property, as Rust's char::is_whitespace.
  if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D);
  switch (c) {
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000: return true;
    default: return c >= 0x2000 && c <= 0x200A;
  }
}

bool is_letter(char32_t c) {
  const auto cat = category(c);
  return cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO;
}

bool is_number(char32_t c) {
  const auto cat = category(c);
  return cat == UTF8PROC_CATEGORY_ND || cat == UTF8PROC_CATEGORY_NL || cat == UTF8PROC_CATEGORY_NO;
}

bool is_numeric_digit(char32_t c) {
  return category(c) == UTF8PROC_CATEGORY_ND;
}

bool is_alphanumeric(char32_t c) {
  if (c < 0x80) return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
  // Alphabetic ≈ L* + Nl + Other_Alphabetic (most of which are marks Mn/Mc); Numeric = N*.
  const auto cat = category(c);
  return (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) || cat == UTF8PROC_CATEGORY_ND ||
         cat == UTF8PROC_CATEGORY_NL || cat == UTF8PROC_CATEGORY_NO;
}

bool is_word_char(char32_t c) {
  // Unicode \w (UTS #18, the Rust regex crate): Alphabetic, marks, decimal digits, connector punctuation,
  // Join_Control. Alphabetic is the letters and Nl plus Other_Alphabetic: mostly marks, and the circled, squared
  // and parenthesized letters of category So.
  if (c < 0x80) return c == '_' || is_alphanumeric(c);
  if (c == 0x200C || c == 0x200D || (c >= 0x24B6 && c <= 0x24E9) || (c >= 0x1F130 && c <= 0x1F149) ||
      (c >= 0x1F150 && c <= 0x1F169) || (c >= 0x1F170 && c <= 0x1F189)) {
    return true;
  }
  const auto cat = category(c);
  return (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_ME) || cat == UTF8PROC_CATEGORY_ND ||
         cat == UTF8PROC_CATEGORY_NL || cat == UTF8PROC_CATEGORY_PC;
}

bool is_punctuation(char32_t c) {
  const auto cat = category(c);
  return cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO;
}

bool is_mark_nonspacing(char32_t c) {
  return category(c) == UTF8PROC_CATEGORY_MN;
}

bool is_mark(char32_t c) {
  const auto cat = category(c);
  return cat == UTF8PROC_CATEGORY_MN || cat == UTF8PROC_CATEGORY_MC || cat == UTF8PROC_CATEGORY_ME;
}

bool is_other(char32_t c) {
  const auto cat = category(c);
  return cat == UTF8PROC_CATEGORY_CN || cat == UTF8PROC_CATEGORY_CC || cat == UTF8PROC_CATEGORY_CF ||
         cat == UTF8PROC_CATEGORY_CO || cat == UTF8PROC_CATEGORY_CS;
}

int combining_class(char32_t c) {
  if (c < 0x300) return 0;
  return utf8proc_get_property(static_cast<utf8proc_int32_t>(c))->combining_class;
}

void lowercase(char32_t c, std::vector<char32_t>& out) {
  if (c < 0x80) {
    out.push_back(c >= 'A' && c <= 'Z' ? c + 32 : c);
  } else if (c == 0x130) {  // the one unconditional multi-character lowercase mapping (SpecialCasing.txt)
    out.push_back('i');
    out.push_back(0x307);
  } else {
    out.push_back(static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))));
  }
}

namespace {

/// The full (recursive) canonical or compatibility decomposition of one character.
void decompose_char(char32_t c, bool compatible, std::vector<char32_t>& out) {
  if (c < 0xC0) {  // nothing below U+00C0 decomposes canonically; compatibility: a few (U+00A0, U+00A8, ...)
    if (!compatible || c < 0xA0) {
      out.push_back(c);
      return;
    }
  }
  utf8proc_int32_t buffer[32];
  int boundclass = 0;
  const utf8proc_option_t options =
      compatible ? static_cast<utf8proc_option_t>(UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT) : UTF8PROC_DECOMPOSE;
  const utf8proc_ssize_t n =
      utf8proc_decompose_char(static_cast<utf8proc_int32_t>(c), buffer, 32, options, &boundclass);
  if (n <= 0 || n > 32) {
    out.push_back(c);
    return;
  }
  for (utf8proc_ssize_t k = 0; k < n; ++k) out.push_back(static_cast<char32_t>(buffer[k]));
}

/// The primary composite of a starter and a following character, or 0.
char32_t compose(char32_t a, char32_t b) {
  if (a < 0x3C && b < 0x300) return 0;  // fast path: no composition starts with ASCII before '<' or ends below U+300
  utf8proc_int32_t buffer[2] = {static_cast<utf8proc_int32_t>(a), static_cast<utf8proc_int32_t>(b)};
  const utf8proc_ssize_t n = utf8proc_normalize_utf32(buffer, 2, UTF8PROC_COMPOSE);
  return n == 1 ? static_cast<char32_t>(buffer[0]) : 0;
}

struct Pending {
  int ccc;
  char32_t c;
  int change;
};

/// Decomposition with canonical reordering; each character of a decomposition after the first is an insertion
/// (+1). Reordering moves (character, change) pairs together, stable within a combining class.
std::vector<CharChange> decompose(std::u32string_view text, bool compatible) {
  std::vector<CharChange> out;
  out.reserve(text.size() + text.size() / 4);
  std::vector<Pending> pending;  // characters since the last starter, not yet sorted
  std::vector<char32_t> parts;
  auto flush = [&] {
    std::stable_sort(pending.begin(), pending.end(), [](const Pending& x, const Pending& y) { return x.ccc < y.ccc; });
    for (const Pending& p : pending) out.push_back({p.c, p.change});
    pending.clear();
  };
  for (char32_t c : text) {
    parts.clear();
    decompose_char(c, compatible, parts);
    for (size_t k = 0; k < parts.size(); ++k) {
      const int ccc = combining_class(parts[k]);
      if (ccc == 0) flush();
      pending.push_back({ccc, parts[k], k == 0 ? 0 : 1});
    }
  }
  flush();
  return out;
}

/// Canonical composition over a decomposed sequence, carrying the changes the way the
/// unicode-normalization-alignments crate does: a composite takes change (starter + mark - 1).
std::vector<CharChange> recompose(const std::vector<CharChange>& decomposed) {
  std::vector<CharChange> out;
  out.reserve(decomposed.size());
  std::vector<CharChange> buffer;  // characters held back after the composee
  bool has_composee = false;
  CharChange composee{0, 0};
  int last_ccc = -1;  // -1: none
  for (const CharChange& item : decomposed) {
    const int ccc = combining_class(item.c);
    if (!has_composee) {
      if (ccc != 0) {
        out.push_back(item);
        continue;
      }
      composee = item;
      has_composee = true;
      continue;
    }
    if (last_ccc < 0) {
      if (char32_t r = compose(composee.c, item.c)) {
        composee = {r, composee.change + item.change - 1};
        continue;
      }
      if (ccc == 0) {
        out.push_back(composee);
        composee = item;
        continue;
      }
      buffer.push_back(item);
      last_ccc = ccc;
      continue;
    }
    if (last_ccc >= ccc) {  // blocked from the composee
      if (ccc == 0) {
        out.push_back(composee);
        composee = item;
        last_ccc = -1;
        out.insert(out.end(), buffer.begin(), buffer.end());
        buffer.clear();
        continue;
      }
      buffer.push_back(item);
      last_ccc = ccc;
      continue;
    }
    if (char32_t r = compose(composee.c, item.c)) {
      composee = {r, composee.change + item.change - 1};
      continue;
    }
    buffer.push_back(item);
    last_ccc = ccc;
  }
  // Finished: the composee, then the characters held back (the crate's order).
  if (has_composee) out.push_back(composee);
  out.insert(out.end(), buffer.begin(), buffer.end());
  return out;
}

}  // namespace

std::vector<CharChange> normalize(std::u32string_view text, NormalForm form) {
  const bool ascii = std::all_of(text.begin(), text.end(), [](char32_t c) { return c < 0x80; });
  if (ascii) {
    std::vector<CharChange> out;
    out.reserve(text.size());
    for (char32_t c : text) out.push_back({c, 0});
    return out;
  }
  const bool compatible = form == NormalForm::kNFKD || form == NormalForm::kNFKC;
  std::vector<CharChange> decomposed = decompose(text, compatible);
  if (form == NormalForm::kNFD || form == NormalForm::kNFKD) return decomposed;
  return recompose(decomposed);
}

}  // namespace attnprox::tok
