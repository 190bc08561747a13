// recur run: a model file and an input sequence in, the outputs (and final states) out, as .npy files
// shaped as PyTorch gives them.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "commands.hpp"
#include "recur/error.hpp"
#include "recur/model_file.hpp"
#include "recur/npy.hpp"
#include "recur/rnn.hpp"

namespace recur::cli {
namespace {

struct RunOptions {
  std::string model, input, output, lengths, h0, c0, final_state, cell, gru_reset, expect;
  bool batch_first = false;
  bool show = false;
  double tolerance = 1e-4;
};

ModelLoadOptions load_options(const RunOptions& o) {
  ModelLoadOptions options;
  if (!o.cell.empty()) options.cell = CellSpec::parse(o.cell);
  if (!o.gru_reset.empty()) {
    if (options.cell && options.cell->family != CellFamily::gru)
      throw Error("--gru-reset applies to GRU cells, but --cell is '" + o.cell + "'");
    options.cell = CellSpec::gru(o.gru_reset == "before" ? GruReset::before : GruReset::after);
  }
  return options;
}

// PyTorch's pad_packed_sequence pads to the longest sequence, not to the input's T.
Tensor trim_steps(const Tensor& y, int64_t steps, bool batch_first) {
  const int64_t T = batch_first ? y.dim(1) : y.dim(0);
  if (steps == T) return y;
  const int64_t B = batch_first ? y.dim(0) : y.dim(1), W = y.dim(2);
  Tensor trimmed(batch_first ? Shape{B, steps, W} : Shape{steps, B, W});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < steps; ++t) {
      const int64_t from = batch_first ? b * T + t : t * B + b, to = batch_first ? b * steps + t : t * B + b;
      std::copy_n(y.data() + from * W, W, trimmed.data() + to * W);
    }
  return trimmed;
}

void compare_with_expected(const Tensor& y, const RunOptions& o) {
  const Tensor expected = read_npy(o.expect);
  expected.check_shape("--expect " + o.expect, y.shape());
  double max_error = 0;
  for (int64_t i = 0; i < y.size(); ++i) max_error = std::max(max_error, double(std::fabs(y[i] - expected[i])));
  std::printf("max |y - expected| = %.3g (tolerance %.3g)\n", max_error, o.tolerance);
  if (!(max_error <= o.tolerance))
    throw Error("output differs from " + o.expect + ": max abs difference " + std::to_string(max_error) +
                " exceeds the tolerance " + std::to_string(o.tolerance));
}

// A glimpse of the numbers: the first steps of the first sequence.
void show_output(const Tensor& y, bool batch_first) {
  const int64_t T = batch_first ? y.dim(1) : y.dim(0), B = batch_first ? y.dim(0) : y.dim(1), W = y.dim(2);
  std::printf("y[:, 0, :] (sequence 0, first %lld of %lld steps, first %lld of %lld columns):\n",
              (long long)std::min<int64_t>(T, 6), (long long)T, (long long)std::min<int64_t>(W, 8), (long long)W);
  for (int64_t t = 0; t < std::min<int64_t>(T, 6); ++t) {
    const float* row = y.data() + (batch_first ? t : t * B) * W;
    std::printf("  t=%-3lld", (long long)t);
    for (int64_t j = 0; j < std::min<int64_t>(W, 8); ++j) std::printf(" %+.5f", row[j]);
    std::printf("\n");
  }
}

void run(const RunOptions& o) {
  const Rnn rnn = load_rnn(o.model, load_options(o));
  const RnnConfig& config = rnn.config();
  const Tensor x = read_npy(o.input);
  SequenceOptions options;
  options.batch_first = o.batch_first;
  Tensor h0, c0;
  if (!o.lengths.empty()) {
    Shape shape;
    options.lengths = read_npy_int(o.lengths, &shape);
    if (shape.size() != 1) throw Error("--lengths " + o.lengths + ": expected a 1-d array, got shape " + shape_to_string(shape));
  }
  if (!o.h0.empty()) options.h0 = &(h0 = read_npy(o.h0));
  if (!o.c0.empty()) options.c0 = &(c0 = read_npy(o.c0));

  const RnnOutput out = rnn.forward(x, options);
  const int64_t steps = options.lengths.empty() ? (o.batch_first ? x.dim(1) : x.dim(0))
                                                : *std::max_element(options.lengths.begin(), options.lengths.end());
  const Tensor y = trim_steps(out.y, steps, o.batch_first);
  write_npy(o.output, y);
  std::printf("%s: %s, input %lld, hidden %lld, %d layer%s, %s -> %s %s\n", o.model.c_str(), config.cell.name().c_str(),
              (long long)config.input_size, (long long)config.hidden_size, config.num_layers,
              config.num_layers == 1 ? "" : "s", config.bidirectional ? "bidirectional" : "unidirectional",
              o.output.c_str(), shape_to_string(y.shape()).c_str());
  if (o.show) show_output(y, o.batch_first);
  if (!o.final_state.empty()) {
    write_npy(o.final_state + "_h.npy", out.final_state.h);
    if (!out.final_state.c.empty()) write_npy(o.final_state + "_c.npy", out.final_state.c);
    std::printf("final state -> %s_h.npy%s %s\n", o.final_state.c_str(),
                out.final_state.c.empty() ? "" : (" " + o.final_state + "_c.npy").c_str(),
                shape_to_string(out.final_state.h.shape()).c_str());
  }
  if (!o.expect.empty()) compare_with_expected(y, o);
}

}  // namespace

Command add_run_command(CLI::App& app) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* sub = app.add_subcommand("run", "Run a model on an input sequence (.npy in, .npy out)");
  sub->add_option("--model", o->model, "recur model or PyTorch state_dict (.safetensors)")->required();
  sub->add_option("--input", o->input, "input .npy, float32/float64, [T,B,I] (or [B,T,I] with --batch-first)")
      ->required();
  sub->add_option("--output", o->output, "output .npy: [T,B,D*H] (or [B,T,D*H]), T the longest length")->required();
  sub->add_flag("--batch-first", o->batch_first, "input and output are [B,T,*]");
  sub->add_option("--lengths", o->lengths, "sequence lengths .npy, int32/int64 [B], any order");
  sub->add_option("--h0", o->h0, "initial hidden state .npy [layers*directions,B,H]");
  sub->add_option("--c0", o->c0, "initial cell state .npy [layers*directions,B,H] (LSTM family)");
  sub->add_option("--final-state", o->final_state, "write PREFIX_h.npy (and PREFIX_c.npy) with the final states");
  sub->add_option("--cell", o->cell, "cell, where the file's names cannot tell (e.g. rnn_relu, cifg, gru_reset_before)");
  sub->add_option("--gru-reset", o->gru_reset, "GRU reset gate placement (default after, as PyTorch)")
      ->check(CLI::IsMember({"before", "after"}));
  sub->add_flag("--show", o->show, "print the first steps of the first sequence's output");
  sub->add_option("--expect", o->expect, "compare the output with this .npy; fail beyond --tolerance");
  sub->add_option("--tolerance", o->tolerance, "max abs difference allowed by --expect")->capture_default_str();
  return {sub, [o] { run(*o); }};
}

}  // namespace recur::cli
