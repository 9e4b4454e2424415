// Added tokens (see added_vocabulary.hpp), ported from HF tokenizers' added_vocabulary.rs.
#include "added_vocabulary.hpp"

namespace attnprox::tok {

void AddedVocabulary::Trie::insert(const std::string& key, int token) {
  uint32_t node = 0;
  for (unsigned char b : key) {
    auto it = nodes[node].children.find(b);
    if (it == nodes[node].children.end()) {
      nodes.push_back(Node{});
      it = nodes[node].children.emplace(b, static_cast<uint32_t>(nodes.size() - 1)).first;
    }
    node = it->second;
  }
  nodes[node].token = token;
  first_byte[static_cast<unsigned char>(key[0])] = true;
}

AddedVocabulary::AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer)
    : tokens_(std::move(tokens)) {
  for (size_t k = 0; k < tokens_.size(); ++k) {
    const AddedToken& t = tokens_[k];
    by_id_[t.id] = k;
    by_content_[t.content] = t.id;
    if (t.content.empty()) continue;
    if (t.normalized) {
      std::string key = t.content;
      if (normalizer) {
        NormalizedString s(t.content);
        normalizer->normalize(s);
        key = s.get();
        if (key != t.content) normalized_forms_[t.id] = key;
      }
      if (!key.empty()) normalized_.insert(key, static_cast<int>(k));
    } else {
      raw_.insert(t.content, static_cast<int>(k));
    }
  }
}

const AddedToken* AddedVocabulary::find(uint32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

const std::string* AddedVocabulary::decoded_form(uint32_t id) const {
  auto normalized = normalized_forms_.find(id);
  if (normalized != normalized_forms_.end()) return &normalized->second;
  const AddedToken* t = find(id);
  return t ? &t->content : nullptr;
}

std::optional<uint32_t> AddedVocabulary::id_of(const std::string& content) const {
  auto it = by_content_.find(content);
  if (it == by_content_.end()) return std::nullopt;
  return it->second;
}

bool AddedVocabulary::is_special(uint32_t id) const {
  const AddedToken* t = find(id);
  return t && t->special;
}

namespace {
// HF uses Rust regex for these: \w$ , ^\w , ^\s* , \s*$.
bool ends_with_word(std::string_view s) {
  if (s.empty()) return false;
  size_t last = s.size() - 1;
  while (last > 0 && (static_cast<unsigned char>(s[last]) & 0xC0) == 0x80) --last;
  size_t pos = last;
  return is_word_char(next_char(s, pos));
}
bool starts_with_word(std::string_view s) {
  if (s.empty()) return false;
  size_t pos = 0;
  return is_word_char(next_char(s, pos));
}
size_t space_leftmost_at_end(std::string_view s) {  // start of the trailing whitespace
  size_t end = s.size();
  while (end > 0) {
    size_t start = end - 1;
    while (start > 0 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80) --start;
    size_t pos = start;
    if (!is_whitespace(next_char(s, pos))) break;
    end = start;
  }
  return end;
}
size_t space_rightmost_at_start(std::string_view s) {  // end of the leading whitespace
  size_t pos = 0;
  while (pos < s.size()) {
    size_t next = pos;
    if (!is_whitespace(next_char(s, next))) break;
    pos = next;
  }
  return pos;
}
}  // namespace

std::vector<std::pair<int, Offsets>> AddedVocabulary::find_matches(const std::string& text, const Trie& trie) const {
  if (text.empty()) return {{-1, {0, 0}}};
  if (trie.empty()) return {{-1, {0, text.size()}}};
  std::vector<std::pair<int, Offsets>> splits;
  size_t start_offset = 0;
  size_t i = 0;
  while (i < text.size()) {
    // Leftmost-longest: the first position where some token starts, the longest token there.
    if (!trie.first_byte[static_cast<unsigned char>(text[i])]) {
      ++i;
      continue;
    }
    int best = -1;
    size_t best_end = 0;
    uint32_t node = 0;
    for (size_t j = i; j < text.size(); ++j) {
      auto it = trie.nodes[node].children.find(static_cast<unsigned char>(text[j]));
      if (it == trie.nodes[node].children.end()) break;
      node = it->second;
      if (trie.nodes[node].token >= 0) {
        best = trie.nodes[node].token;
        best_end = j + 1;
      }
    }
    if (best < 0) {
      ++i;
      continue;
    }
    size_t start = i, stop = best_end;
    i = best_end;  // the search goes on after this match, whether it is kept or not
    const AddedToken& token = tokens_[static_cast<size_t>(best)];
    if (token.single_word) {
      const bool start_space = start == 0 || !ends_with_word(std::string_view(text).substr(0, start));
      const bool stop_space = stop == text.size() || !starts_with_word(std::string_view(text).substr(stop));
      if (!start_space || !stop_space) continue;
    }
    if (token.lstrip) start = std::max(space_leftmost_at_end(std::string_view(text).substr(0, start)), start_offset);
    if (token.rstrip) stop += space_rightmost_at_start(std::string_view(text).substr(stop));
    if (start_offset < start) splits.push_back({-1, {start_offset, start}});
    splits.push_back({best, {start, stop}});
    start_offset = stop;
    i = std::max(i, stop);
  }
  if (start_offset != text.size()) splits.push_back({-1, {start_offset, text.size()}});
  return splits;
}

void AddedVocabulary::split_with(PreTokenizedString& s, const Trie& trie, const Normalizer* normalizer) const {
  s.split([&](NormalizedString&& piece, std::vector<Split>& out) {
    if (normalizer) normalizer->normalize(piece);
    for (const auto& [token, range] : find_matches(piece.get(), trie)) {
      auto part = piece.slice(range.first, range.second);
      if (!part) continue;
      if (token >= 0) {
        Token t{tokens_[static_cast<size_t>(token)].id, {0, part->size()}, part->get()};
        out.push_back({std::move(*part), std::vector<Token>{std::move(t)}});
      } else {
        out.push_back({std::move(*part), std::nullopt});
      }
    }
  });
}

void AddedVocabulary::extract_and_normalize(PreTokenizedString& s, const Normalizer* normalizer) const {
  split_with(s, raw_, nullptr);
  split_with(s, normalized_, normalizer);
}

}  // namespace attnprox::tok
