// One run of the long-gap experiment: train a fresh network on a task until the paper's stopping rule
// holds and a fresh test set confirms it, or until the budget is spent (recur/long_gap.hpp).
#include "recur/long_gap.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>

#include "experiments/sequence_model.hpp"
#include "recur/error.hpp"
#include "recur/optimizer.hpp"

namespace recur {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Independent streams for the weights, the training data, the test data and the gradient probe.
uint64_t stream_seed(uint64_t seed, uint64_t stream) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ULL + stream * 0xBF58476D1CE4E5B9ULL + 1;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

std::vector<const SequenceExample*> pointers(const std::vector<SequenceExample>& examples) {
  std::vector<const SequenceExample*> p;
  for (const SequenceExample& e : examples) p.push_back(&e);
  return p;
}

struct Run {
  const LongGapRunConfig& config;
  const std::function<void(const std::string&)>& progress;
  experiments::SequenceModel model;
  Optimizer optimizer;
  Clock::time_point start = Clock::now();
  double last_report = 0;
  LongGapRunResult result;

  bool out_of_budget() const {
    return result.sequences >= config.max_sequences ||
           (config.max_seconds > 0 && seconds_since(start) >= config.max_seconds);
  }

  // The configured batch, or what is left of the budget.
  int64_t batch_size() const { return std::min(config.batch, config.max_sequences - result.sequences); }

  // One update; returns the batch's outcome. A non-finite gradient is not applied.
  experiments::BatchOutcome step(const std::vector<const SequenceExample*>& batch) {
    model.zero_grad();
    experiments::BatchOutcome r = model.train_batch(batch);
    const std::vector<Parameter> parameters = model.parameters();
    if (std::isfinite(clip_gradient_norm(parameters, config.clip_norm)))
      optimizer.step(parameters, config.learning_rate);
    result.sequences += int64_t(batch.size());
    return r;
  }

  void report(double loss, double window_error) {
    const double now = seconds_since(start);
    if (!progress || now - last_report < 5) return;
    last_report = now;
    char line[200];
    std::snprintf(line, sizeof line, "%s %s gap %lld seed %llu: %lld sequences, loss %.4f, recent wrong %.3f",
                  long_gap_task_name(config.task).c_str(), config.cell.name().c_str(), (long long)config.gap,
                  (unsigned long long)config.seed, (long long)result.sequences, loss, window_error);
    progress(line);
  }

  void test(const std::vector<SequenceExample>& test_set) {
    result.test_wrong = model.count_wrong(test_set);
    result.test_count = int64_t(test_set.size());
    result.test_error = double(result.test_wrong) / double(result.test_count);
  }

  // Fresh sequences every batch; stop when the last `window` were all right and the test set agrees.
  void train_on_fresh_sequences() {
    std::mt19937_64 data_rng(stream_seed(config.seed, 1)), test_rng(stream_seed(config.seed, 2));
    const std::vector<SequenceExample> test_set =
        make_long_gap_examples(config.task, config.gap, config.test_sequences, test_rng);
    std::deque<std::pair<uint8_t, double>> window;  // (right, loss) per recent sequence
    int64_t wrong_in_window = 0;
    double loss_in_window = 0;
    while (!out_of_budget()) {
      const std::vector<SequenceExample> batch =
          make_long_gap_examples(config.task, config.gap, batch_size(), data_rng);
      const experiments::BatchOutcome r = step(pointers(batch));
      for (uint8_t ok : r.right) {
        window.emplace_back(ok, r.loss);
        wrong_in_window += !ok, loss_in_window += r.loss;
        if (int64_t(window.size()) > config.window) {
          wrong_in_window -= !window.front().first, loss_in_window -= window.front().second;
          window.pop_front();
        }
      }
      result.train_loss = loss_in_window / double(window.size());
      report(result.train_loss, double(wrong_in_window) / double(window.size()));
      if (int64_t(window.size()) == config.window && wrong_in_window == 0) {
        test(test_set);
        if (result.test_error <= config.solved_test_error) {
          result.solved = true;
          return;
        }
        window.clear(), wrong_in_window = 0, loss_in_window = 0;  // earn the stop again
      }
    }
    test(test_set);
  }

  // The paper's protocol: a fixed training set and a fixed test set of strings; solved when every
  // symbol of every string of both sets is predicted right. Checked after each pass over the training set.
  void train_on_reber_sets() {
    std::mt19937_64 data_rng(stream_seed(config.seed, 1)), test_rng(stream_seed(config.seed, 2));
    const std::vector<SequenceExample> train_set =
        make_long_gap_examples(config.task, 0, config.reber_strings, data_rng);
    const std::vector<SequenceExample> test_set =
        make_long_gap_examples(config.task, 0, config.reber_strings, test_rng);
    std::vector<const SequenceExample*> order = pointers(train_set);
    while (!out_of_budget()) {
      for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[size_t(data_rng() % i)]);
      double loss = 0;
      for (size_t start = 0; start < order.size() && !out_of_budget(); start += size_t(config.batch)) {
        const std::vector<const SequenceExample*> batch(
            order.begin() + long(start),
            order.begin() + long(std::min(order.size(), start + size_t(batch_size()))));
        loss += step(batch).loss * double(batch.size());
      }
      result.train_loss = loss / double(order.size());
      const int64_t train_wrong = model.count_wrong(train_set);
      test(test_set);
      report(result.train_loss, double(train_wrong) / double(train_set.size()));
      if (train_wrong == 0 && result.test_wrong == 0) {
        result.solved = true;
        return;
      }
    }
  }
};

}  // namespace

void LongGapRunConfig::validate() const {
  const auto positive = [](int64_t v, const char* what) {
    if (v < 1)
      throw Error(std::string("long-gap run: ") + what + " must be positive, got " + std::to_string(v));
  };
  positive(hidden_size, "hidden size");
  positive(batch, "batch");
  positive(max_sequences, "training budget (sequences)");
  positive(window, "stopping window");
  positive(test_sequences, "test sequences");
  positive(reber_strings, "Reber set size");
  positive(gradient_sequences, "gradient probe sequences");
  if (!(learning_rate > 0.0f)) throw Error("long-gap run: learning rate must be positive");
  if (task == LongGapTask::adding && gap < 4)
    throw Error("long-gap run: the adding problem needs T >= 4, got " + std::to_string(gap));
  if (task == LongGapTask::temporal_order && gap < 10)
    throw Error("long-gap run: temporal order needs T >= 10, got " + std::to_string(gap));
  if (task == LongGapTask::language && gap < 0)
    throw Error("long-gap run: the language task needs G >= 0, got " + std::to_string(gap));
}

int64_t long_gap_parameter_count(LongGapTask task, const StackSpec& spec, int64_t H) {
  const TaskShape s = long_gap_task_shape(task);
  if (spec.kind == StackKind::core) {
    const CellSpec& cell = spec.cell;
    return cell.gate_count() * H * (s.input_size + H + 2) + cell.peephole_count() * H + s.output_size * H +
           s.output_size;
  }
  // A variant's layout is its own: count what it builds.
  return experiments::SequenceModel(task, spec, H, 0, 0.0f).parameter_count();
}

int64_t hidden_size_for_parameters(LongGapTask task, const StackSpec& cell, int64_t parameters) {
  int64_t H = 1;
  while (long_gap_parameter_count(task, cell, H + 1) <= parameters) ++H;
  return H;
}

LongGapRunResult run_long_gap(const LongGapRunConfig& config,
                              const std::function<void(const std::string&)>& progress) {
  config.validate();
  OptimizerConfig adam;
  adam.kind = OptimizerKind::adam;
  Run run{config,
          progress,
          experiments::SequenceModel(config.task, config.cell, config.hidden_size,
                                     stream_seed(config.seed, 0), config.forget_bias),
          Optimizer(adam),
          Clock::now(),
          0.0,
          {}};
  run.result.parameters = run.model.parameter_count();
  std::vector<SequenceExample> probe;
  if (config.measure_gradients) {
    std::mt19937_64 probe_rng(stream_seed(config.seed, 3));
    probe = make_long_gap_examples(config.task, config.gap, config.gradient_sequences, probe_rng);
    run.result.gradient_initial = run.model.hidden_gradient_norms(probe);
  }
  if (config.task == LongGapTask::reber)
    run.train_on_reber_sets();
  else
    run.train_on_fresh_sequences();
  run.result.seconds = seconds_since(run.start);
  if (config.measure_gradients) run.result.gradient_trained = run.model.hidden_gradient_norms(probe);
  return run.result;
}

}  // namespace recur
