// NormalizedString: alignments through transformations (the expectations of HF tokenizers' own unit tests) and
// the split behaviours (HF's documented example).
#include "normalized_string.hpp"

#include <gtest/gtest.h>

#include "../expect_error.hpp"
#include "attnprox/error.hpp"

namespace attnprox::tok {
namespace {

std::vector<std::string> texts(const std::vector<NormalizedString>& pieces) {
  std::vector<std::string> out;
  for (const auto& p : pieces) out.push_back(p.get());
  return out;
}

TEST(NormalizedString, NfdAddsCharactersAlignedToTheirSource) {
  NormalizedString n("élégant");
  n.normalize(NormalForm::kNFD);
  const std::vector<Offsets> want = {{0, 2}, {0, 2}, {0, 2}, {2, 3}, {3, 5}, {3, 5},
                                     {3, 5}, {5, 6}, {6, 7}, {7, 8}, {8, 9}};
  EXPECT_EQ(n.alignments(), want);
}

TEST(NormalizedString, FilteringKeepsTheSourceOfWhatRemains) {
  NormalizedString n("élégant");
  n.normalize(NormalForm::kNFD);
  n.filter([](char32_t c) { return !is_mark_nonspacing(c); });
  EXPECT_EQ(n.get(), "elegant");
  EXPECT_EQ(n.alignments(), (std::vector<Offsets>{{0, 2}, {2, 3}, {3, 5}, {5, 6}, {6, 7}, {7, 8}, {8, 9}}));

  NormalizedString m("élégant");
  m.normalize(NormalForm::kNFD);
  m.filter([](char32_t c) { return !is_mark_nonspacing(c) && c != U'n'; });
  EXPECT_EQ(m.get(), "elegat");
  EXPECT_EQ(m.alignments(), (std::vector<Offsets>{{0, 2}, {2, 3}, {3, 5}, {5, 6}, {6, 7}, {8, 9}}));
}

TEST(NormalizedString, OffsetsConvertBothWays) {
  NormalizedString n("  Hello  ");
  n.strip(true, true);
  n.lowercase();
  EXPECT_EQ(n.get(), "hello");
  EXPECT_EQ(n.normalized_to_original(0, 5), Offsets(2, 7));
  EXPECT_EQ(n.original_to_normalized(2, 7), Offsets(0, 5));
  n.prepend("_");
  EXPECT_EQ(n.get(), "_hello");
  EXPECT_EQ(n.normalized_to_original(0, 6), Offsets(2, 7));  // the prefix shares the first character's source
  auto slice = n.slice(1, 3);
  ASSERT_TRUE(slice);
  EXPECT_EQ(slice->get(), "he");
  EXPECT_EQ(slice->offsets_original(), Offsets(2, 4));
  EXPECT_FALSE(NormalizedString("é").slice(0, 1));  // inside a character
}

TEST(NormalizedString, SplitBehaviours) {
  // HF's documentation: splitting "the-final--countdown" on '-'.
  const NormalizedString n("the-final--countdown");
  const CharPattern dash([](char32_t c) { return c == U'-'; });
  using V = std::vector<std::string>;
  EXPECT_EQ(texts(n.split(dash, SplitBehavior::kRemoved)), (V{"the", "final", "countdown"}));
  EXPECT_EQ(texts(n.split(dash, SplitBehavior::kIsolated)), (V{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(texts(n.split(dash, SplitBehavior::kMergedWithPrevious)), (V{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(texts(n.split(dash, SplitBehavior::kMergedWithNext)), (V{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(texts(n.split(dash, SplitBehavior::kContiguous)), (V{"the", "-", "final", "--", "countdown"}));
  auto pieces = n.split(dash, SplitBehavior::kMergedWithNext);
  EXPECT_EQ(pieces[3].offsets_original(), Offsets(10, 20));
}

TEST(NormalizedString, ReplaceAlignsTheReplacementWithTheMatch) {
  NormalizedString n("a  b   c");
  n.replace(RegexPattern(" {2,}"), " ");
  EXPECT_EQ(n.get(), "a b c");
  EXPECT_EQ(n.normalized_to_original(2, 3), Offsets(3, 4));  // "b"
  EXPECT_EQ(n.normalized_to_original(1, 2), Offsets(2, 3));  // the new space stands for the last one it replaced
}

TEST(Patterns, RegexMatchesLikeOniguruma) {
  RegexPattern gpt2(R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)");
  std::vector<std::string> pieces;
  const std::string text = "Hello world's  123!!  ";
  for (const Match& m : gpt2.find_matches(text)) {
    EXPECT_TRUE(m.is_match);
    pieces.push_back(text.substr(m.start, m.end - m.start));
  }
  EXPECT_EQ(pieces, (std::vector<std::string>{"Hello", " world", "'s", " ", " 123", "!!", "  "}));
  testing::expect_error(ErrorCode::kInvalidArgument, "regular expression \"(unclosed\" does not compile",
                        [] { RegexPattern("(unclosed"); });
}

}  // namespace
}  // namespace attnprox::tok
