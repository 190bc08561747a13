// Tokens: UTF-8 code points (invalid input names its byte offset) and PTB-style words.
#include <gtest/gtest.h>

#include "recur/error.hpp"
#include "recur/text.hpp"

namespace recur {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(TrainText, Utf8RoundTripsEveryLength) {
  const std::vector<char32_t> code_points{U'a', U'\u00e9', U'\u20ac', U'\U0001F600', U'\n', U'\U0010FFFF'};
  std::string text;
  for (char32_t c : code_points) text += encode_utf8(c);
  EXPECT_EQ(text.size(), 1u + 2 + 3 + 4 + 1 + 4);
  EXPECT_EQ(decode_utf8(text, "t"), code_points);
  EXPECT_EQ(text.substr(1, 2), "\xC3\xA9");  // é, as any UTF-8 encoder writes it
}

TEST(TrainText, InvalidUtf8NamesTheByteOffset) {
  EXPECT_NE(error_of([] { decode_utf8("abc\xC3(", "f.txt"); }).find("f.txt: invalid UTF-8 at byte offset 4"),
            std::string::npos);
  EXPECT_NE(error_of([] { decode_utf8("ab\xFFz", "f"); }).find("byte offset 2"), std::string::npos);
  EXPECT_NE(error_of([] { decode_utf8("a\xC0\xAF", "f"); }).find("byte offset 1: overlong"),
            std::string::npos);
  EXPECT_NE(error_of([] { decode_utf8("\xED\xA0\x80", "f"); }).find("surrogate"), std::string::npos);
  EXPECT_NE(error_of([] { decode_utf8("xy\xE2\x82", "f"); }).find("byte offset 2: the text ends"),
            std::string::npos);
  EXPECT_NE(error_of([] { decode_utf8("\xF4\x90\x80\x80", "f"); }).find("above U+10FFFF"), std::string::npos);
}

TEST(TrainText, CharacterVocabularyIsSortedAndRejectsUnseenCharacters) {
  const Vocabulary v = Vocabulary::build(TokenMode::characters, {"hello", "h\u00e9"});
  EXPECT_EQ(v.tokens(), (std::vector<std::string>{"e", "h", "l", "o", "\u00e9"}));
  EXPECT_EQ(v.encode("hell\u00e9", "s"), (std::vector<int32_t>{1, 0, 2, 2, 4}));
  EXPECT_NE(error_of([&] { v.encode("hex", "s"); }).find("U+0078 at byte offset 2"), std::string::npos);
  const Vocabulary back = Vocabulary::from_json(TokenMode::characters, v.to_json(), "meta");
  EXPECT_EQ(back.tokens(), v.tokens());
}

TEST(TrainText, WordsFollowThePtbConvention) {
  const std::string text = " the cat sat \n the dog\n\nthe cat";
  const Vocabulary all = Vocabulary::build(TokenMode::words, {text});
  // Counts: the 3, cat 2, sat 1, dog 1 (ties: alphabetical); <eos> after each of the 4 lines.
  EXPECT_EQ(all.tokens(), (std::vector<std::string>{"<unk>", "<eos>", "the", "cat", "dog", "sat"}));
  const auto ids = all.encode(text, "t");
  EXPECT_EQ(ids, (std::vector<int32_t>{2, 3, 5, 1, 2, 4, 1, 1, 2, 3, 1}));
  const Vocabulary limited = Vocabulary::build(TokenMode::words, {text}, 4);
  EXPECT_EQ(limited.size(), 4);
  EXPECT_EQ(limited.encode("the dog <unk>\n", "t"), (std::vector<int32_t>{2, 0, 0, 1}));
  EXPECT_EQ(limited.decode(1), "\n");
  EXPECT_EQ(limited.decode(2), "the ");
  EXPECT_THROW(Vocabulary::build(TokenMode::words, {text}, 2), Error);
}

TEST(TrainText, MissingAndEmptyFilesAreErrors) {
  EXPECT_NE(error_of([] { read_text_file("/nonexistent/recur.txt"); }).find("/nonexistent/recur.txt"),
            std::string::npos);
  EXPECT_NE(error_of([] { read_text_file("/dev/null"); }).find("empty"), std::string::npos);
}

}  // namespace
}  // namespace recur
