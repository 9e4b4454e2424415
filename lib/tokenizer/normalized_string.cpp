// NormalizedString (see normalized_string.hpp), ported from HF tokenizers' normalizer.rs.
#include "normalized_string.hpp"

#include <algorithm>
#include <cassert>

namespace attnprox::tok {

NormalizedString::NormalizedString(std::string text) : original_(text), normalized_(std::move(text)) {
  alignments_.reserve(normalized_.size());
  for (size_t pos = 0; pos < normalized_.size();) {
    const size_t start = pos;
    next_char(normalized_, pos);
    for (size_t k = start; k < pos; ++k) alignments_.emplace_back(start, pos);
  }
}

std::optional<Offsets> NormalizedString::normalized_to_original(size_t start, size_t end) const {
  if (start == end) return Offsets{start, end};
  if (start > end) return std::nullopt;
  if (normalized_.empty() && start == 0 && end == 0) return Offsets{0, original_.size()};
  if (end > alignments_.size()) return std::nullopt;
  return Offsets{alignments_[start].first, alignments_[end - 1].second};
}

std::optional<Offsets> NormalizedString::original_to_normalized(size_t start, size_t end) const {
  if (start == end) return Offsets{start, end};
  if (start > end) return std::nullopt;
  if (original_.empty() && start == 0 && end == 0) return Offsets{0, normalized_.size()};
  std::optional<size_t> first, last;
  for (size_t i = 0; i < alignments_.size(); ++i) {
    const Offsets& a = alignments_[i];
    if (!(end >= a.second)) break;
    if (!first && start <= a.first && a.first != a.second) first = i;
    if (end >= a.second) last = i + 1;
  }
  if (first && last) return Offsets{*first, *last};
  if (first) return Offsets{*first, *first};
  if (last) return Offsets{*last, *last};
  return std::nullopt;
}

namespace {
bool is_char_boundary(const std::string& s, size_t i) {
  return i == 0 || i == s.size() || (i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) != 0x80);
}
}  // namespace

std::optional<NormalizedString> NormalizedString::slice(size_t start, size_t end) const {
  if (end > normalized_.size() || start > end) return std::nullopt;
  if (!is_char_boundary(normalized_, start) || !is_char_boundary(normalized_, end)) return std::nullopt;
  auto original_range = normalized_to_original(start, end);
  if (!original_range) return std::nullopt;
  NormalizedString out;
  const size_t shift = original_range->first;
  out.original_ = original_range->second <= original_.size() && original_range->first <= original_range->second
                      ? original_.substr(original_range->first, original_range->second - original_range->first)
                      : std::string();
  out.normalized_ = normalized_.substr(start, end - start);
  out.alignments_.reserve(end - start);
  for (size_t i = start; i < end; ++i) {
    out.alignments_.emplace_back(alignments_[i].first - shift, alignments_[i].second - shift);
  }
  out.original_shift_ = original_shift_ + shift;
  return out;
}

void NormalizedString::transform_range(size_t n_start, size_t n_end, const std::vector<CharChange>& dest,
                                       size_t initial_offset) {
  // The characters being replaced, to follow the change in byte sizes.
  std::vector<char32_t> replaced;
  for (size_t pos = n_start; pos < n_end;) replaced.push_back(next_char(normalized_, pos));
  size_t next_replaced = 0;
  size_t initial_removed = 0;
  for (; next_replaced < initial_offset && next_replaced < replaced.size(); ++next_replaced) {
    initial_removed += utf8_length(replaced[next_replaced]);
  }
  long offset = static_cast<long>(initial_removed + n_start);
  std::vector<Offsets> alignments;
  alignments.reserve(n_end - n_start);
  std::string normalized;
  normalized.reserve(n_end - n_start);
  for (const CharChange& item : dest) {
    const auto idx = static_cast<size_t>(offset);
    Offsets align;
    // An inserted character shares the alignment of the one before it. (HF would panic past the end; a
    // malformed transformation here takes the last alignment instead.)
    const size_t at = item.change > 0 ? (idx < 1 ? 0 : idx - 1) : idx;
    if (item.change > 0 && idx < 1) {
      align = Offsets{0, 0};
    } else if (at < alignments_.size()) {
      align = alignments_[at];
    } else {
      align = alignments_.empty() ? Offsets{0, 0} : alignments_.back();
    }
    size_t replaced_size = 0;
    if (item.change <= 0 && next_replaced < replaced.size()) replaced_size = utf8_length(replaced[next_replaced++]);
    size_t removed_bytes = 0;
    if (item.change < 0) {
      for (int k = 0; k < -item.change && next_replaced < replaced.size(); ++k) {
        removed_bytes += utf8_length(replaced[next_replaced++]);
      }
    }
    offset += static_cast<long>(replaced_size + removed_bytes);
    const size_t length = utf8_length(item.c);
    for (size_t k = 0; k < length; ++k) alignments.push_back(align);
    append_utf8(normalized, item.c);
  }
  alignments_.erase(alignments_.begin() + static_cast<long>(n_start), alignments_.begin() + static_cast<long>(n_end));
  alignments_.insert(alignments_.begin() + static_cast<long>(n_start), alignments.begin(), alignments.end());
  normalized_.replace(n_start, n_end - n_start, normalized);
}

void NormalizedString::transform(const std::vector<CharChange>& dest, size_t initial_offset) {
  auto range = original_to_normalized(0, original_.size());
  if (!range) return;
  transform_range(range->first, range->second, dest, initial_offset);
}

void NormalizedString::normalize(NormalForm form) {
  transform(tok::normalize(to_u32(normalized_), form), 0);
}

void NormalizedString::lowercase() {
  std::vector<CharChange> changes;
  changes.reserve(normalized_.size());
  std::vector<char32_t> lower;
  for (size_t pos = 0; pos < normalized_.size();) {
    lower.clear();
    tok::lowercase(next_char(normalized_, pos), lower);
    for (size_t k = 0; k < lower.size(); ++k) changes.push_back({lower[k], k > 0 ? 1 : 0});
  }
  transform(changes, 0);
}

void NormalizedString::prepend(std::string_view s) {
  if (normalized_.empty()) return;
  size_t pos = 0;
  const char32_t next = next_char(normalized_, pos);
  std::vector<CharChange> changes;
  size_t i = 0;
  for (size_t p = 0; p < s.size(); ++i) changes.push_back({next_char(s, p), i != 0 ? 1 : 0});
  changes.push_back({next, 1});
  transform_range(0, pos, changes, 0);
}

void NormalizedString::append(std::string_view s) {
  std::vector<CharChange> changes;
  if (normalized_.empty()) {
    for (size_t p = 0; p < s.size();) changes.push_back({next_char(s, p), 1});
    transform_range(0, normalized_.size(), changes, 0);
    return;
  }
  size_t last = normalized_.size() - 1;
  while (last > 0 && (static_cast<unsigned char>(normalized_[last]) & 0xC0) == 0x80) --last;
  size_t pos = last;
  changes.push_back({next_char(normalized_, pos), 0});
  for (size_t p = 0; p < s.size();) changes.push_back({next_char(s, p), 1});
  transform_range(last, normalized_.size(), changes, 0);
}

void NormalizedString::replace(const Pattern& pattern, std::string_view content) {
  std::string new_normalized;
  new_normalized.reserve(normalized_.size());
  std::vector<Offsets> new_alignments;
  new_alignments.reserve(alignments_.size());
  size_t last_end = 0;
  for (const Match& m : pattern.find_matches(normalized_)) {
    if (!m.is_match) continue;
    new_normalized.append(normalized_, last_end, m.start - last_end);
    new_alignments.insert(new_alignments.end(), alignments_.begin() + static_cast<long>(last_end),
                          alignments_.begin() + static_cast<long>(m.start));
    // Every content character is an insertion after the removed match: it takes the alignment of the byte
    // before the end of the match (HF's shortcut of transform_range with all characters removed).
    const size_t idx = m.end;  // offset after removing the whole match
    const Offsets align = idx < 1 ? Offsets{0, 0} : alignments_[idx - 1];
    for (size_t p = 0; p < content.size();) {
      const size_t start = p;
      next_char(content, p);
      new_normalized.append(content.substr(start, p - start));
      for (size_t k = start; k < p; ++k) new_alignments.push_back(align);
    }
    last_end = m.end;
  }
  new_normalized.append(normalized_, last_end, std::string::npos);
  new_alignments.insert(new_alignments.end(), alignments_.begin() + static_cast<long>(last_end), alignments_.end());
  normalized_ = std::move(new_normalized);
  alignments_ = std::move(new_alignments);
}

void NormalizedString::strip(bool left, bool right) {
  std::u32string chars = to_u32(normalized_);
  size_t leading = 0, trailing = 0;
  if (left) {
    while (leading < chars.size() && is_whitespace(chars[leading])) ++leading;
  }
  if (right) {
    while (trailing < chars.size() && is_whitespace(chars[chars.size() - 1 - trailing])) ++trailing;
  }
  if (leading == 0 && trailing == 0) return;
  std::vector<CharChange> changes;
  const size_t count = chars.size();
  for (size_t i = 0; i < count; ++i) {
    if (i < leading || i >= count - trailing) continue;
    // HF compares the character index with the byte length here; for ASCII-only strings they agree.
    if (i + trailing + 1 == normalized_.size()) {
      changes.push_back({chars[i], -static_cast<int>(trailing)});
    } else {
      changes.push_back({chars[i], 0});
    }
  }
  transform(changes, leading);
}

std::vector<NormalizedString> NormalizedString::split(const Pattern& pattern, SplitBehavior behavior) const {
  std::vector<Match> matches = pattern.find_matches(normalized_);
  std::vector<std::pair<Offsets, bool>> splits;  // (range, remove)
  splits.reserve(matches.size());
  switch (behavior) {
    case SplitBehavior::kIsolated:
      for (const Match& m : matches) splits.push_back({{m.start, m.end}, false});
      break;
    case SplitBehavior::kRemoved:
      for (const Match& m : matches) splits.push_back({{m.start, m.end}, m.is_match});
      break;
    case SplitBehavior::kContiguous: {
      bool previous = false;
      for (const Match& m : matches) {
        if (m.is_match == previous && !splits.empty()) {
          splits.back().first.second = m.end;
        } else {
          splits.push_back({{m.start, m.end}, false});
        }
        previous = m.is_match;
      }
      break;
    }
    case SplitBehavior::kMergedWithPrevious: {
      bool previous = false;
      for (const Match& m : matches) {
        if (m.is_match && !previous && !splits.empty()) {
          splits.back().first.second = m.end;
        } else {
          splits.push_back({{m.start, m.end}, false});
        }
        previous = m.is_match;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      bool previous = false;
      for (auto it = matches.rbegin(); it != matches.rend(); ++it) {
        if (it->is_match && !previous && !splits.empty()) {
          splits.back().first.first = it->start;
        } else {
          splits.push_back({{it->start, it->end}, false});
        }
        previous = it->is_match;
      }
      std::reverse(splits.begin(), splits.end());
      break;
    }
  }
  std::vector<NormalizedString> out;
  out.reserve(splits.size());
  for (const auto& [range, remove] : splits) {
    if (remove) continue;
    auto piece = slice(range.first, range.second);
    if (piece) out.push_back(std::move(*piece));
  }
  return out;
}

}  // namespace attnprox::tok
