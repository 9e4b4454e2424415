// Patterns for splitting and replacing (see pattern.hpp).
#include "pattern.hpp"

#include <oniguruma.h>

#include <memory>
#include <mutex>
#include <new>

#include "../common/limits.hpp"
#include "attnprox/error.hpp"
#include "unicode.hpp"

namespace attnprox::tok {

namespace {
std::vector<Match> from_hits(std::string_view text, const std::vector<std::pair<size_t, size_t>>& hits) {
  if (text.empty()) return {{0, 0, false}};
  std::vector<Match> out;
  out.reserve(2 * hits.size() + 1);
  size_t previous = 0;
  for (const auto& [start, end] : hits) {
    if (previous != start) out.push_back({previous, start, false});
    out.push_back({start, end, true});
    previous = end;
  }
  if (previous != text.size()) out.push_back({previous, text.size(), false});
  return out;
}
}  // namespace

std::vector<Match> LiteralPattern::find_matches(std::string_view text) const {
  if (literal_.empty()) return {{0, char_count(text), false}};  // as HF does for an empty pattern
  std::vector<std::pair<size_t, size_t>> hits;
  for (size_t at = text.find(literal_); at != std::string_view::npos; at = text.find(literal_, at + literal_.size())) {
    hits.emplace_back(at, at + literal_.size());
  }
  return from_hits(text, hits);
}

std::vector<Match> CharPattern::find_matches(std::string_view text) const {
  if (text.empty()) return {{0, 0, false}};
  std::vector<Match> out;
  size_t last_offset = 0, last_seen = 0;
  for (size_t pos = 0; pos < text.size();) {
    const size_t start = pos;
    const char32_t c = next_char(text, pos);
    last_seen = pos;
    if (predicate_(c)) {
      if (last_offset < start) out.push_back({last_offset, start, false});
      out.push_back({start, pos, true});
      last_offset = pos;
    }
  }
  if (last_seen > last_offset) out.push_back({last_offset, last_seen, false});
  return out;
}

std::vector<Match> InvertPattern::find_matches(std::string_view text) const {
  std::vector<Match> out = inner_->find_matches(text);
  for (Match& m : out) m.is_match = !m.is_match;
  return out;
}

namespace {
void initialize_oniguruma() {
  static std::once_flag once;
  std::call_once(once, [] {
    OnigEncoding encodings[] = {ONIG_ENCODING_UTF8};
    onig_initialize(encodings, 1);
  });
}
}  // namespace

RegexPattern::RegexPattern(const std::string& expression) : regex_(nullptr) {
  initialize_oniguruma();
  OnigRegex regex = nullptr;
  OnigErrorInfo info;
  const auto* begin = reinterpret_cast<const OnigUChar*>(expression.data());
  const int rc =
      onig_new(&regex, begin, begin + expression.size(), ONIG_OPTION_NONE, ONIG_ENCODING_UTF8, ONIG_SYNTAX_RUBY, &info);
  if (rc != ONIG_NORMAL) {
    OnigUChar message[ONIG_MAX_ERROR_MESSAGE_LEN];
    onig_error_code_to_str(message, rc, &info);
    throw Error(ErrorCode::kInvalidArgument, "regular expression \"" + limits::clipped(expression, 200) +
                                                 "\" does not compile: " + reinterpret_cast<const char*>(message));
  }
  regex_ = regex;
}

RegexPattern::~RegexPattern() {
  if (regex_) onig_free(static_cast<OnigRegex>(regex_));
}

namespace {
struct RegionFree {
  void operator()(OnigRegion* region) const { onig_region_free(region, 1); }
};
struct MatchParamFree {
  void operator()(OnigMatchParam* param) const { onig_free_match_param(param); }
};
/// Oniguruma's error `rc` from a search: a bounded message, never mistaken for "no more matches".
[[noreturn]] void search_failed(int rc, size_t text_size) {
  OnigUChar message[ONIG_MAX_ERROR_MESSAGE_LEN];
  onig_error_code_to_str(message, rc);
  const bool limit = rc == ONIGERR_RETRY_LIMIT_IN_MATCH_OVER || rc == ONIGERR_RETRY_LIMIT_IN_SEARCH_OVER ||
                     rc == ONIGERR_MATCH_STACK_LIMIT_OVER;
  throw Error(limit ? ErrorCode::kInvalidArgument : ErrorCode::kRuntime,
              std::string("the tokenizer's regular expression failed on a text of ") + std::to_string(text_size) +
                  " bytes: " + reinterpret_cast<const char*>(message) +
                  (limit ? " (the expression backtracks too much on this text; attnprox bounds that work)" : ""));
}
}  // namespace

void RegexPattern::for_each_match(std::string_view text, const std::function<void(size_t, size_t)>& f) const {
  auto* regex = static_cast<OnigRegex>(regex_);
  std::unique_ptr<OnigRegion, RegionFree> owned_region(onig_region_new());
  std::unique_ptr<OnigMatchParam, MatchParamFree> param(onig_new_match_param());
  if (!owned_region || !param) throw std::bad_alloc();
  OnigRegion* region = owned_region.get();
  onig_initialize_match_param(param.get());
  onig_set_retry_limit_in_match_of_match_param(param.get(), limits::kRegexRetryLimitInMatch);
  onig_set_retry_limit_in_search_of_match_param(param.get(), limits::kRegexRetryLimitInSearch);
  onig_set_match_stack_limit_size_of_match_param(param.get(), limits::kRegexMatchStackLimit);
  const auto* begin = reinterpret_cast<const OnigUChar*>(text.data());
  const auto* end = begin + text.size();
  // As the onig crate's find_iter: search from the end of the last match; an empty match right where the last one
  // ended is skipped by moving one character on.
  size_t last_end = 0;
  bool has_last_match = false;
  size_t last_match_end = 0;
  while (last_end <= text.size()) {
    onig_region_clear(region);
    const int rc =
        onig_search_with_param(regex, begin, end, begin + last_end, end, region, ONIG_OPTION_NONE, param.get());
    if (rc == ONIG_MISMATCH) break;
    if (rc < 0) search_failed(rc, text.size());  // a limit, or out of memory: an error, not "no more matches"
    const auto s = static_cast<size_t>(region->beg[0]), e = static_cast<size_t>(region->end[0]);
    if (e == s && has_last_match && last_match_end == e) {
      if (last_end >= text.size()) break;
      size_t next = last_end;
      next_char(text, next);
      last_end = next;
      continue;
    }
    last_end = e;
    has_last_match = true;
    last_match_end = e;
    f(s, e);
    if (s == e && e == text.size()) break;
  }
}

std::vector<Match> RegexPattern::find_matches(std::string_view text) const {
  if (text.empty()) return {{0, 0, false}};
  std::vector<std::pair<size_t, size_t>> hits;
  for_each_match(text, [&](size_t s, size_t e) { hits.emplace_back(s, e); });
  return from_hits(text, hits);
}

}  // namespace attnprox::tok
