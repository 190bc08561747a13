// Checkpoints of language models and training runs: safetensors with the configuration in the metadata
// (recur/training.hpp). Tensors: the model's parameters by name (embedding.weight, rnn.weight_ih_l0, ...,
// decoder.weight, decoder.bias), optimizer.<parameter>.<slot>, state.<k> (the carried state's tensors,
// in the recurrent stack's order). Metadata: format, model and vocabulary (model.*), options and position
// (train.*), notes (note.*).
#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>

#include "recur/error.hpp"
#include "recur/safetensors.hpp"
#include "train/trainer_state.hpp"

namespace recur {
namespace {

constexpr const char* format_name = "recur-language-model";
using Metadata = std::map<std::string, std::string>;

std::string number(double v) {
  char text[40];
  std::snprintf(text, sizeof text, "%.17g", v);  // round-trips a double (and so a float) exactly
  return text;
}

const std::string& field(const SafetensorsFile& file, const std::string& key) {
  auto it = file.metadata().find(key);
  if (it == file.metadata().end())
    throw Error(file.source() + ": checkpoint metadata lacks '" + key + "'; was it written by recur train?");
  return it->second;
}

double number_field(const SafetensorsFile& file, const std::string& key) {
  const std::string& text = field(file, key);
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0')
    throw Error(file.source() + ": metadata '" + key + "' = '" + text + "' is not a number");
  return v;
}

int64_t integer_field(const SafetensorsFile& file, const std::string& key) {
  const std::string& text = field(file, key);
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0')
    throw Error(file.source() + ": metadata '" + key + "' = '" + text + "' is not an integer");
  return v;
}

uint64_t unsigned_field(const SafetensorsFile& file, const std::string& key) {
  const std::string& text = field(file, key);
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0')
    throw Error(file.source() + ": metadata '" + key + "' = '" + text + "' is not an unsigned integer");
  return v;
}

void check_format(const SafetensorsFile& file) {
  auto it = file.metadata().find("format");
  const std::string found = it == file.metadata().end() ? "(none)" : "'" + it->second + "'";
  if (it == file.metadata().end() || it->second != format_name)
    throw Error(file.source() + ": not a recur language-model checkpoint (metadata format is " + found +
                ", expected '" + format_name + "')");
}

std::string join_sizes(const std::vector<int64_t>& values) {
  std::string text;
  for (int64_t v : values) {
    if (!text.empty()) text += ',';
    text += std::to_string(v);
  }
  return text;
}

std::vector<int64_t> split_sizes(const SafetensorsFile& file, const std::string& key) {
  std::vector<int64_t> values;
  std::stringstream list(field(file, key));
  for (std::string item; std::getline(list, item, ',');) {
    char* end = nullptr;
    values.push_back(std::strtoll(item.c_str(), &end, 10));
    if (item.empty() || *end != '\0')
      throw Error(file.source() + ": metadata '" + key + "' has '" + item + "', not a number");
  }
  return values;
}

Metadata model_metadata(const LanguageModelConfig& c, const Vocabulary& vocabulary) {
  return {{"format", format_name},
          {"model.cell", c.stack.name()},
          {"model.clock_periods", join_sizes(c.stack.periods)},
          {"model.clock_modules", std::to_string(c.stack.modules)},
          {"model.grid_tie", c.stack.tie_weights ? "true" : "false"},
          {"model.vocab_size", std::to_string(c.vocab_size)},
          {"model.embedding_size", std::to_string(c.embedding_size)},
          {"model.hidden_sizes", join_sizes(c.hidden_sizes)},
          {"model.dropout", number(c.dropout)},
          {"model.tie_weights", c.tie_weights ? "true" : "false"},
          {"model.tokens", token_mode_name(vocabulary.mode())},
          {"model.vocabulary", vocabulary.to_json()}};
}

LanguageModelConfig model_config_from(const SafetensorsFile& file, Vocabulary* vocabulary) {
  check_format(file);
  LanguageModelConfig c;
  c.stack = StackSpec::parse(field(file, "model.cell"));
  c.stack.periods = split_sizes(file, "model.clock_periods");
  c.stack.modules = integer_field(file, "model.clock_modules");
  c.stack.tie_weights = field(file, "model.grid_tie") == "true";
  c.vocab_size = integer_field(file, "model.vocab_size");
  c.embedding_size = integer_field(file, "model.embedding_size");
  c.hidden_sizes = split_sizes(file, "model.hidden_sizes");
  c.dropout = float(number_field(file, "model.dropout"));
  c.tie_weights = field(file, "model.tie_weights") == "true";
  c.validate();
  Vocabulary v =
      Vocabulary::from_json(parse_token_mode(field(file, "model.tokens")), field(file, "model.vocabulary"),
                            file.source() + " metadata 'model.vocabulary'");
  if (v.size() != c.vocab_size)
    throw Error(file.source() + ": vocabulary of " + std::to_string(v.size()) + " tokens for vocab_size " +
                std::to_string(c.vocab_size));
  if (vocabulary != nullptr) *vocabulary = std::move(v);
  return c;
}

void read_tensor(const SafetensorsFile& file, const std::string& name, Tensor& into) {
  Tensor t = file.tensor(name);  // throws naming the file and tensor if absent
  t.check_shape(file.source() + ": tensor '" + name + "'", into.shape());
  into = std::move(t);
}

void read_parameters(const SafetensorsFile& file, LanguageModel& model) {
  for (const Parameter& p : model.parameters()) read_tensor(file, p.name, *p.value);
}

Metadata options_metadata(const TrainOptions& o) {
  const OptimizerConfig& p = o.optimizer;
  const ScheduleConfig& s = o.schedule;
  Metadata m = {{"train.seq_len", std::to_string(o.seq_len)},
                {"train.batch", std::to_string(o.batch)},
                {"train.clip_norm", number(o.clip_norm)},
                {"train.seed", std::to_string(o.seed)},
                {"train.max_epochs", std::to_string(o.max_epochs)},
                {"train.max_steps", std::to_string(o.max_steps)},
                {"train.max_minutes", number(o.max_minutes)},
                {"train.valid_every", std::to_string(o.valid_every)},
                {"train.report_every", std::to_string(o.report_every)},
                {"train.max_bad_steps", std::to_string(o.max_bad_steps)},
                {"train.optimizer", optimizer_name(p.kind)},
                {"train.momentum", number(p.momentum)},
                {"train.nesterov", p.nesterov ? "1" : "0"},
                {"train.beta1", number(p.beta1)},
                {"train.beta2", number(p.beta2)},
                {"train.epsilon", number(p.epsilon)},
                {"train.alpha", number(p.alpha)},
                {"train.weight_decay", number(p.weight_decay)},
                {"train.schedule", schedule_name(s.kind)},
                {"train.lr", number(s.learning_rate)},
                {"train.warmup_steps", std::to_string(s.warmup_steps)},
                {"train.step_every", std::to_string(s.step_every)},
                {"train.step_start", std::to_string(s.step_start)},
                {"train.gamma", number(s.gamma)},
                {"train.plateau_factor", number(s.plateau_factor)},
                {"train.plateau_patience", std::to_string(s.plateau_patience)},
                {"train.min_lr", number(s.min_learning_rate)}};
  for (const auto& [key, value] : o.notes) m["note." + key] = value;
  return m;
}

TrainOptions options_from(const SafetensorsFile& file) {
  TrainOptions o;
  o.seq_len = integer_field(file, "train.seq_len");
  o.batch = integer_field(file, "train.batch");
  o.clip_norm = number_field(file, "train.clip_norm");
  o.seed = unsigned_field(file, "train.seed");
  o.max_epochs = integer_field(file, "train.max_epochs");
  o.max_steps = integer_field(file, "train.max_steps");
  o.max_minutes = number_field(file, "train.max_minutes");
  o.valid_every = integer_field(file, "train.valid_every");
  o.report_every = integer_field(file, "train.report_every");
  o.max_bad_steps = int(integer_field(file, "train.max_bad_steps"));
  OptimizerConfig& p = o.optimizer;
  p.kind = parse_optimizer(field(file, "train.optimizer"));
  p.momentum = float(number_field(file, "train.momentum"));
  p.nesterov = field(file, "train.nesterov") == "1";
  p.beta1 = float(number_field(file, "train.beta1"));
  p.beta2 = float(number_field(file, "train.beta2"));
  p.epsilon = float(number_field(file, "train.epsilon"));
  p.alpha = float(number_field(file, "train.alpha"));
  p.weight_decay = float(number_field(file, "train.weight_decay"));
  ScheduleConfig& s = o.schedule;
  s.kind = parse_schedule(field(file, "train.schedule"));
  s.learning_rate = float(number_field(file, "train.lr"));
  s.warmup_steps = integer_field(file, "train.warmup_steps");
  s.step_every = integer_field(file, "train.step_every");
  s.step_start = integer_field(file, "train.step_start");
  s.gamma = float(number_field(file, "train.gamma"));
  s.plateau_factor = float(number_field(file, "train.plateau_factor"));
  s.plateau_patience = int(integer_field(file, "train.plateau_patience"));
  s.min_learning_rate = float(number_field(file, "train.min_lr"));
  for (const auto& [key, value] : file.metadata())
    if (key.rfind("note.", 0) == 0) o.notes[key.substr(5)] = value;
  return o;
}

std::string history_json(const std::vector<HistoryPoint>& history) {
  nlohmann::json list = nlohmann::json::array();
  const auto value = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); };
  for (const HistoryPoint& h : history)
    list.push_back({h.step, h.tokens, h.seconds, value(h.loss), value(h.valid_loss)});
  return list.dump();
}

std::vector<HistoryPoint> history_from(const SafetensorsFile& file) {
  std::vector<HistoryPoint> history;
  try {
    for (const auto& item : nlohmann::json::parse(field(file, "train.history"))) {
      const auto value = [](const nlohmann::json& v) {
        return v.is_null() ? std::numeric_limits<double>::quiet_NaN() : v.get<double>();
      };
      history.push_back({item.at(0).get<int64_t>(), item.at(1).get<int64_t>(), item.at(2).get<double>(),
                         value(item.at(3)), value(item.at(4))});
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(file.source() + ": metadata 'train.history' is not a list of points: " + e.what());
  }
  return history;
}

std::string state_name(size_t k) { return "state." + std::to_string(k); }

}  // namespace

void Trainer::save(const std::string& path) const {
  State& s = *state_;
  Metadata metadata = model_metadata(s.model.config(), s.vocabulary);
  metadata.merge(options_metadata(s.options));
  std::ostringstream rng;
  rng << s.rng;
  double seconds = s.seconds;
  if (s.run_started)
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - *s.run_started).count();
  const Metadata position = {{"train.step", std::to_string(s.step)},
                             {"train.epoch", std::to_string(s.epoch)},
                             {"train.batch_in_epoch", std::to_string(s.batch_in_epoch)},
                             {"train.tokens", std::to_string(s.tokens)},
                             {"train.seconds", number(seconds)},
                             {"train.best_valid", number(s.best_valid)},
                             {"train.optimizer_steps", std::to_string(s.optimizer.steps())},
                             {"train.plateau_scale", number(s.schedule.plateau_scale)},
                             {"train.plateau_best", number(s.schedule.plateau_best)},
                             {"train.plateau_bad", std::to_string(s.schedule.plateau_bad)},
                             {"train.plateau_seen", s.schedule.plateau_seen ? "1" : "0"},
                             {"train.rng", rng.str()},
                             {"train.token_count", std::to_string(s.train.size())},
                             {"train.token_hash", std::to_string(token_hash(s.train))},
                             {"train.valid_token_count", std::to_string(s.valid.size())},
                             {"train.history", history_json(s.history)}};
  for (const auto& [key, value] : position) metadata[key] = value;

  std::vector<std::pair<std::string, const Tensor*>> tensors;
  const std::vector<Parameter> parameters = s.model.parameters();
  for (const Parameter& p : parameters) tensors.emplace_back(p.name, p.value);
  for (const auto& [name, tensor] : s.optimizer.state_tensors(parameters)) tensors.emplace_back(name, tensor);
  for (size_t k = 0; k < s.carried.size(); ++k) tensors.emplace_back(state_name(k), &s.carried[k]);
  write_safetensors(path, tensors, metadata);
}

Trainer Trainer::resume(const std::string& checkpoint, std::vector<int32_t> train_tokens,
                        std::vector<int32_t> valid_tokens, const TrainOptions& limits) {
  const SafetensorsFile file = SafetensorsFile::read(checkpoint);
  Vocabulary vocabulary;
  const LanguageModelConfig config = model_config_from(file, &vocabulary);
  TrainOptions options = options_from(file);
  options.max_epochs = limits.max_epochs;
  options.max_steps = limits.max_steps;
  options.max_minutes = limits.max_minutes;
  options.stop_at_step = limits.stop_at_step;
  options.out_dir = limits.out_dir;
  options.validate();
  if (uint64_t(integer_field(file, "train.token_count")) != train_tokens.size() ||
      unsigned_field(file, "train.token_hash") != token_hash(train_tokens))
    throw Error(checkpoint + ": the training text differs from the one this run trained on (" +
                field(file, "train.token_count") + " tokens then, " + std::to_string(train_tokens.size()) +
                " now)");
  if (uint64_t(integer_field(file, "train.valid_token_count")) != valid_tokens.size())
    throw Error(checkpoint + ": the validation text has " + std::to_string(valid_tokens.size()) +
                " tokens, the run had " + field(file, "train.valid_token_count"));
  check_corpus(train_tokens, valid_tokens, options);

  auto s = std::make_unique<State>(options, LanguageModel(config, options.seed), std::move(vocabulary),
                                   std::move(train_tokens), std::move(valid_tokens));
  read_parameters(file, s->model);
  const std::vector<Parameter> parameters = s->model.parameters();
  for (const auto& [name, tensor] : s->optimizer.state_tensors(parameters)) read_tensor(file, name, *tensor);
  s->carried = s->model.zero_state(options.batch);
  for (size_t k = 0; k < s->carried.size(); ++k) read_tensor(file, state_name(k), s->carried[k]);
  s->optimizer.set_steps(integer_field(file, "train.optimizer_steps"));
  s->step = integer_field(file, "train.step");
  s->epoch = integer_field(file, "train.epoch");
  s->batch_in_epoch = integer_field(file, "train.batch_in_epoch");
  s->tokens = integer_field(file, "train.tokens");
  s->seconds = number_field(file, "train.seconds");
  s->best_valid = number_field(file, "train.best_valid");
  s->schedule.plateau_scale = number_field(file, "train.plateau_scale");
  s->schedule.plateau_best = number_field(file, "train.plateau_best");
  s->schedule.plateau_bad = int(integer_field(file, "train.plateau_bad"));
  s->schedule.plateau_seen = field(file, "train.plateau_seen") == "1";
  std::istringstream rng(field(file, "train.rng"));
  rng >> s->rng;
  if (rng.fail())
    throw Error(checkpoint + ": metadata 'train.rng' is not a saved random-number generator state");
  if (s->batch_in_epoch < 0 || s->batch_in_epoch > s->batches_per_epoch())
    throw Error(checkpoint + ": data position " + std::to_string(s->batch_in_epoch) +
                " outside the epoch of " + std::to_string(s->batches_per_epoch()) + " batches");
  s->history = history_from(file);
  return Trainer(std::move(s));
}

LanguageModel load_language_model(const std::string& path, Vocabulary* vocabulary) {
  const SafetensorsFile file = SafetensorsFile::read(path);
  LanguageModel model(model_config_from(file, vocabulary), 0);
  read_parameters(file, model);
  return model;
}

}  // namespace recur
