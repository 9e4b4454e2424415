// UTF-8 handling and normalization with alignment changes.
#include "unicode.hpp"

#include <gtest/gtest.h>

#include "components.hpp"

namespace attnprox::tok {
namespace {

TEST(Utf8, FindsTheFirstInvalidByte) {
  EXPECT_EQ(first_invalid_utf8("plain ascii"), std::string::npos);
  EXPECT_EQ(first_invalid_utf8("caf\xC3\xA9 \xF0\x9F\x91\x8D"), std::string::npos);  // é 👍
  EXPECT_EQ(first_invalid_utf8("ab\xFF"), 2u);                                       // never valid
  EXPECT_EQ(first_invalid_utf8("a\xC3"), 1u);                                        // truncated
  EXPECT_EQ(first_invalid_utf8("a\xC0\xAF"), 1u);                                    // overlong '/'
  EXPECT_EQ(first_invalid_utf8("\xED\xA0\x80"), 0u);                                 // surrogate U+D800
  EXPECT_EQ(first_invalid_utf8("\xF4\x90\x80\x80"), 0u);                             // above U+10FFFF
  EXPECT_EQ(first_invalid_utf8("ok\xE2\x82"), 2u);                                   // truncated €
  EXPECT_EQ(first_invalid_utf8(std::string("a\0b", 3)), std::string::npos);          // NUL is a character
}

TEST(Utf8, LossyDecodingReplacesMaximalSubparts) {
  // The examples of Unicode §3.9 (Table 3-8): one U+FFFD per maximal subpart.
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(utf8_lossy("a\x80"
                       "b"),
            "a" + r + "b");
  EXPECT_EQ(utf8_lossy("\xF1\x80\x80"
                       "A"),
            r + "A");                                // a truncated 4-byte sequence: one
  EXPECT_EQ(utf8_lossy("\xC0\xAF"), r + r);          // C0 never starts anything: two
  EXPECT_EQ(utf8_lossy("\xED\xA0\x80"), r + r + r);  // surrogate: three
  EXPECT_EQ(utf8_lossy("\xE1\x80\xE2\xF0\x91\x92\xF1\xBF\x41"), r + r + r + r + "A");
  EXPECT_EQ(utf8_lossy("h\xC3\xA9llo"), "h\xC3\xA9llo");
}

TEST(Normalization, ReportsHowOutputCharactersRelateToTheInput) {
  auto nfd = normalize(U"\u00e9", NormalForm::kNFD);  // é → e + ◌́: the mark is an insertion
  ASSERT_EQ(nfd.size(), 2u);
  EXPECT_EQ(nfd[0].c, U'e');
  EXPECT_EQ(nfd[0].change, 0);
  EXPECT_EQ(nfd[1].c, U'\u0301');
  EXPECT_EQ(nfd[1].change, 1);

  auto nfc = normalize(U"e\u0301", NormalForm::kNFC);  // e + ◌́ → é, replacing e and removing the mark
  ASSERT_EQ(nfc.size(), 1u);
  EXPECT_EQ(nfc[0].c, U'\u00e9');
  EXPECT_EQ(nfc[0].change, -1);

  auto same = normalize(U"\u00e9", NormalForm::kNFC);  // already composed: a plain replacement
  ASSERT_EQ(same.size(), 1u);
  EXPECT_EQ(same[0].change, 0);

  auto fi = normalize(U"\ufb01", NormalForm::kNFKD);  // ﬁ → f i
  ASSERT_EQ(fi.size(), 2u);
  EXPECT_EQ(fi[0].c, U'f');
  EXPECT_EQ(fi[1].c, U'i');
  EXPECT_EQ(fi[1].change, 1);

  auto hangul = normalize(U"\ud55c", NormalForm::kNFD);  // 한 → ᄒ ᅡ ᆫ
  ASSERT_EQ(hangul.size(), 3u);
  EXPECT_EQ(hangul[0].c, U'\u1112');
  EXPECT_EQ(hangul[2].c, U'\u11ab');
  std::u32string jamo = {0x1112, 0x1161, 0x11AB};
  auto composed = normalize(jamo, NormalForm::kNFC);
  ASSERT_EQ(composed.size(), 1u);
  EXPECT_EQ(composed[0].c, U'\ud55c');
  EXPECT_EQ(composed[0].change, -2);

  // Canonical reordering: dot below (ccc 220) goes before acute (ccc 230), keeping its change.
  auto reordered = normalize(U"e\u0301\u0323", NormalForm::kNFD);
  ASSERT_EQ(reordered.size(), 3u);
  EXPECT_EQ(reordered[1].c, U'\u0323');
  EXPECT_EQ(reordered[2].c, U'\u0301');
}

TEST(Properties, FollowTheDefinitionsHfTokenizersUses) {
  EXPECT_TRUE(is_whitespace(U'\u3000'));
  EXPECT_TRUE(is_whitespace(U'\u0085'));
  EXPECT_FALSE(is_whitespace(U'\u200b'));  // zero-width space is not White_Space
  EXPECT_TRUE(is_word_char(U'\u200d'));    // Join_Control is \w
  EXPECT_TRUE(is_word_char(U'\u24b6'));    // Ⓐ: Other_Alphabetic
  EXPECT_FALSE(is_word_char(U'-'));
  EXPECT_TRUE(is_punctuation(U'\u00bf'));  // ¿
  EXPECT_TRUE(is_other(U'\u200b'));        // Cf
  std::vector<char32_t> lower;
  lowercase(U'\u0130', lower);  // İ → i + combining dot above
  EXPECT_EQ(lower, (std::vector<char32_t>{U'i', U'\u0307'}));
  EXPECT_EQ(byte_to_char(' '), U'\u0120');   // Ġ
  EXPECT_EQ(byte_to_char('\n'), U'\u010a');  // Ċ
  EXPECT_EQ(char_to_byte(U'\u0120'), ' ');
  EXPECT_EQ(char_to_byte(U'A'), 'A');
  EXPECT_EQ(char_to_byte(U'\u4e00'), -1);
}

}  // namespace
}  // namespace attnprox::tok
