#pragma once
// The whole state of a training run, shared by the loop (trainer.cpp) and its checkpoints
// (checkpoint.cpp).
#include <chrono>
#include <optional>
#include <random>
#include <vector>

#include "recur/training.hpp"

namespace recur {

struct Trainer::State {
  TrainOptions options;
  LanguageModel model;
  Vocabulary vocabulary;
  std::vector<int32_t> train, valid;
  Optimizer optimizer;
  LrSchedule schedule;
  std::mt19937_64 rng;
  std::vector<Tensor> carried;  // the recurrent stack's state after the previous batch
  int64_t step = 0, epoch = 0, batch_in_epoch = 0, tokens = 0;
  double seconds = 0;  // training time of earlier runs (resumed)
  std::optional<std::chrono::steady_clock::time_point> run_started;  // set while run() runs
  double best_valid = std::numeric_limits<double>::infinity();
  std::vector<HistoryPoint> history;

  State(const TrainOptions& o, LanguageModel m, Vocabulary v, std::vector<int32_t> t, std::vector<int32_t> va)
      : options(o),
        model(std::move(m)),
        vocabulary(std::move(v)),
        train(std::move(t)),
        valid(std::move(va)),
        optimizer(o.optimizer),
        schedule(o.schedule),
        rng(o.seed) {}

  int64_t stream_length() const { return int64_t(train.size()) / options.batch; }
  int64_t batches_per_epoch() const { return (stream_length() - 1 + options.seq_len - 1) / options.seq_len; }
};

// FNV-1a over the token ids: resuming checks that the data is the data the run trained on.
uint64_t token_hash(const std::vector<int32_t>& tokens);
// Throws recur::Error unless the training text fills at least one batch and validation has 0 or >= 2 tokens.
void check_corpus(const std::vector<int32_t>& train, const std::vector<int32_t>& valid,
                  const TrainOptions& options);

}  // namespace recur
