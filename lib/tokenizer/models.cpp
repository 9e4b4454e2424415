// Models (HF tokenizers' models/*): BPE (with byte fallback, unknown tokens, affixes, ignore_merges and a
// per-thread word cache), WordPiece (greedy longest match) and WordLevel (whole-piece lookup).
#include <algorithm>
#include <atomic>
#include <queue>
#include <unordered_map>

#include "../common/limits.hpp"
#include "attnprox/error.hpp"
#include "tokenizer_json.hpp"

namespace attnprox::tok {

namespace {

/// Vocabulary both ways. Ids are usually dense (0..V-1) and kept in a vector; an id far beyond the number of
/// entries (a malformed or unusual file) goes to a map instead of sizing the vector by it.
struct Vocab {
  std::unordered_map<std::string, uint32_t> ids;
  std::vector<std::string> tokens;  // by id; empty where no token has that id
  std::vector<uint8_t> present;
  std::unordered_map<uint32_t, std::string> sparse;

  void add(const std::string& token, uint32_t id) {
    ids[token] = id;
    if (id >= tokens.size() + 4 * ids.size() + 65536) {
      sparse[id] = token;
      return;
    }
    if (id >= tokens.size()) {
      tokens.resize(id + 1);
      present.resize(id + 1, 0);
    }
    tokens[id] = token;
    present[id] = 1;
  }
  std::optional<uint32_t> find(std::string_view token) const {
    auto it = ids.find(std::string(token));
    if (it == ids.end()) return std::nullopt;
    return it->second;
  }
  const std::string* token(uint32_t id) const {
    if (id < tokens.size()) return present[id] ? &tokens[id] : nullptr;
    auto it = sparse.find(id);
    return it == sparse.end() ? nullptr : &it->second;
  }
};

Vocab read_vocab(const Json& j, const std::string& where) {
  if (!j.is_object()) bad_json(where, "expected an object of token → id");
  if (j.size() > limits::kMaxVocabulary) {
    bad_json(where, std::to_string(j.size()) + " tokens, more than the " + std::to_string(limits::kMaxVocabulary) +
                        " allowed");
  }
  Vocab vocab;
  vocab.ids.reserve(j.size());
  for (const auto& [token, id] : j.items()) {
    if (!id.is_number_unsigned() || id.get<uint64_t>() > 0xFFFFFFFFu) {
      bad_json(where + "[\"" + token + "\"]", "expected a non-negative integer id");
    }
    vocab.add(token, id.get<uint32_t>());
  }
  return vocab;
}

class BPE : public Model {
 public:
  struct Options {
    std::optional<std::string> unk_token, continuing_subword_prefix, end_of_word_suffix;
    bool fuse_unk = false, byte_fallback = false, ignore_merges = false;
  };

  BPE(Vocab vocab, const std::vector<std::pair<std::string, std::string>>& merges, Options options,
      const std::string& where)
      : vocab_(std::move(vocab)), options_(std::move(options)), cache_id_(next_cache_id()) {
    const size_t prefix = options_.continuing_subword_prefix ? options_.continuing_subword_prefix->size() : 0;
    merges_.reserve(merges.size());
    for (size_t rank = 0; rank < merges.size(); ++rank) {
      const auto& [a, b] = merges[rank];
      auto a_id = vocab_.find(a), b_id = vocab_.find(b);
      if (!a_id || !b_id) {
        bad_json(where + ".merges[" + std::to_string(rank) + "]",
                 "merge \"" + a + " " + b + "\" uses a token that is not in the vocabulary");
      }
      std::string merged = a + b.substr(std::min(prefix, b.size()));
      auto new_id = vocab_.find(merged);
      if (!new_id) {
        bad_json(where + ".merges[" + std::to_string(rank) + "]",
                 "the merge of \"" + a + " " + b + "\" is not in the vocabulary");
      }
      merges_.emplace(key(*a_id, *b_id), std::make_pair(static_cast<uint32_t>(rank), *new_id));
    }
    if (options_.unk_token && !vocab_.find(*options_.unk_token)) {
      bad_json(where + ".unk_token", "\"" + *options_.unk_token + "\" is not in the vocabulary");
    }
  }

  void tokenize(std::string_view piece, std::vector<Token>& out) const override {
    if (piece.empty()) return;
    if (options_.ignore_merges) {
      if (auto id = vocab_.find(piece)) {
        out.push_back({*id, {0, piece.size()}, {}});
        return;
      }
    }
    const Word* word = cached(piece);
    Word fresh;
    if (!word) {
      fresh = merge_word(piece);
      word = &fresh;
      store(piece, fresh);
    }
    size_t offset = 0;
    for (const auto& [id, length] : *word) {
      out.push_back({id, {offset, offset + length}, {}});
      offset += length;
    }
  }

  std::optional<uint32_t> token_to_id(std::string_view token) const override { return vocab_.find(token); }
  const std::string* id_to_token(uint32_t id) const override { return vocab_.token(id); }
  size_t vocab_size() const override { return vocab_.ids.size(); }

 private:
  using Word = std::vector<std::pair<uint32_t, uint32_t>>;  // (id, byte length)
  static constexpr size_t kCacheCapacity = 10000, kMaxCachedLength = 256;

  static uint64_t key(uint32_t a, uint32_t b) { return (static_cast<uint64_t>(a) << 32) | b; }
  static uint64_t next_cache_id() {
    static std::atomic<uint64_t> counter{0};
    return ++counter;
  }

  struct Symbol {
    uint32_t id;
    long prev, next;
    size_t length;
  };

  /// The characters of a piece as initial symbols, then every merge by rank (HF's Word::merge_all).
  Word merge_word(std::string_view w) const {
    std::vector<Symbol> symbols;
    symbols.reserve(w.size());
    auto add = [&](uint32_t id, size_t length) {
      const long index = static_cast<long>(symbols.size());
      if (!symbols.empty()) symbols.back().next = index;
      symbols.push_back({id, index - 1, -1, length});
    };
    bool has_unk = false;  // a pending unknown token (id, byte length)
    uint32_t unk_id = 0;
    size_t unk_length = 0;
    std::string buffer;
    for (size_t pos = 0; pos < w.size();) {
      const size_t start = pos;
      next_char(w, pos);
      const size_t length = pos - start;
      const bool first = start == 0, last = pos == w.size();
      std::string_view s = w.substr(start, length);
      if ((!first && options_.continuing_subword_prefix) || (last && options_.end_of_word_suffix)) {
        buffer.clear();
        if (!first && options_.continuing_subword_prefix) buffer += *options_.continuing_subword_prefix;
        buffer += s;
        if (last && options_.end_of_word_suffix) buffer += *options_.end_of_word_suffix;
        s = buffer;
      }
      if (auto id = vocab_.find(s)) {
        if (has_unk) {
          add(unk_id, unk_length);
          has_unk = false;
        }
        add(*id, length);
        continue;
      }
      if (options_.byte_fallback) {
        std::vector<uint32_t> bytes;
        bool all = true;
        for (unsigned char b : s) {
          char code[8];
          std::snprintf(code, sizeof code, "<0x%02X>", b);
          auto id = vocab_.find(code);
          if (!id) {
            all = false;
            break;
          }
          bytes.push_back(*id);
        }
        if (all) {
          for (uint32_t id : bytes) add(id, 1);
          continue;
        }
      }
      if (options_.unk_token) {
        if (has_unk && options_.fuse_unk) {
          unk_length += length;
        } else {
          if (has_unk) add(unk_id, unk_length);
          has_unk = true;
          unk_id = *vocab_.find(*options_.unk_token);
          unk_length = length;
        }
      }
    }
    if (has_unk) add(unk_id, unk_length);

    struct Merge {
      size_t pos;
      uint32_t rank, new_id;
      bool operator<(const Merge& other) const {  // min-heap on (rank, pos)
        return rank != other.rank ? rank > other.rank : pos > other.pos;
      }
    };
    std::priority_queue<Merge> queue;
    for (size_t i = 0; i + 1 < symbols.size(); ++i) {
      auto it = merges_.find(key(symbols[i].id, symbols[i + 1].id));
      if (it != merges_.end()) queue.push({i, it->second.first, it->second.second});
    }
    while (!queue.empty()) {
      const Merge top = queue.top();
      queue.pop();
      Symbol& current = symbols[top.pos];
      if (current.length == 0 || current.next == -1) continue;
      const auto next_pos = static_cast<size_t>(current.next);
      const Symbol right = symbols[next_pos];
      auto valid = merges_.find(key(current.id, right.id));
      if (valid == merges_.end() || valid->second.second != top.new_id) continue;  // an expired entry
      current.id = top.new_id;
      current.length += right.length;
      current.next = right.next;
      symbols[next_pos].length = 0;
      if (right.next > -1 && static_cast<size_t>(right.next) < symbols.size()) {
        symbols[static_cast<size_t>(right.next)].prev = static_cast<long>(top.pos);
      }
      if (current.prev >= 0) {
        auto it = merges_.find(key(symbols[static_cast<size_t>(current.prev)].id, current.id));
        if (it != merges_.end()) queue.push({static_cast<size_t>(current.prev), it->second.first, it->second.second});
      }
      const auto next = static_cast<size_t>(current.next);
      if (current.next >= 0 && next < symbols.size()) {
        auto it = merges_.find(key(current.id, symbols[next].id));
        if (it != merges_.end()) queue.push({top.pos, it->second.first, it->second.second});
      }
    }
    Word word;
    for (const Symbol& s : symbols) {
      if (s.length) word.emplace_back(s.id, static_cast<uint32_t>(s.length));
    }
    return word;
  }

  /// Each thread keeps its own cache per BPE model (no locks on the hot path).
  using Cache = std::unordered_map<std::string, Word>;
  Cache& local_cache() const {
    thread_local std::unordered_map<uint64_t, Cache> caches;
    if (caches.size() > 16 && !caches.count(cache_id_)) caches.clear();  // models come and go: bound the memory
    return caches[cache_id_];
  }
  const Word* cached(std::string_view piece) const {
    Cache& cache = local_cache();
    auto it = cache.find(std::string(piece));
    return it == cache.end() ? nullptr : &it->second;
  }
  void store(std::string_view piece, const Word& word) const {
    if (piece.size() >= kMaxCachedLength) return;
    Cache& cache = local_cache();
    if (cache.size() < kCacheCapacity) cache.emplace(std::string(piece), word);
  }

  Vocab vocab_;
  std::unordered_map<uint64_t, std::pair<uint32_t, uint32_t>> merges_;  // (a, b) → (rank, merged id)
  Options options_;
  uint64_t cache_id_;
};

class WordPiece : public Model {
 public:
  WordPiece(Vocab vocab, std::string unk_token, std::string prefix, size_t max_chars, const std::string& where)
      : vocab_(std::move(vocab)), unk_token_(std::move(unk_token)), prefix_(std::move(prefix)), max_chars_(max_chars) {
    auto unk = vocab_.find(unk_token_);
    if (!unk) bad_json(where + ".unk_token", "\"" + unk_token_ + "\" is not in the vocabulary");
    unk_id_ = *unk;
    for (const auto& entry : vocab_.ids) longest_ = std::max(longest_, entry.first.size());
  }

  void tokenize(std::string_view piece, std::vector<Token>& out) const override {
    if (piece.empty()) return;
    if (char_count(piece) > max_chars_) {
      out.push_back({unk_id_, {0, piece.size()}, {}});
      return;
    }
    const size_t first = out.size();
    std::string candidate;
    for (size_t start = 0; start < piece.size();) {
      // No candidate longer than the longest token can match: a word costs (its length) x (that length), not the
      // cube of its length.
      const size_t affix = start > 0 ? prefix_.size() : 0;
      const size_t room = longest_ > affix ? longest_ - affix : 0;
      size_t end = piece.size() - start > room ? start + room : piece.size();
      while (end > start && end < piece.size() && (static_cast<unsigned char>(piece[end]) & 0xC0) == 0x80) --end;
      bool found = false;
      while (start < end) {
        candidate.clear();
        if (start > 0) candidate += prefix_;
        candidate += piece.substr(start, end - start);
        if (auto id = vocab_.find(candidate)) {
          out.push_back({*id, {start, end}, {}});
          found = true;
          break;
        }
        // Drop the last character.
        size_t last = end - 1;
        while (last > start && (static_cast<unsigned char>(piece[last]) & 0xC0) == 0x80) --last;
        end = last;
      }
      if (!found) {
        out.resize(first);
        out.push_back({unk_id_, {0, piece.size()}, {}});
        return;
      }
      start = end;
    }
  }

  std::optional<uint32_t> token_to_id(std::string_view token) const override { return vocab_.find(token); }
  const std::string* id_to_token(uint32_t id) const override { return vocab_.token(id); }
  size_t vocab_size() const override { return vocab_.ids.size(); }

 private:
  Vocab vocab_;
  std::string unk_token_, prefix_;
  size_t max_chars_;
  uint32_t unk_id_ = 0;
  size_t longest_ = 0;  // bytes of the longest token
};

class WordLevel : public Model {
 public:
  WordLevel(Vocab vocab, std::string unk_token) : vocab_(std::move(vocab)), unk_token_(std::move(unk_token)) {}
  void tokenize(std::string_view piece, std::vector<Token>& out) const override {
    if (auto id = vocab_.find(piece)) {
      out.push_back({*id, {0, piece.size()}, {}});
    } else if (auto unk = vocab_.find(unk_token_)) {
      out.push_back({*unk, {0, piece.size()}, {}});
    } else {
      throw Error(ErrorCode::kInvalidArgument, "WordLevel: \"" + std::string(piece) +
                                                   "\" is not in the vocabulary and the unknown token \"" + unk_token_ +
                                                   "\" is not either");
    }
  }
  std::optional<uint32_t> token_to_id(std::string_view token) const override { return vocab_.find(token); }
  const std::string* id_to_token(uint32_t id) const override { return vocab_.token(id); }
  size_t vocab_size() const override { return vocab_.ids.size(); }

 private:
  Vocab vocab_;
  std::string unk_token_;
};

std::optional<std::string> optional_string(const Json& j, const char* key, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return std::nullopt;
  return string_member(j, key, where);
}

std::vector<std::pair<std::string, std::string>> read_merges(const Json& j, const std::string& where) {
  if (!j.is_array()) bad_json(where, "expected a list of merges");
  if (j.size() > limits::kMaxMerges) {
    bad_json(where, std::to_string(j.size()) + " merges, more than the " + std::to_string(limits::kMaxMerges) +
                        " allowed");
  }
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(j.size());
  for (size_t k = 0; k < j.size(); ++k) {
    const Json& m = j[k];
    if (m.is_string()) {
      const std::string text = m.get<std::string>();
      const size_t space = text.find(' ');
      if (space == std::string::npos || text.find(' ', space + 1) != std::string::npos) {
        bad_json(where + "[" + std::to_string(k) + "]", "expected \"a b\", found \"" + text + "\"");
      }
      merges.emplace_back(text.substr(0, space), text.substr(space + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      bad_json(where + "[" + std::to_string(k) + "]", "expected \"a b\" or [\"a\", \"b\"]");
    }
  }
  return merges;
}

}  // namespace

std::unique_ptr<Model> make_model(const Json& j, const std::string& where) {
  if (!j.is_object()) bad_json(where, "expected an object");
  std::string type;
  if (j.contains("type")) {
    type = type_of(j, where);
  } else if (j.contains("merges")) {
    type = "BPE";  // old files leave the type out
  } else if (j.contains("continuing_subword_prefix") || j.contains("max_input_chars_per_word")) {
    type = "WordPiece";
  } else {
    type = "WordLevel";
  }
  if (type == "BPE") {
    if (j.contains("dropout") && !j["dropout"].is_null()) {
      if (!j["dropout"].is_number()) bad_json(where + ".dropout", "expected a number or null");
    }
    if (j.contains("dropout") && j["dropout"].is_number() && j["dropout"].get<double>() != 0.0) {
      throw Error(ErrorCode::kUnsupported, where + ": BPE dropout is random; attnprox encodes deterministically");
    }
    BPE::Options options;
    options.unk_token = optional_string(j, "unk_token", where);
    options.continuing_subword_prefix = optional_string(j, "continuing_subword_prefix", where);
    options.end_of_word_suffix = optional_string(j, "end_of_word_suffix", where);
    if (options.continuing_subword_prefix && options.continuing_subword_prefix->empty()) {
      options.continuing_subword_prefix.reset();
    }
    if (options.end_of_word_suffix && options.end_of_word_suffix->empty()) options.end_of_word_suffix.reset();
    options.fuse_unk = bool_or(j, "fuse_unk", false, where);
    options.byte_fallback = bool_or(j, "byte_fallback", false, where);
    options.ignore_merges = bool_or(j, "ignore_merges", false, where);
    return std::make_unique<BPE>(read_vocab(member(j, "vocab", where), where + ".vocab"),
                                 read_merges(member(j, "merges", where), where + ".merges"), std::move(options), where);
  }
  if (type == "WordPiece") {
    const Json& max = j.contains("max_input_chars_per_word") ? j["max_input_chars_per_word"] : Json(100);
    if (!max.is_number_unsigned() || max.get<uint64_t>() > limits::kMaxWordPieceChars) {
      bad_json(where + ".max_input_chars_per_word",
               "expected an integer in 0.." + std::to_string(limits::kMaxWordPieceChars));
    }
    return std::make_unique<WordPiece>(
        read_vocab(member(j, "vocab", where), where + ".vocab"), string_or(j, "unk_token", "[UNK]", where),
        string_or(j, "continuing_subword_prefix", "##", where), max.get<size_t>(), where);
  }
  if (type == "WordLevel") {
    return std::make_unique<WordLevel>(read_vocab(member(j, "vocab", where), where + ".vocab"),
                                       string_or(j, "unk_token", "<unk>", where));
  }
  throw Error(ErrorCode::kUnsupported,
              where + ": model type \"" + type + "\" is not supported (BPE, WordPiece, WordLevel)");
}

/// BPE from a GPT-2 style vocabulary (JSON object) and merges (text, one "a b" a line, "#version" lines skipped).
std::unique_ptr<Model> bpe_from_files(const Json& vocab, const std::string& merges_text, const std::string& where) {
  std::vector<std::pair<std::string, std::string>> merges;
  size_t line_number = 0;
  for (size_t start = 0; start < merges_text.size();) {
    size_t end = merges_text.find('\n', start);
    if (end == std::string::npos) end = merges_text.size();
    std::string line = merges_text.substr(start, end - start);
    start = end + 1;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("#version", 0) == 0) continue;
    if (line.empty() && start >= merges_text.size()) break;  // a final newline
    const size_t space = line.find(' ');
    if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos) {
      bad_json(where + " line " + std::to_string(line_number), "expected \"a b\", found \"" + line + "\"");
    }
    merges.emplace_back(line.substr(0, space), line.substr(space + 1));
    if (merges.size() > limits::kMaxMerges) {
      bad_json(where, "more than the " + std::to_string(limits::kMaxMerges) + " merges allowed");
    }
  }
  return std::make_unique<BPE>(read_vocab(vocab, where + " (vocabulary)"), merges, BPE::Options{}, where);
}

/// WordPiece from a vocab.txt (one token a line, id = line number).
std::unique_ptr<Model> wordpiece_from_lines(const std::vector<std::string>& lines, const std::string& where) {
  if (lines.size() > limits::kMaxVocabulary) {
    bad_json(where, std::to_string(lines.size()) + " tokens, more than the " +
                        std::to_string(limits::kMaxVocabulary) + " allowed");
  }
  Vocab vocab;
  for (size_t k = 0; k < lines.size(); ++k) vocab.add(lines[k], static_cast<uint32_t>(k));
  return std::make_unique<WordPiece>(std::move(vocab), "[UNK]", "##", 100, where);
}

}  // namespace attnprox::tok
