// recur train: a language model on a text file, with truncated BPTT; checkpoints and a learning curve in
// the output directory. See recur/training.hpp for what a step and a checkpoint are.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "commands.hpp"
#include "language_data.hpp"
#include "recur/error.hpp"
#include "recur/runtime.hpp"
#include "recur/safetensors.hpp"
#include "recur/training.hpp"

namespace recur::cli {
namespace {

struct TrainCommandOptions {
  std::string data, valid, tokens = "chars", cell = "lstm", hidden_sizes, periods, optimizer = "adam",
                           schedule = "constant";
  int64_t modules = 0;
  bool grid_tie = false;
  std::string out, resume;
  double valid_fraction = 0.1, minutes = 0, clip = 5.0, lr = 0;
  int64_t stop_after = 0, vocab_size = 0, hidden = 256, embedding = 0, seq_len = 0, batch = 0, epochs = 0,
          steps = 0;
  int layers = 2, threads = 0;
  float dropout = 0, momentum = 0, weight_decay = 0, beta1 = 0.9f, beta2 = 0.999f;
  bool nesterov = false, tie = false, json = false;
  ScheduleConfig schedule_config;
  TrainOptions train;
};

// Creates DIR (not its parents: a missing parent is more likely a typo than a wish).
void make_output_directory(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
    throw Error("--out " + dir + ": cannot create the directory: " + std::strerror(errno));
  struct stat info;
  if (::stat(dir.c_str(), &info) != 0 || !S_ISDIR(info.st_mode))
    throw Error("--out " + dir + ": not a directory");
}

// "512,256" -> {512, 256}; `option` names the flag in the error.
std::vector<int64_t> parse_size_list(const std::string& text, const std::string& option) {
  std::vector<int64_t> sizes;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    const std::string item = text.substr(start, comma - start);
    char* end = nullptr;
    const long long size = std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0') throw Error(option + ": '" + item + "' is not a whole number");
    sizes.push_back(size);
    start = comma + 1;
  }
  return sizes;
}

StackSpec stack_spec(const TrainCommandOptions& o) {
  StackSpec spec = StackSpec::parse(o.cell);
  if (!o.periods.empty()) spec.periods = parse_size_list(o.periods, "--periods");
  spec.modules = o.modules;
  spec.tie_weights = o.grid_tie;
  return spec;
}

LanguageModelConfig model_config(const TrainCommandOptions& o, int64_t vocab_size, TokenMode mode) {
  LanguageModelConfig c;
  c.stack = stack_spec(o);
  c.vocab_size = vocab_size;
  if (!o.hidden_sizes.empty()) {
    c.hidden_sizes = parse_size_list(o.hidden_sizes, "--hidden-sizes");
  } else {
    if (o.layers < 1) throw Error("--layers must be at least 1, got " + std::to_string(o.layers));
    c.hidden_sizes.assign(size_t(o.layers), o.hidden);
  }
  // Characters need few embedding dimensions; words (and tied weights) want the hidden size.
  c.embedding_size = o.embedding > 0                       ? o.embedding
                     : (o.tie || mode == TokenMode::words) ? c.hidden_sizes.back()
                                                           : std::min<int64_t>(64, vocab_size);
  c.dropout = o.dropout;
  c.tie_weights = o.tie;
  return c;
}

TrainOptions train_options(TrainCommandOptions& o, TokenMode mode) {
  TrainOptions t;
  t.seq_len = o.seq_len > 0 ? o.seq_len : (mode == TokenMode::words ? 35 : 100);
  t.batch = o.batch > 0 ? o.batch : (mode == TokenMode::words ? 20 : 32);
  t.optimizer.kind = parse_optimizer(o.optimizer);
  t.optimizer.momentum = o.momentum;
  t.optimizer.nesterov = o.nesterov;
  t.optimizer.beta1 = o.beta1;
  t.optimizer.beta2 = o.beta2;
  t.optimizer.weight_decay = o.weight_decay;
  t.schedule = o.schedule_config;
  t.schedule.kind = parse_schedule(o.schedule);
  t.schedule.learning_rate = float(o.lr > 0 ? o.lr : (t.optimizer.kind == OptimizerKind::sgd ? 1.0 : 2e-3));
  t.clip_norm = o.clip;
  t.seed = o.train.seed;
  t.valid_every = o.train.valid_every;
  t.report_every = o.train.report_every;
  t.max_bad_steps = o.train.max_bad_steps;
  return t;
}

void set_limits(TrainOptions& t, const TrainCommandOptions& o) {
  t.max_epochs = o.epochs;
  t.max_steps = o.steps;
  t.max_minutes = o.minutes;
  t.stop_at_step = o.stop_after;
  t.out_dir = o.out;
  if (t.max_epochs == 0 && t.max_steps == 0 && t.max_minutes == 0 && t.stop_at_step == 0) t.max_epochs = 1;
}

std::string clock_text(double seconds) {
  if (seconds < 0) return "?";
  const long s = long(std::lround(seconds));
  char text[32];
  if (s >= 3600)
    std::snprintf(text, sizeof text, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else
    std::snprintf(text, sizeof text, "%ld:%02ld", s / 60, s % 60);
  return text;
}

// Reports as JSON lines, a progress bar (terminal) or plain lines.
class Reporter {
 public:
  Reporter(bool json, TokenMode mode) : json_(json), bar_(!json && ::isatty(1)), mode_(mode) {}

  void operator()(const TrainReport& r) {
    if (json_) return print_json(r);
    const char* unit = mode_ == TokenMode::characters ? "bpc" : "ppl";
    const auto measure = [&](double loss) {
      return mode_ == TokenMode::characters ? loss / std::log(2.0) : std::exp(loss);
    };
    if (r.kind == TrainReport::Kind::skipped) {
      std::fprintf(stderr, "%swarning: %s\n", bar_ ? "\n" : "", r.message.c_str());
      return;
    }
    if (r.kind == TrainReport::Kind::done && !std::isfinite(r.loss)) return;  // reported already
    char line[256];
    if (bar_) {
      const int filled = int(r.epoch_fraction * 20);
      std::snprintf(line, sizeof line,
                    "\repoch %lld [%-20s] step %lld  loss %.3f  %s %.3f  %.0f tok/s  ETA %s   ",
                    (long long)r.epoch + 1, std::string(size_t(filled), '#').c_str(), (long long)r.step,
                    r.loss, unit, measure(r.loss), r.tokens_per_second, clock_text(r.eta_seconds).c_str());
      std::fputs(line, stdout);
      if (r.valid_loss)
        std::printf("\n  validation: loss %.4f  %s %.4f\n", *r.valid_loss, unit, measure(*r.valid_loss));
      if (r.kind == TrainReport::Kind::done && !r.valid_loss) std::printf("\n");
    } else {
      std::printf("epoch %lld step %lld tokens %lld time %s loss %.4f %s %.4f tok/s %.0f",
                  (long long)r.epoch + 1, (long long)r.step, (long long)r.tokens,
                  clock_text(r.seconds).c_str(), r.loss, unit, measure(r.loss), r.tokens_per_second);
      if (r.valid_loss)
        std::printf(" valid_loss %.4f valid_%s %.4f", *r.valid_loss, unit, measure(*r.valid_loss));
      std::printf("%s\n", r.kind == TrainReport::Kind::done ? " (done)" : "");
    }
    std::fflush(stdout);
  }

 private:
  void print_json(const TrainReport& r) {
    static const char* kinds[] = {"progress", "validation", "skipped", "done"};
    nlohmann::json j = {{"event", kinds[int(r.kind)]},
                        {"step", r.step},
                        {"epoch", r.epoch + 1},
                        {"tokens", r.tokens},
                        {"seconds", r.seconds},
                        {"learning_rate", r.learning_rate},
                        {"tokens_per_second", r.tokens_per_second}};
    if (std::isfinite(r.loss)) j["loss"] = r.loss;
    if (r.valid_loss) j["valid_loss"] = *r.valid_loss;
    if (!r.message.empty()) j["message"] = r.message;
    std::printf("%s\n", j.dump().c_str());
    std::fflush(stdout);
  }

  bool json_, bar_;
  TokenMode mode_;
};

std::vector<int32_t> encode(const Vocabulary& vocabulary, const std::string& text,
                            const std::string& source) {
  return text.empty() ? std::vector<int32_t>{} : vocabulary.encode(text, source);
}

Trainer start_new(TrainCommandOptions& o) {
  const TokenMode mode = parse_token_mode(o.tokens);
  if (o.data.empty()) o.data = default_corpus();
  stack_spec(o);  // an unknown cell fails before the data is read
  const TextSplit split = split_text(read_text_file(o.data), o.valid, o.valid_fraction, mode);
  std::vector<std::string_view> texts{split.train};
  if (mode == TokenMode::characters)
    texts.push_back(split.valid);  // a character model must read every character
  const Vocabulary vocabulary = Vocabulary::build(mode, texts, o.vocab_size);
  const std::string valid_source = o.valid.empty() ? o.data + " (validation part)" : o.valid;
  std::vector<int32_t> train = encode(vocabulary, split.train, o.data);
  std::vector<int32_t> valid = encode(vocabulary, split.valid, valid_source);
  TrainOptions t = train_options(o, mode);
  set_limits(t, o);
  t.notes = {{"data", o.data}, {"valid", o.valid}, {"valid_fraction", std::to_string(o.valid_fraction)}};
  const LanguageModelConfig config = model_config(o, vocabulary.size(), mode);
  return Trainer(config, vocabulary, std::move(train), std::move(valid), t);
}

Trainer resume(TrainCommandOptions& o) {
  const std::string path = o.resume + "/last.safetensors";
  Vocabulary vocabulary;
  load_language_model(path, &vocabulary);
  const SafetensorsFile file = SafetensorsFile::read(path);
  const auto note = [&](const char* key) {
    auto it = file.metadata().find(std::string("note.") + key);
    return it == file.metadata().end() ? std::string() : it->second;
  };
  if (o.data.empty()) o.data = note("data");
  if (o.valid.empty()) o.valid = note("valid");
  const double fraction =
      note("valid_fraction").empty() ? o.valid_fraction : std::stod(note("valid_fraction"));
  const TextSplit split = split_text(read_text_file(o.data), o.valid, fraction, vocabulary.mode());
  std::vector<int32_t> train = encode(vocabulary, split.train, o.data);
  std::vector<int32_t> valid =
      encode(vocabulary, split.valid, o.valid.empty() ? o.data + " (validation part)" : o.valid);
  if (o.out.empty()) o.out = o.resume;
  TrainOptions limits;
  set_limits(limits, o);
  return Trainer::resume(path, std::move(train), std::move(valid), limits);
}

void run(TrainCommandOptions& o) {
  if (o.threads > 0) set_num_threads(o.threads);
  if (o.out.empty() && o.resume.empty()) throw Error("--out DIR is required (where the checkpoints go)");
  Trainer trainer = o.resume.empty() ? start_new(o) : resume(o);
  make_output_directory(o.out);
  const LanguageModelConfig& c = trainer.model().config();
  const TokenMode mode = trainer.vocabulary().mode();
  if (!o.json) {
    std::string sizes;
    for (int64_t h : c.hidden_sizes) sizes += (sizes.empty() ? "" : "x") + std::to_string(h);
    std::printf("%s %s: %s %s, embedding %lld, vocabulary %lld %s, %lld batches of %lld x %lld per epoch%s\n",
                o.resume.empty() ? "training" : "resuming", o.data.c_str(), c.stack.name().c_str(),
                sizes.c_str(), (long long)c.embedding_size, (long long)c.vocab_size,
                token_mode_name(mode).c_str(), (long long)trainer.batches_per_epoch(),
                (long long)trainer.options().batch, (long long)trainer.options().seq_len,
                o.resume.empty() ? "" : (" from step " + std::to_string(trainer.step())).c_str());
    std::fflush(stdout);
  }
  Reporter reporter(o.json, mode);
  const double valid_loss = trainer.run(std::ref(reporter));
  if (!o.json) {
    std::printf("checkpoints: %s/best.safetensors, %s/last.safetensors; curve: %s/curve.svg\n", o.out.c_str(),
                o.out.c_str(), o.out.c_str());
    if (std::isfinite(valid_loss))
      std::printf("validation: loss %.4f nats/token, perplexity %.3f, bits per %s %.4f\n", valid_loss,
                  std::exp(valid_loss), mode == TokenMode::characters ? "char" : "word",
                  valid_loss / std::log(2.0));
  }
}

}  // namespace

Command add_train_command(CLI::App& app) {
  auto o = std::make_shared<TrainCommandOptions>();
  o->train.valid_every = 200;
  CLI::App* sub = app.add_subcommand("train", "Train a language model on a text file (truncated BPTT)");
  sub->add_option("--data", o->data, "training text, UTF-8 (default: the shipped tiny-shakespeare)");
  auto* valid =
      sub->add_option("--valid", o->valid, "validation text (default: the last --valid-fraction of --data)");
  sub->add_option("--valid-fraction", o->valid_fraction, "share of --data held out for validation")
      ->capture_default_str()
      ->excludes(valid);
  sub->add_option("--tokens", o->tokens, "chars (Unicode code points) or words (whitespace, <eos> per line)")
      ->check(CLI::IsMember({"chars", "words"}))
      ->capture_default_str();
  sub->add_option("--vocab-size", o->vocab_size, "words: keep the most frequent, the rest <unk> (0: all)");
  sub->add_option("--cell", o->cell,
                  "lstm, gru, rnn, peephole, cifg, rnn_relu, gru_reset_before, ...; variants: dglstm, "
                  "clockwork, gridlstm")
      ->capture_default_str();
  sub->add_option("--hidden", o->hidden, "units per layer")->capture_default_str();
  sub->add_option("--layers", o->layers, "recurrent layers")->capture_default_str();
  sub->add_option("--hidden-sizes", o->hidden_sizes,
                  "units per layer, e.g. 512,256 (overrides --hidden, --layers)");
  sub->add_option("--embedding", o->embedding, "embedding width (default: chars 64, words the hidden size)");
  sub->add_option("--dropout", o->dropout, "dropout after the embedding, between layers, before the output")
      ->capture_default_str();
  sub->add_flag("--tie-weights", o->tie, "output weights = embedding (needs embedding = last hidden size)");
  sub->add_option("--periods", o->periods, "clockwork: module periods, e.g. 1,2,4,8 (default: powers of 2)");
  sub->add_option("--modules", o->modules, "clockwork: module count when --periods is not given");
  sub->add_flag("--grid-tie", o->grid_tie,
                "gridlstm: every layer shares layer 0's weights (the paper's tied grid)");
  sub->add_option("--seq-len", o->seq_len,
                  "steps of backpropagation through time (default: chars 100, words 35)");
  sub->add_option("--batch", o->batch, "parallel streams (default: chars 32, words 20)");
  sub->add_option("--optimizer", o->optimizer, "sgd, adam, adamw, rmsprop")->capture_default_str();
  sub->add_option("--lr", o->lr, "learning rate (default: sgd 1, others 0.002)");
  sub->add_option("--momentum", o->momentum, "sgd / rmsprop momentum");
  sub->add_flag("--nesterov", o->nesterov, "sgd: Nesterov momentum");
  sub->add_option("--beta1", o->beta1, "adam(w)")->capture_default_str();
  sub->add_option("--beta2", o->beta2, "adam(w)")->capture_default_str();
  sub->add_option("--weight-decay", o->weight_decay, "L2 (adamw: decoupled)");
  sub->add_option("--schedule", o->schedule, "constant, step, plateau, cosine")->capture_default_str();
  sub->add_option("--warmup", o->schedule_config.warmup_steps, "steps of linear learning-rate warm-up");
  sub->add_option("--decay-start", o->schedule_config.step_start,
                  "step schedule: the update of the first decay (default: --decay-every)");
  sub->add_option("--decay-every", o->schedule_config.step_every, "step schedule: steps between decays")
      ->capture_default_str();
  sub->add_option("--decay", o->schedule_config.gamma, "step schedule: factor per decay")
      ->capture_default_str();
  sub->add_option("--plateau-factor", o->schedule_config.plateau_factor,
                  "plateau: factor when validation stalls")
      ->capture_default_str();
  sub->add_option("--plateau-patience", o->schedule_config.plateau_patience,
                  "plateau: validations without gain")
      ->capture_default_str();
  sub->add_option("--min-lr", o->schedule_config.min_learning_rate, "floor of cosine and plateau");
  sub->add_option("--clip", o->clip, "global gradient-norm clip (0: none)")->capture_default_str();
  sub->add_option("--epochs", o->epochs, "stop after N epochs");
  sub->add_option("--steps", o->steps, "stop after N updates");
  sub->add_option("--stop-after", o->stop_after,
                  "pause at this step (resume later); the schedule still plans for --steps");
  sub->add_option("--minutes", o->minutes, "stop after M minutes (default without a limit: 1 epoch)");
  sub->add_option("--valid-every", o->train.valid_every, "updates between validations and checkpoints")
      ->capture_default_str();
  sub->add_option("--report-every", o->train.report_every, "updates between progress reports")
      ->capture_default_str();
  sub->add_option("--max-bad-steps", o->train.max_bad_steps, "non-finite updates in a row that stop training")
      ->capture_default_str();
  sub->add_option("--seed", o->train.seed, "weights and dropout")->capture_default_str();
  sub->add_option("--threads", o->threads, "threads (default: all cores)");
  sub->add_option("--out", o->out, "directory for best.safetensors, last.safetensors, curve.svg");
  sub->add_option("--resume", o->resume, "continue the run in DIR (its last.safetensors)");
  sub->add_flag("--json", o->json, "one JSON object per report on stdout");
  return {sub, [o] { run(*o); }};
}

}  // namespace recur::cli
