// Tokens for language models: UTF-8 code points or whitespace-separated words (see recur/text.hpp).
#include "recur/text.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "io/file_util.hpp"
#include "recur/error.hpp"

namespace recur {
namespace {

std::string hex_code_point(char32_t c) {
  char text[16];
  std::snprintf(text, sizeof text, "U+%04X", unsigned(c));
  return text;
}

[[noreturn]] void invalid_utf8(const std::string& source, size_t offset, const std::string& why) {
  throw Error(source + ": invalid UTF-8 at byte offset " + std::to_string(offset) + ": " + why);
}

// One code point starting at text[i]; advances i. Table 3-7 of the Unicode standard.
char32_t next_code_point(std::string_view text, size_t& i, const std::string& source) {
  const size_t start = i;
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned lead = byte(i);
  if (lead < 0x80) return char32_t(text[i++]);
  int extra;
  char32_t value, minimum;
  if ((lead & 0xE0) == 0xC0)
    extra = 1, value = lead & 0x1F, minimum = 0x80;
  else if ((lead & 0xF0) == 0xE0)
    extra = 2, value = lead & 0x0F, minimum = 0x800;
  else if ((lead & 0xF8) == 0xF0)
    extra = 3, value = lead & 0x07, minimum = 0x10000;
  else {
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02X", lead);
    invalid_utf8(source, start, std::string("byte ") + hex + " cannot start a character");
  }
  if (start + size_t(extra) >= text.size()) invalid_utf8(source, start, "the text ends inside a character");
  for (int k = 1; k <= extra; ++k) {
    const unsigned next = byte(start + size_t(k));
    if ((next & 0xC0) != 0x80) invalid_utf8(source, start + size_t(k), "expected a continuation byte");
    value = (value << 6) | (next & 0x3F);
  }
  if (value < minimum) invalid_utf8(source, start, "overlong encoding of " + hex_code_point(value));
  if (value > 0x10FFFF) invalid_utf8(source, start, "code point above U+10FFFF");
  if (value >= 0xD800 && value <= 0xDFFF) invalid_utf8(source, start, "surrogate " + hex_code_point(value));
  i = start + size_t(extra) + 1;
  return value;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

// Calls f(word) for each word of each line and f("<eos>") at each line's end. A final line without
// '\n' still counts; the empty rest after a final '\n' does not.
template <typename F>
void for_each_word(std::string_view text, F&& f) {
  size_t i = 0;
  while (i < text.size()) {
    size_t end = text.find('\n', i);
    if (end == std::string_view::npos) end = text.size();
    size_t k = i;
    while (k < end) {
      while (k < end && is_space(text[k])) ++k;
      size_t begin = k;
      while (k < end && !is_space(text[k])) ++k;
      if (k > begin) f(text.substr(begin, k - begin));
    }
    f(std::string_view(Vocabulary::end_of_sentence));
    i = end + 1;
  }
}

}  // namespace

std::string token_mode_name(TokenMode mode) { return mode == TokenMode::characters ? "chars" : "words"; }

TokenMode parse_token_mode(const std::string& name) {
  if (name == "chars" || name == "characters") return TokenMode::characters;
  if (name == "words") return TokenMode::words;
  throw Error("unknown token mode '" + name + "': expected chars or words");
}

std::vector<char32_t> decode_utf8(std::string_view text, const std::string& source) {
  std::vector<char32_t> code_points;
  code_points.reserve(text.size());
  for (size_t i = 0; i < text.size();) code_points.push_back(next_code_point(text, i, source));
  return code_points;
}

std::string encode_utf8(char32_t c) {
  std::string out;
  if (c < 0x80) {
    out += char(c);
  } else if (c < 0x800) {
    out += char(0xC0 | (c >> 6)), out += char(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += char(0xE0 | (c >> 12)), out += char(0x80 | ((c >> 6) & 0x3F)), out += char(0x80 | (c & 0x3F));
  } else {
    out += char(0xF0 | (c >> 18)), out += char(0x80 | ((c >> 12) & 0x3F));
    out += char(0x80 | ((c >> 6) & 0x3F)), out += char(0x80 | (c & 0x3F));
  }
  return out;
}

std::string read_text_file(const std::string& path) {
  const std::vector<uint8_t> bytes = io::read_file_bytes(path);
  if (bytes.empty()) throw Error(path + ": the file is empty; a language model needs text to read");
  return std::string(bytes.begin(), bytes.end());
}

Vocabulary Vocabulary::build(TokenMode mode, const std::vector<std::string_view>& texts, int64_t max_size) {
  std::vector<std::string> tokens;
  if (mode == TokenMode::characters) {
    std::vector<char32_t> seen;
    for (size_t t = 0; t < texts.size(); ++t) {
      std::vector<char32_t> cps = decode_utf8(texts[t], "text " + std::to_string(t));
      seen.insert(seen.end(), cps.begin(), cps.end());
      std::sort(seen.begin(), seen.end());
      seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
    }
    for (char32_t c : seen) tokens.push_back(encode_utf8(c));
    return from_tokens(mode, std::move(tokens));
  }
  if (max_size != 0 && max_size < 3)
    throw Error("vocabulary limit " + std::to_string(max_size) +
                " is too small: <unk>, <eos> and a word need 3");
  std::map<std::string, int64_t, std::less<>> counts;
  for (std::string_view text : texts)
    for_each_word(text, [&](std::string_view word) {
      auto it = counts.find(word);
      if (it == counts.end())
        counts.emplace(std::string(word), 1);
      else
        ++it->second;
    });
  counts.erase(unknown_word);
  counts.erase(end_of_sentence);
  std::vector<std::pair<std::string, int64_t>> sorted(counts.begin(), counts.end());
  std::stable_sort(sorted.begin(), sorted.end(), [](auto& a, auto& b) { return a.second > b.second; });
  tokens = {unknown_word, end_of_sentence};
  for (auto& [word, count] : sorted) {
    if (max_size != 0 && int64_t(tokens.size()) >= max_size) break;
    tokens.push_back(word);
  }
  return from_tokens(mode, std::move(tokens));
}

Vocabulary Vocabulary::from_tokens(TokenMode mode, std::vector<std::string> tokens) {
  Vocabulary v;
  v.mode_ = mode;
  v.tokens_ = std::move(tokens);
  if (v.tokens_.empty()) throw Error("vocabulary: no tokens");
  if (v.tokens_.size() > size_t(INT32_MAX)) throw Error("vocabulary: more than 2^31 - 1 tokens");
  for (size_t i = 0; i < v.tokens_.size(); ++i) {
    const std::string& token = v.tokens_[i];
    if (!v.index_.emplace(token, int32_t(i)).second) throw Error("vocabulary: token '" + token + "' repeats");
    if (mode == TokenMode::characters) {
      std::vector<char32_t> cps = decode_utf8(token, "vocabulary token " + std::to_string(i));
      if (cps.size() != 1)
        throw Error("vocabulary token " + std::to_string(i) + " '" + token + "' is not one character");
      v.char_index_.emplace(cps[0], int32_t(i));
    }
  }
  if (mode == TokenMode::words && (v.find(unknown_word) < 0 || v.find(end_of_sentence) < 0))
    throw Error("word vocabulary: lacks <unk> or <eos>");
  return v;
}

const std::string& Vocabulary::token(int32_t id) const {
  if (id < 0 || id >= int32_t(tokens_.size()))
    throw Error("token id " + std::to_string(id) + " outside the vocabulary of " + std::to_string(size()));
  return tokens_[size_t(id)];
}

int32_t Vocabulary::find(std::string_view token) const {
  auto it = index_.find(std::string(token));
  return it == index_.end() ? -1 : it->second;
}

std::vector<int32_t> Vocabulary::encode(std::string_view text, const std::string& source) const {
  std::vector<int32_t> ids;
  if (mode_ == TokenMode::characters) {
    ids.reserve(text.size());
    for (size_t i = 0; i < text.size();) {
      const size_t offset = i;
      const char32_t c = next_code_point(text, i, source);
      auto it = char_index_.find(c);
      if (it == char_index_.end())
        throw Error(source + ": character " + hex_code_point(c) + " at byte offset " +
                    std::to_string(offset) + " is not in the model's vocabulary of " +
                    std::to_string(size()) + " characters");
      ids.push_back(it->second);
    }
    return ids;
  }
  const int32_t unknown = find(unknown_word);
  for_each_word(text, [&](std::string_view word) {
    const int32_t id = find(word);
    ids.push_back(id < 0 ? unknown : id);
  });
  return ids;
}

std::string Vocabulary::decode(int32_t id) const {
  const std::string& text = token(id);
  if (mode_ == TokenMode::characters) return text;
  return text == end_of_sentence ? "\n" : text + " ";
}

std::string Vocabulary::to_json() const { return nlohmann::json(tokens_).dump(); }

Vocabulary Vocabulary::from_json(TokenMode mode, const std::string& json, const std::string& source) {
  try {
    return from_tokens(mode, nlohmann::json::parse(json).get<std::vector<std::string>>());
  } catch (const nlohmann::json::exception& e) {
    throw Error(source + ": vocabulary is not a JSON array of strings: " + e.what());
  }
}

}  // namespace recur
