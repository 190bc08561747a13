#pragma once
// The benchmark's shape sets (issue 3) and the arithmetic that turns a time into GFLOP/s.
#include <cstdint>
#include <string>
#include <vector>

#include "recur/cell.hpp"

namespace recur::bench {

// infer: forward without a tape; train: forward with a tape + backward (one training step);
// step: the streaming API, one time step per call with carried state (time per step).
enum class Mode { infer, train, step };

std::string mode_name(Mode mode);

struct Case {
  std::string name;  // stable across runs: a_charrnn, b_db512, ... (JSON consumers key on it)
  Mode mode = Mode::infer;
  int64_t input = 0, hidden = 0, batch = 0, steps = 0;  // I, H, B, T (step mode: T = steps timed per repeat)
  int layers = 1;
};

// A cell as the benchmark names it: recur's spec plus the oneDNN algorithm that computes the same
// function (gru = reset after = oneDNN lbr_gru; gru_reset_before = oneDNN gru).
struct BenchCell {
  std::string name;  // lstm, gru, rnn, gru_reset_before
  CellSpec spec;
  bool torch_has_it = true;  // PyTorch has no reset-before GRU
};

// The cases: a_charrnn, b_db512, b_db1024 (train), c_inf_b1, c_inf_b4 (infer), d_stream256 (step).
std::vector<Case> standard_cases();
// Tiny shapes for CI: seconds, but every path (2 layers with I != H, each mode) is exercised.
std::vector<Case> smoke_cases();
// lstm, gru, rnn by default; gru_reset_before on request (and in smoke runs).
std::vector<BenchCell> all_cells();
std::vector<std::string> default_cell_names();
BenchCell find_cell(const std::string& name);  // throws recur::Error naming the known cells

// Floating-point operations of one timed unit: the whole sequence (infer), one training step
// = 3x forward (train), one time step (step). Forward per layer: 2*G*H*(I_l + H)*B*T.
double case_flops(const Case& c, const CellSpec& cell);

}  // namespace recur::bench
