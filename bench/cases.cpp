#include "cases.hpp"

#include "recur/error.hpp"

namespace recur::bench {

std::string mode_name(Mode mode) {
  switch (mode) {
    case Mode::infer:
      return "infer";
    case Mode::train:
      return "train";
    case Mode::step:
      return "step";
  }
  return "?";
}

std::vector<Case> standard_cases() {
  return {
      {"a_charrnn", Mode::train, 128, 512, 32, 64, 2},   // char-rnn training step
      {"b_db512", Mode::train, 512, 512, 64, 50, 1},     // DeepBench-style training
      {"b_db1024", Mode::train, 1024, 1024, 32, 25, 1},  //
      {"c_inf_b1", Mode::infer, 512, 512, 1, 100, 1},    // small-batch inference
      {"c_inf_b4", Mode::infer, 512, 512, 4, 100, 1},    //
      {"d_stream256", Mode::step, 256, 256, 1, 200, 1},  // streaming; T = steps timed per repeat
  };
}

std::vector<Case> smoke_cases() {
  return {
      {"s_train", Mode::train, 12, 16, 3, 5, 2},
      {"s_infer", Mode::infer, 16, 16, 2, 7, 1},
      {"s_step", Mode::step, 8, 8, 1, 6, 1},
  };
}

std::vector<BenchCell> all_cells() {
  return {
      {"lstm", CellSpec::lstm(), true},
      {"gru", CellSpec::gru(GruReset::after), true},
      {"rnn", CellSpec::rnn_tanh(), true},
      {"gru_reset_before", CellSpec::gru(GruReset::before), false},
  };
}

std::vector<std::string> default_cell_names() { return {"lstm", "gru", "rnn"}; }

BenchCell find_cell(const std::string& name) {
  std::string known;
  for (const BenchCell& cell : all_cells()) {
    if (cell.name == name) return cell;
    known += (known.empty() ? "" : ", ") + cell.name;
  }
  throw Error("bench: unknown cell '" + name + "' (known: " + known + ")");
}

double case_flops(const Case& c, const CellSpec& cell) {
  const double G = cell.gate_count(), H = double(c.hidden);
  const double steps = c.mode == Mode::step ? 1.0 : double(c.steps);
  double forward = 0;
  for (int l = 0; l < c.layers; ++l) {
    const double input = l == 0 ? double(c.input) : H;
    forward += 2.0 * G * H * (input + H) * double(c.batch) * steps;
  }
  return c.mode == Mode::train ? 3.0 * forward : forward;
}

}  // namespace recur::bench
