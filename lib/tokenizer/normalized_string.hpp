// A string being normalized, with the alignment of every normalized byte to the original bytes it came from, so
// that tokens found in the normalized text get offsets in the original text. A port of HF tokenizers'
// NormalizedString: the same transformations give the same alignments, hence the same offsets.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "pattern.hpp"
#include "unicode.hpp"

namespace attnprox::tok {

using Offsets = std::pair<size_t, size_t>;

/// How `split` treats the matched delimiters.
enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

class NormalizedString {
 public:
  NormalizedString() = default;
  explicit NormalizedString(std::string text);

  const std::string& get() const { return normalized_; }
  const std::string& original() const { return original_; }
  size_t size() const { return normalized_.size(); }
  bool empty() const { return normalized_.empty(); }
  /// Where this (slice of a) string lies in the whole original string, in bytes.
  Offsets offsets_original() const { return {original_shift_, original_shift_ + original_.size()}; }

  /// A range of the normalized string in original-string bytes (relative to this slice's original), or nullopt
  /// when out of range.
  std::optional<Offsets> normalized_to_original(size_t start, size_t end) const;
  /// A range of the original string in normalized bytes.
  std::optional<Offsets> original_to_normalized(size_t start, size_t end) const;

  /// The slice [start, end) of the normalized string (nullopt off character boundaries).
  std::optional<NormalizedString> slice(size_t start, size_t end) const;

  /// Replaces normalized bytes [start, end) by `dest` (see CharChange); `initial_offset` characters at the start
  /// of the range are removed.
  void transform_range(size_t start, size_t end, const std::vector<CharChange>& dest, size_t initial_offset);
  /// transform_range over the whole string (as HF: the normalized range covering the whole original).
  void transform(const std::vector<CharChange>& dest, size_t initial_offset);

  void normalize(NormalForm form);
  template <typename Keep>
  void filter(Keep keep);
  template <typename Map>
  void map(Map map);
  void lowercase();
  void prepend(std::string_view s);
  void append(std::string_view s);
  void replace(const Pattern& pattern, std::string_view content);
  void strip(bool left, bool right);

  /// Per normalized byte, the original byte range it came from.
  const std::vector<Offsets>& alignments() const { return alignments_; }

  /// Splits by `pattern`: the pieces (slices of this string) according to `behavior`.
  std::vector<NormalizedString> split(const Pattern& pattern, SplitBehavior behavior) const;

 private:
  std::string original_;
  std::string normalized_;
  std::vector<Offsets> alignments_;  // per normalized byte: original [start, end)
  size_t original_shift_ = 0;
};

template <typename Keep>
void NormalizedString::filter(Keep keep) {
  // HF: each kept character carries the count of removed characters that follow it; removed characters at the
  // very start are the initial offset.
  std::vector<CharChange> changes;
  changes.reserve(normalized_.size());
  int removed = 0;
  size_t removed_start = 0;
  bool has_last = false;
  char32_t last = 0;
  for (size_t pos = 0; pos < normalized_.size();) {
    const char32_t c = next_char(normalized_, pos);
    if (keep(c)) {
      if (has_last) {
        changes.push_back({last, -removed});
      } else {
        removed_start = static_cast<size_t>(removed);
      }
      last = c;
      has_last = true;
      removed = 0;
    } else {
      ++removed;
    }
  }
  if (has_last) changes.push_back({last, -removed});
  transform(changes, removed_start);
}

template <typename Map>
void NormalizedString::map(Map map) {
  std::vector<CharChange> changes;
  changes.reserve(normalized_.size());
  for (size_t pos = 0; pos < normalized_.size();) changes.push_back({map(next_char(normalized_, pos)), 0});
  transform(changes, 0);
}

}  // namespace attnprox::tok
