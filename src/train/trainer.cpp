// The truncated-BPTT training loop (recur/training.hpp).
#include <chrono>
#include <cmath>
#include <cstdio>

#include "recur/error.hpp"
#include "train/trainer_state.hpp"

namespace recur {

void TrainOptions::validate() const {
  if (seq_len < 1) throw Error("training: seq-len must be positive, got " + std::to_string(seq_len));
  if (batch < 1) throw Error("training: batch must be positive, got " + std::to_string(batch));
  if (!(clip_norm >= 0)) throw Error("training: clip norm must be >= 0, got " + std::to_string(clip_norm));
  if (max_epochs < 0 || max_steps < 0 || stop_at_step < 0 || !(max_minutes >= 0))
    throw Error("training: epochs, steps and minutes must be >= 0");
  if (max_epochs == 0 && max_steps == 0 && max_minutes == 0 && stop_at_step == 0)
    throw Error("training: give a limit (epochs, steps or minutes)");
  if (valid_every < 0)
    throw Error("training: validation interval must be >= 0, got " + std::to_string(valid_every));
  if (report_every < 1)
    throw Error("training: report interval must be positive, got " + std::to_string(report_every));
  if (max_bad_steps < 1)
    throw Error("training: max bad steps must be positive, got " + std::to_string(max_bad_steps));
  optimizer.validate();
  schedule.validate();
}

uint64_t token_hash(const std::vector<int32_t>& tokens) {
  uint64_t hash = 14695981039346656037ull;
  for (int32_t t : tokens) {
    hash ^= uint64_t(uint32_t(t));
    hash *= 1099511628211ull;
  }
  return hash;
}

void check_corpus(const std::vector<int32_t>& train, const std::vector<int32_t>& valid,
                  const TrainOptions& options) {
  const int64_t needed = options.batch * (options.seq_len + 1);
  if (int64_t(train.size()) < needed)
    throw Error("training text has " + std::to_string(train.size()) +
                " tokens, fewer than one batch needs: " + std::to_string(options.batch) +
                " streams x (seq-len " + std::to_string(options.seq_len) +
                " + 1) = " + std::to_string(needed) + "; use a longer text or a smaller --batch / --seq-len");
  if (valid.size() == 1) throw Error("validation text has 1 token; it needs at least 2 (or none)");
}

double evaluate_tokens(LanguageModel& model, std::span<const int32_t> tokens, int64_t batch,
                       int64_t seq_len) {
  if (tokens.size() < 2)
    throw Error("evaluation needs at least 2 tokens, got " + std::to_string(tokens.size()));
  if (batch < 1 || seq_len < 1) throw Error("evaluation: batch and seq-len must be positive");
  const int64_t B = std::min<int64_t>(batch, int64_t(tokens.size()) / 2), S = int64_t(tokens.size()) / B;
  std::vector<Tensor> state = model.zero_state(B);
  std::vector<int32_t> inputs, targets;
  double total = 0;
  int64_t count = 0;
  for (int64_t p = 0; p < S - 1; p += seq_len) {
    const int64_t T = std::min(seq_len, S - 1 - p);
    inputs.resize(size_t(T * B));
    targets.resize(size_t(T * B));
    for (int64_t t = 0; t < T; ++t)
      for (int64_t b = 0; b < B; ++b) {
        inputs[size_t(t * B + b)] = tokens[size_t(b * S + p + t)];
        targets[size_t(t * B + b)] = tokens[size_t(b * S + p + t + 1)];
      }
    total += model.evaluate({inputs, targets, T, B}, state) * double(T * B);
    count += T * B;
  }
  return total / double(count);
}

Trainer::Trainer(std::unique_ptr<State> state) : state_(std::move(state)) {}

Trainer::Trainer(const LanguageModelConfig& model_config, Vocabulary vocabulary,
                 std::vector<int32_t> train_tokens, std::vector<int32_t> valid_tokens,
                 const TrainOptions& options) {
  options.validate();
  if (model_config.vocab_size != vocabulary.size())
    throw Error("language model: vocab_size " + std::to_string(model_config.vocab_size) +
                " but the vocabulary has " + std::to_string(vocabulary.size()) + " tokens");
  check_corpus(train_tokens, valid_tokens, options);
  state_ = std::make_unique<State>(options, LanguageModel(model_config, options.seed), std::move(vocabulary),
                                   std::move(train_tokens), std::move(valid_tokens));
  state_->carried = state_->model.zero_state(options.batch);
}

Trainer::~Trainer() = default;
Trainer::Trainer(Trainer&&) noexcept = default;

LanguageModel& Trainer::model() { return state_->model; }
const Vocabulary& Trainer::vocabulary() const { return state_->vocabulary; }
const TrainOptions& Trainer::options() const { return state_->options; }
const std::vector<HistoryPoint>& Trainer::history() const { return state_->history; }
int64_t Trainer::step() const { return state_->step; }
int64_t Trainer::batches_per_epoch() const { return state_->batches_per_epoch(); }

namespace {

using Clock = std::chrono::steady_clock;

std::string format_number(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.4g", v);
  return text;
}

// The inputs and targets of batch k: tokens [k T, k T + T] of each of the B streams, time-major.
int64_t gather_batch(const Trainer::State& s, std::vector<int32_t>& inputs, std::vector<int32_t>& targets) {
  const int64_t B = s.options.batch, S = s.stream_length(), p = s.batch_in_epoch * s.options.seq_len;
  const int64_t T = std::min(s.options.seq_len, S - 1 - p);
  inputs.resize(size_t(T * B));
  targets.resize(size_t(T * B));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t b = 0; b < B; ++b) {
      inputs[size_t(t * B + b)] = s.train[size_t(b * S + p + t)];
      targets[size_t(t * B + b)] = s.train[size_t(b * S + p + t + 1)];
    }
  return T;
}

}  // namespace

// The loop's bookkeeping for one run() call.
struct RunClock {
  Clock::time_point start = Clock::now();
  int64_t start_step = 0, start_tokens = 0;
  double elapsed() const { return std::chrono::duration<double>(Clock::now() - start).count(); }
};

double Trainer::run(const std::function<void(const TrainReport&)>& report) {
  State& s = *state_;
  const TrainOptions& o = s.options;
  const int64_t bpe = s.batches_per_epoch();
  int64_t step_limit = o.max_steps;
  if (o.max_epochs > 0 && (step_limit == 0 || o.max_epochs * bpe < step_limit))
    step_limit = o.max_epochs * bpe;
  RunClock clock;
  s.run_started = clock.start;
  clock.start_step = s.step;
  clock.start_tokens = s.tokens;
  const auto progress = [&] {
    double p = step_limit > 0 ? double(s.step) / double(step_limit) : 0.0;
    if (o.max_minutes > 0) p = std::max(p, clock.elapsed() / (o.max_minutes * 60));
    return std::min(p, 1.0);
  };
  const auto make_report = [&](TrainReport::Kind kind) {
    TrainReport r;
    r.kind = kind;
    r.step = s.step;
    r.epoch = s.epoch;
    r.tokens = s.tokens;
    r.epoch_fraction = double(s.batch_in_epoch) / double(bpe);
    const double elapsed = clock.elapsed();
    r.seconds = s.seconds + elapsed;
    r.learning_rate = s.schedule.learning_rate(s.step, progress());
    r.tokens_per_second = elapsed > 0 ? double(s.tokens - clock.start_tokens) / elapsed : 0;
    const int64_t done = s.step - clock.start_step;
    if (step_limit > 0 && done > 0) r.eta_seconds = elapsed / double(done) * double(step_limit - s.step);
    if (o.max_minutes > 0) {
      const double left = std::max(0.0, o.max_minutes * 60 - elapsed);
      r.eta_seconds = r.eta_seconds < 0 ? left : std::min(r.eta_seconds, left);
    }
    return r;
  };
  const auto notify = [&](const TrainReport& r) {
    if (report) report(r);
  };
  const auto checkpoint_path = [&](const char* name) { return o.out_dir + "/" + name; };
  const auto validate = [&](bool at_interval, double train_loss) {
    HistoryPoint point{s.step, s.tokens, s.seconds + clock.elapsed(), train_loss};
    point.valid_loss = evaluate_tokens(s.model, s.valid, o.batch, o.seq_len);
    // Only interval validations steer the schedule, so that where a run stops (and resumes) cannot.
    if (at_interval) s.schedule.on_validation(point.valid_loss);
    s.history.push_back(point);
    const bool best = point.valid_loss < s.best_valid;
    if (best) s.best_valid = point.valid_loss;
    if (!o.out_dir.empty()) {
      if (best) save(checkpoint_path("best.safetensors"));
      save(checkpoint_path("last.safetensors"));
    }
    return point.valid_loss;
  };

  std::vector<int32_t> inputs, targets;
  std::vector<Tensor> next;
  std::vector<Parameter> parameters = s.model.parameters();
  double loss_sum = 0, last_valid = std::numeric_limits<double>::quiet_NaN();
  int64_t loss_count = 0, bad_in_row = 0;
  bool validated_now = false;
  const auto stop = [&] {
    return (step_limit > 0 && s.step >= step_limit) || (o.stop_at_step > 0 && s.step >= o.stop_at_step) ||
           (o.max_minutes > 0 && clock.elapsed() >= o.max_minutes * 60);
  };
  while (!stop()) {
    if (s.batch_in_epoch == bpe) {  // a new epoch starts from the beginning of the streams, state zero
      ++s.epoch;
      s.batch_in_epoch = 0;
      s.carried = s.model.zero_state(o.batch);
    }
    const int64_t T = gather_batch(s, inputs, targets);
    const float lr = s.schedule.learning_rate(s.step, progress());
    s.model.zero_grad();
    next = s.carried;
    const double loss = s.model.forward_backward({inputs, targets, T, o.batch}, next, s.rng);
    const double norm = clip_gradient_norm(parameters, o.clip_norm);
    ++s.step;
    ++s.batch_in_epoch;
    s.tokens += T * o.batch;
    validated_now = false;
    if (!std::isfinite(loss) || !std::isfinite(norm)) {
      s.carried = s.model.zero_state(o.batch);
      const std::string why = "step " + std::to_string(s.step) + " skipped: loss " + format_number(loss) +
                              ", gradient norm " + format_number(norm);
      TrainReport r = make_report(TrainReport::Kind::skipped);
      r.message = why;
      notify(r);
      if (++bad_in_row >= o.max_bad_steps)
        throw Error("training stopped: " + std::to_string(bad_in_row) +
                    " updates in a row had a non-finite loss or gradient (" + why +
                    "); the weights never saw them" +
                    (o.out_dir.empty() ? std::string()
                                       : "; the last good checkpoint in " + o.out_dir + " is intact"));
      continue;
    }
    bad_in_row = 0;
    s.optimizer.step(parameters, lr);
    s.carried.swap(next);
    loss_sum += loss;
    ++loss_count;
    const bool validate_now = o.valid_every > 0 && !s.valid.empty() && s.step % o.valid_every == 0;
    if (s.step % o.report_every == 0 || validate_now) {
      const double mean =
          loss_count > 0 ? loss_sum / double(loss_count) : std::numeric_limits<double>::quiet_NaN();
      TrainReport r = make_report(TrainReport::Kind::progress);
      r.loss = mean;
      if (validate_now) {
        r.kind = TrainReport::Kind::validation;
        r.valid_loss = last_valid = validate(true, mean);
        validated_now = true;
      } else {
        s.history.push_back({s.step, s.tokens, r.seconds, mean});
      }
      notify(r);
      loss_sum = 0;
      loss_count = 0;
    }
  }
  TrainReport r = make_report(TrainReport::Kind::done);
  r.loss = loss_count > 0 ? loss_sum / double(loss_count) : std::numeric_limits<double>::quiet_NaN();
  if (!s.valid.empty() && !validated_now) {
    r.valid_loss = last_valid = validate(false, r.loss);
  } else {
    if (loss_count > 0) s.history.push_back({s.step, s.tokens, r.seconds, r.loss});
    if (!o.out_dir.empty() && !validated_now) save(checkpoint_path("last.safetensors"));
  }
  if (validated_now) r.valid_loss = last_valid;
  s.seconds += clock.elapsed();
  s.run_started.reset();
  if (!o.out_dir.empty())
    write_loss_curve_svg(checkpoint_path("curve.svg"), s.history, "recur: " + s.model.config().stack.name());
  notify(r);
  return last_valid;
}

}  // namespace recur
