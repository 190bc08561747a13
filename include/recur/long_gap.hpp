#pragma once
// Long-gap tasks, where the information needed at the end of a sequence came long before it, and the
// experiment that trains each cell on them (`recur experiment long-gap`; docs/long_gap.md).
//   adding          Hochreiter & Schmidhuber 1997, experiment 4: two marked values among noise; output
//                   0.5 + (X1 + X2) / 4 at the end; right when |error| < 0.04. Gap: T, the minimal length.
//   reber           the embedded Reber grammar (their experiment 1): predict the next symbols; the
//                   second symbol must be remembered until the second last. No gap parameter.
//   temporal_order  their experiment 6a: classify the order of two symbols X/Y placed early among
//                   distractors; right when every output's error is below 0.3. Gap: T, the minimal length.
//   language        "I grew up in France . <G filler words> I speak fluent" -> French. Gap: G.
// Every generator is deterministic given its std::mt19937_64.
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "recur/cell.hpp"
#include "recur/stack_spec.hpp"

namespace recur {

enum class LongGapTask { adding, reber, temporal_order, language };
// "adding", "reber", "temporal_order", "language".
std::string long_gap_task_name(LongGapTask task);
// Inverse of long_gap_task_name (also "temporal-order"); throws recur::Error naming the accepted names.
LongGapTask parse_long_gap_task(const std::string& name);

// ---- The adding problem ----
struct AddingExample {
  std::vector<float> values;   // [L], uniform in [-1, 1] (0 at a marked first pair)
  std::vector<float> markers;  // [L], 1 at the two marked pairs, -1 at the first and last otherwise, else 0
  int64_t first = 0, second = 0;  // positions of the marked pairs (X1, X2)
  float target = 0;               // 0.5 + (X1 + X2) / 4
};
// L uniform in [T, T + T/10]; X1's position uniform among the first 10 pairs (the first L when shorter),
// X2's among the first T/2 - 1 pairs other than X1's. T >= 4.
AddingExample make_adding_example(int64_t T, std::mt19937_64& rng);
inline constexpr double adding_tolerance = 0.04;

// ---- The embedded Reber grammar ----
// Symbols in this order (their indices are the one-hot positions).
inline constexpr char reber_symbols[] = "BTPSXVE";
inline constexpr int reber_symbol_count = 7;
// A string of the plain Reber grammar, B ... E, each branch taken with probability 1/2.
std::string make_reber_string(std::mt19937_64& rng);
// B, T or P, a Reber string, the same T or P, E.
std::string make_embedded_reber_string(std::mt19937_64& rng);
// For each prefix s[0..t], t = 0 .. n-2: bit k set when symbol k may come next under the embedded
// grammar. Throws recur::Error naming the position if s is not an embedded Reber string.
std::vector<uint8_t> embedded_reber_next_symbols(const std::string& s);
bool is_embedded_reber_string(const std::string& s);

// ---- Temporal order (6a) ----
// Symbols a b c d X Y B E at indices 0..7. Classes Q, R, S, U = XX, XY, YX, YY (indices 0..3).
inline constexpr char temporal_order_symbols[] = "abcdXYBE";
struct TemporalOrderExample {
  std::vector<int32_t> symbols;   // [L]: E first, B (the trigger) last, a..d elsewhere except two X/Y
  int64_t first = 0, second = 0;  // 0-based positions of the two X/Y
  int32_t label = 0;
};
// L uniform in [T, T + T/10]; the X/Y at 1-based positions t1 in [T/10, T/5] and t2 in [T/2, T/2 + T/10]
// (t1 >= 2). T = 100 gives the paper's 100..110, 10..20 and 50..60. T >= 10.
TemporalOrderExample make_temporal_order_example(int64_t T, std::mt19937_64& rng);
inline constexpr double temporal_order_tolerance = 0.3;

// ---- The long-gap language task ----
struct LanguageExample {
  std::vector<int32_t> tokens;  // word ids; the answer follows the last one
  int32_t language = 0;         // class: index into language_task_languages()
  int64_t country_position = 0;
};
// The vocabulary (the word of each id) and the country / language pairs (class k: country k's language).
const std::vector<std::string>& language_task_vocabulary();
const std::vector<std::string>& language_task_countries();
const std::vector<std::string>& language_task_languages();
// An opening template naming a country ("I grew up in France ."), exactly G filler words from filler
// sentence templates (no country or language among them), a closing template ("so I speak fluent").
LanguageExample make_language_example(int64_t G, std::mt19937_64& rng);
// The words of an example joined by spaces, with the answer when `with_answer`.
std::string language_example_text(const LanguageExample& example, bool with_answer);

// ---- One training example of any task, as the experiment feeds it ----
struct SequenceExample {
  int64_t length = 0;
  std::vector<float> inputs;          // [length, input_size] for real-valued inputs (adding) ...
  std::vector<int32_t> tokens;        // ... or [length] one-hot indices (the symbolic tasks)
  float value = 0;                    // adding: the target at the end
  int32_t label = -1;                 // temporal order, language: the class at the end
  std::vector<uint8_t> next_symbols;  // reber: [length] masks of the allowed next symbols
};
struct TaskShape {
  int64_t input_size = 0, output_size = 0;
};
TaskShape long_gap_task_shape(LongGapTask task);
// `count` fresh examples at the given gap (ignored by reber).
std::vector<SequenceExample> make_long_gap_examples(LongGapTask task, int64_t gap, int64_t count,
                                                    std::mt19937_64& rng);

// ---- The experiment: one run = one task, cell, gap and seed ----
struct LongGapRunConfig {
  LongGapTask task = LongGapTask::adding;
  StackSpec cell = CellSpec::lstm();  // a core cell or a variant (dglstm, clockwork, gridlstm)
  int64_t gap = 100;
  uint64_t seed = 0;
  int64_t hidden_size = 16;
  int64_t batch = 16;
  float learning_rate = 3e-3f;  // Adam
  double clip_norm = 1.0;
  // Bias at initialisation of the gate that keeps the state (LSTM f; cifg: -bias on i, as f = 1 - i;
  // GRU z; the depth-gated LSTM's f; both of the grid LSTM's f), so that a gated cell starts out
  // remembering, as the 1997 LSTM (no forget gate) did.
  float forget_bias = 5.0f;
  int64_t max_sequences = 200000;   // training budget, the same for every cell
  double max_seconds = 0;           // wall-clock cap of the run; 0: none
  int64_t window = 2000;            // stop when this many most recent training sequences were all right
  int64_t test_sequences = 2560;    // fresh test sequences (reber: its fixed 256-string test set)
  int64_t reber_strings = 256;      // reber: training and test set sizes
  double solved_test_error = 0.01;  // solved: the stop criterion met and test error at most this
  bool measure_gradients = false;   // record ||dL/dh(t)|| at initialisation and after training
  int64_t gradient_sequences = 64;
  void validate() const;
};

struct LongGapRunResult {
  bool solved = false;
  double test_error = 1;  // fraction of the test sequences wrong (reber: of the 256 test strings)
  int64_t test_wrong = 0, test_count = 0;
  int64_t sequences = 0;  // training sequences seen until solved (or the whole budget)
  double seconds = 0;
  double train_loss = 0;  // mean over the last window
  int64_t parameters = 0;
  // gradient_*[k]: mean over sequences of ||dL/dh(t)|| at distance k = (last step) - t from the loss
  // (the loss of the last step), for k < the shortest length.
  std::vector<double> gradient_initial, gradient_trained;
};

// Parameters of a one-layer network of `cell` with hidden size H and a linear output layer.
int64_t long_gap_parameter_count(LongGapTask task, const StackSpec& cell, int64_t H);
// The largest H whose parameter count does not exceed `parameters` (at least 1).
int64_t hidden_size_for_parameters(LongGapTask task, const StackSpec& cell, int64_t parameters);

// Trains from scratch until solved or out of budget. `progress` (may be empty) hears one line now
// and then.
LongGapRunResult run_long_gap(const LongGapRunConfig& config,
                              const std::function<void(const std::string&)>& progress = {});

// ---- Pictures ----
struct ChartSeries {
  std::string name;
  std::vector<double> x, y;  // non-finite points (and, on a log axis, non-positive ones) are skipped
  bool dashed = false;
};
struct ChartOptions {
  std::string title, x_label, y_label;
  bool log_x = false, log_y = false;
  double y_min = NAN, y_max = NAN;  // NaN: from the data
};
// A line chart as SVG, written directly (no plotting dependency); one colour per series, a legend.
void write_line_chart_svg(const std::string& path, const std::vector<ChartSeries>& series,
                          const ChartOptions& options);

}  // namespace recur
