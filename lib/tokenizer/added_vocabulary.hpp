// Added tokens (special tokens and tokens added on top of the model's vocabulary): found in the text before the
// model runs, leftmost-longest, with HF's single_word / lstrip / rstrip / normalized rules.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "components.hpp"

namespace attnprox::tok {

struct AddedToken {
  uint32_t id;
  std::string content;
  bool single_word = false, lstrip = false, rstrip = false, normalized = false, special = false;
};

class AddedVocabulary {
 public:
  AddedVocabulary() = default;
  /// `normalizer` (may be null) gives the normalized form of tokens marked `normalized`.
  AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer* normalizer);

  /// HF's extract_and_normalize: splits out tokens matching the raw text, normalizes the rest, then splits out
  /// tokens matching the normalized text.
  void extract_and_normalize(PreTokenizedString& s, const Normalizer* normalizer) const;

  const AddedToken* find(uint32_t id) const;
  /// The string decoding shows for an added token: its normalized form when it is matched normalized (HF's
  /// simple_id_to_token), else its content.
  const std::string* decoded_form(uint32_t id) const;
  std::optional<uint32_t> id_of(const std::string& content) const;
  bool is_special(uint32_t id) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  /// A byte trie over token contents, for leftmost-longest matching.
  struct Trie {
    struct Node {
      std::unordered_map<unsigned char, uint32_t> children;
      int token = -1;  // index into tokens_
    };
    std::vector<Node> nodes{Node{}};
    bool first_byte[256] = {};
    bool empty() const { return nodes.size() == 1; }
    void insert(const std::string& key, int token);
  };

  /// (token index or -1, [start, end)) pieces covering `text`.
  std::vector<std::pair<int, Offsets>> find_matches(const std::string& text, const Trie& trie) const;
  void split_with(PreTokenizedString& s, const Trie& trie, const Normalizer* normalizer) const;

  std::vector<AddedToken> tokens_;
  std::unordered_map<uint32_t, size_t> by_id_;
  std::unordered_map<std::string, uint32_t> by_content_;
  std::unordered_map<uint32_t, std::string> normalized_forms_;
  Trie raw_, normalized_;
};

}  // namespace attnprox::tok
