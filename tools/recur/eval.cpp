// recur eval: loss, perplexity and bits per character (or word) of a language model on a text file.
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "commands.hpp"
#include "language_data.hpp"
#include "recur/error.hpp"
#include "recur/runtime.hpp"
#include "recur/training.hpp"

namespace recur::cli {
namespace {

struct EvalOptions {
  std::string model, data;
  int64_t batch = 16, seq_len = 100;
  int threads = 0;
  bool json = false;
};

void run(const EvalOptions& o) {
  if (o.threads > 0) set_num_threads(o.threads);
  Vocabulary vocabulary;
  const std::string path = checkpoint_file(o.model);
  LanguageModel model = load_language_model(path, &vocabulary);
  const std::vector<int32_t> tokens = vocabulary.encode(read_text_file(o.data), o.data);
  const double loss = evaluate_tokens(model, tokens, o.batch, o.seq_len);
  const bool chars = vocabulary.mode() == TokenMode::characters;
  const double bits = loss / std::log(2.0), perplexity = std::exp(loss);
  if (o.json) {
    nlohmann::json j = {{"model", path},
                        {"data", o.data},
                        {"tokens", tokens.size()},
                        {"loss", loss},
                        {"perplexity", perplexity}};
    j[chars ? "bits_per_char" : "bits_per_word"] = bits;
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("%s on %s: %zu %s, loss %.4f nats/token, perplexity %.3f, bits per %s %.4f\n", path.c_str(),
                o.data.c_str(), tokens.size(), chars ? "characters" : "words", loss, perplexity,
                chars ? "char" : "word", bits);
  }
}

}  // namespace

Command add_eval_command(CLI::App& app) {
  auto o = std::make_shared<EvalOptions>();
  CLI::App* sub =
      app.add_subcommand("eval", "Loss, perplexity and bits per character of a language model on a text");
  sub->add_option("--model", o->model, "checkpoint (.safetensors) or a training directory (its best)")
      ->required();
  sub->add_option("--data", o->data, "text to evaluate on, UTF-8")->required();
  sub->add_option("--batch", o->batch, "parallel streams the text is cut into")->capture_default_str();
  sub->add_option("--seq-len", o->seq_len, "steps read at a time (the state carries over)")
      ->capture_default_str();
  sub->add_option("--threads", o->threads, "threads (default: all cores)");
  sub->add_flag("--json", o->json, "one JSON object: loss, perplexity, bits_per_char (or bits_per_word)");
  return {sub, [o] { run(*o); }};
}

}  // namespace recur::cli
