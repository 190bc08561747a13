#pragma once
// The algorithmic tasks of the Grid LSTM paper (Kalchbrenner, Danihelka, Graves 2015, section 4), as one
// training run each; `recur experiment grid` runs them and docs/cells/grid_lstm.md reports results.
//   parity    k-bit parity (section 4.1): the k bits are given at once, as one input vector; the target
//             is 1 when the number of ones is odd. The paper's model is the tied 1-LSTM (GridLstm1d).
//   addition  the sum of two D-digit integers (section 4.2; the paper's D = 15): the digits of both
//             numbers are read one per step, most significant first, separated by '+' and '='; then
//             D + 1 steps with a blank input in which the D + 1 digits of the sum (leading zero
//             included) are predicted, none fed back. The paper's model is the tied 2-LSTM (GridLstm).
// Models: "grid" (the paper's tied Grid LSTM), "grid_untied", and "lstm", a stacked LSTM (recur::Rnn) of
// the same depth (for parity it runs one step on the whole bit vector, so that it too sees the k bits
// through one projection). Every model reads its output through a linear layer and softmax.
// Training: Adam (recur::Optimizer), gradient-norm clipping, fresh random problems for every batch
// (no problem is seen twice, as in the paper).
#include <cstdint>
#include <functional>
#include <string>

namespace recur {

enum class GridTask { parity, addition };
std::string grid_task_name(GridTask task);
// "parity", "addition"; throws recur::Error naming them.
GridTask parse_grid_task(const std::string& name);

struct GridRunConfig {
  GridTask task = GridTask::parity;
  std::string model = "grid";  // grid, grid_untied, lstm
  int64_t bits = 16;           // parity: k
  int64_t digits = 3;          // addition: D
  int64_t hidden_size = 64;
  int64_t num_layers = 10;
  int64_t batch = 20;
  float learning_rate = 1e-3f;
  double clip_norm = 1.0;  // <= 0: no clipping
  // The paper gives no initialisation. forget_bias: every forget gate's initial bias. init_scale > 0:
  // weights uniform in [-init_scale, init_scale] and biases 0 (a scale that does not shrink with H keeps the
  // gates input-dependent in small networks; without it nothing learned 8-bit parity); 0: +-1/sqrt(H).
  float forget_bias = 1.0f;
  float init_scale = 1.0f;
  int64_t max_samples = 1000000;
  double max_seconds = 0;  // 0: no time limit
  int64_t window = 1000;   // training stops once the last `window` training problems were all right
  int64_t test_samples = 1000;
  uint64_t seed = 0;

  // Throws recur::Error naming the field, its value and the limit.
  void validate() const;
};

struct GridRunResult {
  int64_t parameters = 0;
  int64_t samples = 0;     // training problems seen
  int64_t solved_at = -1;  // samples when the window was first all right; -1: never
  double seconds = 0;
  double train_loss = 0;                   // mean cross-entropy per output step over the last window
  double train_accuracy = 0;               // fraction of the last window's problems all right
  int64_t test_right = 0, test_count = 0;  // fresh problems with every output right
  double test_accuracy() const { return test_count ? double(test_right) / double(test_count) : 0.0; }
};

// The parameter count of `model` at these sizes, and the hidden size at which a stacked LSTM of the same
// depth has about as many parameters as the tied grid model of `config` (for a fair comparison).
int64_t grid_task_parameter_count(const GridRunConfig& config);
int64_t grid_task_matched_lstm_hidden(const GridRunConfig& config);

// Trains one model on one task; `progress` (may be empty) gets a line every few seconds.
GridRunResult run_grid_task(const GridRunConfig& config,
                            const std::function<void(const std::string&)>& progress);

}  // namespace recur
