// What splitting and replacing look for in a string (HF tokenizers' `Pattern`): literal strings, character
// predicates and Oniguruma regular expressions (the engine HF tokenizers uses, so `\p{L}`, `(?i:...)` and
// look-ahead behave the same).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace attnprox::tok {

/// A piece of the searched string: [start, end) in bytes, and whether it matched.
struct Match {
  size_t start, end;
  bool is_match;
};

class Pattern {
 public:
  virtual ~Pattern() = default;
  /// Pieces covering the whole of `text`, in order (a single (0, 0, false) for an empty text).
  virtual std::vector<Match> find_matches(std::string_view text) const = 0;
};

/// Every occurrence of a literal string (none for an empty one).
class LiteralPattern : public Pattern {
 public:
  explicit LiteralPattern(std::string literal) : literal_(std::move(literal)) {}
  std::vector<Match> find_matches(std::string_view text) const override;

 private:
  std::string literal_;
};

/// Every character for which `predicate` holds, one match each.
class CharPattern : public Pattern {
 public:
  explicit CharPattern(std::function<bool(char32_t)> predicate) : predicate_(std::move(predicate)) {}
  std::vector<Match> find_matches(std::string_view text) const override;

 private:
  std::function<bool(char32_t)> predicate_;
};

/// Oniguruma regular expression (Ruby syntax, UTF-8), matched left to right without overlaps.
class RegexPattern : public Pattern {
 public:
  /// Throws Error(kInvalidArgument) when the expression does not compile.
  explicit RegexPattern(const std::string& expression);
  ~RegexPattern() override;
  RegexPattern(const RegexPattern&) = delete;
  RegexPattern& operator=(const RegexPattern&) = delete;
  std::vector<Match> find_matches(std::string_view text) const override;
  /// The matches alone, [start, end) byte pairs.
  void for_each_match(std::string_view text, const std::function<void(size_t, size_t)>& f) const;

 private:
  void* regex_;  // OnigRegex
};

/// The same pieces with is_match flipped.
class InvertPattern : public Pattern {
 public:
  explicit InvertPattern(std::shared_ptr<const Pattern> inner) : inner_(std::move(inner)) {}
  std::vector<Match> find_matches(std::string_view text) const override;

 private:
  std::shared_ptr<const Pattern> inner_;
};

}  // namespace attnprox::tok
