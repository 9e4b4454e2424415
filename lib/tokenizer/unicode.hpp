// Unicode for the tokenizer: UTF-8, character properties (as Rust's std and the unicode crates that Hugging Face
// tokenizers uses define them, on utf8proc's tables), and normalization that reports, for every output character,
// how it relates to the input (the alignment "changes" of HF's NormalizedString).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace attnprox::tok {

/// One character of a transformation's output and how it relates to the input: 0 replaces the next input
/// character, +1 is inserted, -n replaces the next input character and removes the n after it.
struct CharChange {
  char32_t c;
  int change;
};

/// Byte index of the first invalid UTF-8 sequence in `text`, or npos when it is valid (overlong forms,
/// surrogates and code points above U+10FFFF are invalid).
size_t first_invalid_utf8(std::string_view text);

/// The code point at `pos` (valid UTF-8 assumed); advances `pos` past it.
char32_t next_char(std::string_view text, size_t& pos);
/// Appends the UTF-8 encoding of `c`.
void append_utf8(std::string& out, char32_t c);
/// Bytes the UTF-8 encoding of `c` takes.
size_t utf8_length(char32_t c);
/// Code points of a valid UTF-8 string.
std::u32string to_u32(std::string_view text);
/// Number of code points of a valid UTF-8 string.
size_t char_count(std::string_view text);

// Properties. The names follow the definitions Hugging Face tokenizers relies on.
bool is_whitespace(char32_t c);       // Rust char::is_whitespace (White_Space)
bool is_alphanumeric(char32_t c);     // Rust char::is_alphanumeric (Alphabetic or Numeric)
bool is_word_char(char32_t c);        // regex \w: alphabetic, marks, decimal digits, connector punctuation
bool is_punctuation(char32_t c);      // general category P*
bool is_mark_nonspacing(char32_t c);  // Mn
bool is_mark(char32_t c);             // M*: Mn, Mc, Me
bool is_other(char32_t c);            // C*: Cc, Cf, Cn, Co, Cs
bool is_numeric_digit(char32_t c);    // Nd
bool is_letter(char32_t c);           // L*
bool is_number(char32_t c);           // N*
int combining_class(char32_t c);

/// Rust char::to_lowercase: one or more characters.
void lowercase(char32_t c, std::vector<char32_t>& out);

enum class NormalForm { kNFD, kNFKD, kNFC, kNFKC };

/// Unicode normalization of `text`, each output character with its change, exactly as the
/// unicode-normalization-alignments crate (used by HF tokenizers) reports them.
std::vector<CharChange> normalize(std::u32string_view text, NormalForm form);

}  // namespace attnprox::tok
