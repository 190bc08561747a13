#pragma once
// Text as token ids, for language models.
//   characters: one token per Unicode code point (UTF-8 in; invalid UTF-8 is an error naming the byte
//               offset). The vocabulary is every code point seen, in code point order.
//   words:      tokens split on whitespace, <eos> after every line (the PTB convention: one sentence a
//               line), the most frequent words up to a limit, the rest <unk>.
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace recur {

enum class TokenMode { characters, words };

// "chars" / "words", and back (throws recur::Error naming the accepted names).
std::string token_mode_name(TokenMode mode);
TokenMode parse_token_mode(const std::string& name);

// The code points of UTF-8 text; throws recur::Error("<source>: invalid UTF-8 at byte offset N: ...").
// Rejects overlong forms, surrogates and values above U+10FFFF, as the standard asks.
std::vector<char32_t> decode_utf8(std::string_view text, const std::string& source);
std::string encode_utf8(char32_t code_point);

// The whole file; throws recur::Error naming the path if it is missing, unreadable or empty.
std::string read_text_file(const std::string& path);

class Vocabulary {
 public:
  static constexpr const char* unknown_word = "<unk>";
  static constexpr const char* end_of_sentence = "<eos>";

  Vocabulary() = default;
  // From the texts a model will see (training and validation text for characters, training text for
  // words). max_size (words only; 0 = no limit) counts <unk> and <eos>; ties in frequency go to the
  // word that sorts first, so the vocabulary does not depend on hash order.
  static Vocabulary build(TokenMode mode, const std::vector<std::string_view>& texts, int64_t max_size = 0);
  // Tokens in id order (each a UTF-8 string); throws if one repeats, or a word list lacks <unk>/<eos>.
  static Vocabulary from_tokens(TokenMode mode, std::vector<std::string> tokens);

  TokenMode mode() const { return mode_; }
  int64_t size() const { return static_cast<int64_t>(tokens_.size()); }
  const std::vector<std::string>& tokens() const { return tokens_; }
  const std::string& token(int32_t id) const;
  // The id of a token, or -1.
  int32_t find(std::string_view token) const;

  // Text -> ids. Characters: a code point outside the vocabulary is an error naming it and its byte
  // offset. Words: unknown words become <unk>; every line ends with <eos>.
  std::vector<int32_t> encode(std::string_view text, const std::string& source) const;
  // One token as text to print: a character as itself; a word followed by a space, <eos> as a newline.
  std::string decode(int32_t id) const;

  // The tokens as a JSON array of strings (for checkpoint metadata), and back.
  std::string to_json() const;
  static Vocabulary from_json(TokenMode mode, const std::string& json, const std::string& source);

 private:
  TokenMode mode_ = TokenMode::characters;
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int32_t> index_;
  std::unordered_map<char32_t, int32_t> char_index_;  // characters only
};

}  // namespace recur
