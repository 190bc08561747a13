// The long-gap language task (recur/long_gap.hpp): a country named early, G filler words, the language
// asked for at the end. Sentences come from templates; the vocabulary is every word they can produce.
#include <algorithm>
#include <map>
#include <sstream>
#include <string>

#include "recur/error.hpp"
#include "recur/long_gap.hpp"

namespace recur {
namespace {

const std::vector<std::pair<std::string, std::string>> country_language = {
    {"France", "French"},       {"Germany", "German"}, {"Spain", "Spanish"}, {"Italy", "Italian"},
    {"Portugal", "Portuguese"}, {"Greece", "Greek"},   {"Poland", "Polish"}, {"Sweden", "Swedish"},
    {"Japan", "Japanese"},      {"China", "Chinese"}};

// "{C}" is the country.
const std::vector<std::string> openings = {"I grew up in {C} .", "my family comes from {C} .",
                                           "I was born in {C} .", "we lived in {C} for years ."};
const std::vector<std::string> closings = {"so I speak fluent", "at home we always speak",
                                           "my first language is", "I dream in"};

// Filler sentences: "{D} {N} {V} {D} {A} {N} ." and "{D} {N} {V} ." with these slots.
const std::vector<std::string> determiners = {"the", "a", "my", "our", "every"};
const std::vector<std::string> nouns = {"neighbour", "teacher", "dog",    "river", "garden",  "train",
                                        "friend",    "market",  "letter", "song",  "bicycle", "winter"};
const std::vector<std::string> verbs = {"saw",        "liked",   "painted", "followed",
                                        "remembered", "carried", "left",    "found"};
const std::vector<std::string> adjectives = {"old", "small", "quiet", "red", "long", "happy", "cold"};

struct Vocabulary {
  std::vector<std::string> words;
  std::map<std::string, int32_t> ids;
  int32_t id(const std::string& w) {
    auto [it, added] = ids.emplace(w, int32_t(words.size()));
    if (added) words.push_back(w);
    return it->second;
  }
};

std::vector<std::string> split(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

const Vocabulary& vocabulary() {
  static const Vocabulary v = [] {
    Vocabulary v;
    for (const auto& list : {openings, closings})
      for (const std::string& t : list)
        for (const std::string& w : split(t))
          if (w != "{C}") v.id(w);
    for (const auto& list : {determiners, nouns, verbs, adjectives})
      for (const std::string& w : list) v.id(w);
    for (const auto& [country, language] : country_language) v.id(country), v.id(language);
    return v;
  }();
  return v;
}

int32_t word_id(const std::string& w) { return vocabulary().ids.at(w); }

const std::string& pick(const std::vector<std::string>& list, std::mt19937_64& rng) {
  return list[size_t(rng() % list.size())];
}

void append_filler_sentence(std::vector<int32_t>& out, std::mt19937_64& rng) {
  out.push_back(word_id(pick(determiners, rng)));
  out.push_back(word_id(pick(nouns, rng)));
  out.push_back(word_id(pick(verbs, rng)));
  if (rng() % 3 != 0) {
    out.push_back(word_id(pick(determiners, rng)));
    if (rng() & 1) out.push_back(word_id(pick(adjectives, rng)));
    out.push_back(word_id(pick(nouns, rng)));
  }
  out.push_back(word_id("."));
}

}  // namespace

const std::vector<std::string>& language_task_vocabulary() { return vocabulary().words; }

const std::vector<std::string>& language_task_countries() {
  static const std::vector<std::string> list = [] {
    std::vector<std::string> l;
    for (const auto& p : country_language) l.push_back(p.first);
    return l;
  }();
  return list;
}

const std::vector<std::string>& language_task_languages() {
  static const std::vector<std::string> list = [] {
    std::vector<std::string> l;
    for (const auto& p : country_language) l.push_back(p.second);
    return l;
  }();
  return list;
}

LanguageExample make_language_example(int64_t G, std::mt19937_64& rng) {
  if (G < 0) throw Error("language task: the gap G must be >= 0, got " + std::to_string(G));
  LanguageExample e;
  e.language = int32_t(rng() % country_language.size());
  for (const std::string& w : split(pick(openings, rng))) {
    if (w == "{C}") {
      e.country_position = int64_t(e.tokens.size());
      e.tokens.push_back(word_id(country_language[size_t(e.language)].first));
    } else {
      e.tokens.push_back(word_id(w));
    }
  }
  std::vector<int32_t> filler;
  while (int64_t(filler.size()) < G) append_filler_sentence(filler, rng);
  e.tokens.insert(e.tokens.end(), filler.begin(), filler.begin() + G);
  for (const std::string& w : split(pick(closings, rng))) e.tokens.push_back(word_id(w));
  return e;
}

std::string language_example_text(const LanguageExample& example, bool with_answer) {
  const std::vector<std::string>& words = language_task_vocabulary();
  std::string text;
  for (int32_t t : example.tokens) {
    if (t < 0 || size_t(t) >= words.size())
      throw Error("language task: token " + std::to_string(t) + " outside the vocabulary of " +
                  std::to_string(words.size()));
    text += (text.empty() ? "" : " ") + words[size_t(t)];
  }
  if (with_answer) text += " " + language_task_languages().at(size_t(example.language));
  return text;
}

}  // namespace recur
