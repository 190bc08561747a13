// recur sample: text from a trained language model, streamed to stdout token by token.
#include <cctype>
#include <cstdio>
#include <memory>
#include <random>
#include <string>

#include "commands.hpp"
#include "language_data.hpp"
#include "recur/error.hpp"
#include "recur/language_model.hpp"
#include "recur/runtime.hpp"
#include "recur/sampling.hpp"
#include "recur/training.hpp"

namespace recur::cli {
namespace {

struct SampleOptions {
  std::string model, prime;
  int64_t length = 500;
  SamplingOptions sampling{0.8f, 0, 1.0f};
  uint64_t seed = 1;
  int threads = 1;
};

// The priming tokens. Words: a prime that does not end a line does not end a sentence either.
std::vector<int32_t> prime_tokens(const Vocabulary& vocabulary, const std::string& prime) {
  if (prime.empty()) {  // start as after a line break
    const int32_t start =
        vocabulary.find(vocabulary.mode() == TokenMode::words ? Vocabulary::end_of_sentence : "\n");
    return {start >= 0 ? start : 0};
  }
  std::vector<int32_t> tokens = vocabulary.encode(prime, "--prime");
  if (vocabulary.mode() == TokenMode::words && prime.back() != '\n' && tokens.size() > 1) tokens.pop_back();
  return tokens;
}

void run(const SampleOptions& o) {
  set_num_threads(o.threads);
  o.sampling.validate();
  if (o.length < 0) throw Error("--length must be >= 0, got " + std::to_string(o.length));
  Vocabulary vocabulary;
  LanguageModel model = load_language_model(checkpoint_file(o.model), &vocabulary);
  LanguageModelStream stream(model);
  std::mt19937_64 rng(o.seed);
  const std::vector<int32_t> prime = prime_tokens(vocabulary, o.prime);
  std::fputs(o.prime.c_str(), stdout);
  const bool separate = vocabulary.mode() == TokenMode::words && !o.prime.empty() &&
                        !std::isspace((unsigned char)o.prime.back());
  if (separate) std::fputs(" ", stdout);  // words print as "word "
  std::span<const float> logits;
  for (int32_t token : prime) logits = stream.step(token);
  for (int64_t i = 0; i < o.length; ++i) {
    const int32_t token = sample_token(logits, o.sampling, rng);
    std::fputs(vocabulary.decode(token).c_str(), stdout);
    std::fflush(stdout);
    logits = stream.step(token);
  }
  std::fputs("\n", stdout);
}

}  // namespace

Command add_sample_command(CLI::App& app) {
  auto o = std::make_shared<SampleOptions>();
  CLI::App* sub = app.add_subcommand("sample", "Generate text from a trained language model");
  sub->add_option("--model", o->model, "checkpoint (.safetensors) or a training directory (its best)")
      ->required();
  sub->add_option("--prime", o->prime, "text to start from (printed first)");
  sub->add_option("--length", o->length, "tokens to generate")->capture_default_str();
  sub->add_option("--temperature", o->sampling.temperature, "softmax temperature; 0: always the likeliest")
      ->capture_default_str();
  sub->add_option("--top-k", o->sampling.top_k, "sample among the k likeliest tokens (0: all)");
  sub->add_option("--top-p", o->sampling.top_p, "sample among the likeliest tokens holding this probability");
  sub->add_option("--seed", o->seed, "the same seed gives the same text")->capture_default_str();
  sub->add_option("--threads", o->threads, "threads")->capture_default_str();
  return {sub, [o] { run(*o); }};
}

}  // namespace recur::cli
