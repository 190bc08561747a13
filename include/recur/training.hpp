#pragma once
// Training a language model with truncated backpropagation through time, and its checkpoints.
//
// Data: the training tokens are cut into B contiguous streams of S = N / B tokens (the rest dropped);
// batch k of an epoch is tokens [k T, k T + T] of every stream (inputs and targets shifted by one; the
// last batch may be shorter). The hidden state carries from batch to batch without gradient and starts
// at zero each epoch.
// Each update: forward/backward, global-norm clipping, then the optimizer step at the schedule's rate.
// A non-finite loss or gradient never reaches the weights: the update is skipped (and reported), the
// carried state is reset; max_bad_steps of them in a row stop training with recur::Error, leaving the
// checkpoints as they were.
// Checkpoints (DIR/last.safetensors at each validation and at the end, DIR/best.safetensors when the
// validation loss improves) hold the weights, the optimizer state, the carried state, the RNG state, the
// data position and the configuration (model, vocabulary, training options) in the metadata; resuming
// from one and training on gives bit-identical weights to training straight through (same thread count).
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "recur/language_model.hpp"
#include "recur/optimizer.hpp"
#include "recur/text.hpp"

namespace recur {

struct TrainOptions {
  int64_t seq_len = 100;  // T
  int64_t batch = 32;     // B
  OptimizerConfig optimizer;
  ScheduleConfig schedule;
  double clip_norm = 5.0;  // 0: no clipping
  uint64_t seed = 1;       // weights (a new model) and dropout masks
  // Stop at whichever limit comes first; 0 means no limit (at least one must be set).
  int64_t max_epochs = 0;
  int64_t max_steps = 0;
  double max_minutes = 0;  // wall time of this run (a resumed run gets its own)
  int64_t stop_at_step =
      0;  // pause at this step (0: no); unlike max_steps it leaves the cosine horizon alone
  int64_t valid_every = 500;  // steps between validations (and checkpoints); 0: only at the end
  int64_t report_every = 10;  // steps between progress reports
  int max_bad_steps = 5;
  std::string out_dir;                       // where checkpoints go; empty: none
  std::map<std::string, std::string> notes;  // kept in checkpoint metadata as "note.<key>" (e.g. data files)
  void validate() const;
};

// One point of the learning curve.
struct HistoryPoint {
  int64_t step = 0, tokens = 0;
  double seconds = 0;
  double loss = std::numeric_limits<double>::quiet_NaN();        // mean training loss since the last point
  double valid_loss = std::numeric_limits<double>::quiet_NaN();  // NaN where not validated
};

// What the trainer tells its caller after each report interval, validation, skipped update, and at the end.
struct TrainReport {
  enum class Kind { progress, validation, skipped, done } kind = Kind::progress;
  int64_t step = 0, epoch = 0, tokens = 0;
  double epoch_fraction = 0;  // of the current epoch done
  double seconds = 0;         // training time so far, resumed runs included
  double loss = 0;            // mean training loss since the previous report (skipped steps excluded)
  std::optional<double> valid_loss;
  double learning_rate = 0;
  double tokens_per_second = 0;  // this run
  double eta_seconds = -1;       // -1: unknown
  std::string message;           // why a step was skipped
};

// Mean loss per predicted token over `tokens` cut into `batch` streams (fewer when the text is short),
// read T tokens at a time with the state carried, no dropout. Throws if there are fewer than 2 tokens.
double evaluate_tokens(LanguageModel& model, std::span<const int32_t> tokens, int64_t batch, int64_t seq_len);

class Trainer {
 public:
  // A new run: the model is built from model_config with options.seed. Throws recur::Error if the
  // training text is shorter than one batch (batch x (seq_len + 1) tokens).
  Trainer(const LanguageModelConfig& model_config, Vocabulary vocabulary, std::vector<int32_t> train_tokens,
          std::vector<int32_t> valid_tokens, const TrainOptions& options);
  // Continues the run saved in `checkpoint`: model, optimizer, state, data position and options from the
  // file; the stopping limits and out_dir from `limits` (its other fields are ignored). The tokens must be
  // the ones the run trained on (checked by count and hash).
  static Trainer resume(const std::string& checkpoint, std::vector<int32_t> train_tokens,
                        std::vector<int32_t> valid_tokens, const TrainOptions& limits);
  ~Trainer();
  Trainer(Trainer&&) noexcept;

  // Trains until a limit; `report` (may be empty) sees every report. Writes checkpoints and, at the end,
  // DIR/curve.svg. Returns the final validation loss (NaN without validation text).
  double run(const std::function<void(const TrainReport&)>& report);

  LanguageModel& model();
  const Vocabulary& vocabulary() const;
  const TrainOptions& options() const;
  const std::vector<HistoryPoint>& history() const;
  int64_t step() const;
  int64_t batches_per_epoch() const;
  // Writes a checkpoint of the whole training state (atomic).
  void save(const std::string& path) const;

  struct State;  // the run's whole state (internal: src/train/trainer_state.hpp)

 private:
  explicit Trainer(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// A language model and its vocabulary from a checkpoint (best or last). Throws recur::Error naming the
// file if it is not a recur language-model checkpoint or a tensor is missing or misshapen.
LanguageModel load_language_model(const std::string& path, Vocabulary* vocabulary);

// The learning curve (training loss and validation loss against tokens seen) as an SVG picture.
void write_loss_curve_svg(const std::string& path, const std::vector<HistoryPoint>& history,
                          const std::string& title);

}  // namespace recur
