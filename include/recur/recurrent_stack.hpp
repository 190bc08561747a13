#pragma once
// A recurrent stack as a model uses it (the language model, the experiments): x [T, B, I] ->
// y [T, B, O], a state carried from call to call, gradients into its own parameters.
// The structured variants implement it, each with its own driver:
//   DepthGatedLstm (recur/depth_gated_lstm.hpp)  Yao et al. 2015, a stack joined by depth gates
//   ClockworkRnn   (recur/clockwork.hpp)         Koutnik et al. 2014, modules updating at their periods
//   GridLstm       (recur/grid_lstm.hpp)         Kalchbrenner et al. 2015, LSTM along time and depth
// Shapes: T steps, B sequences, time-major.
// Lengths, as recur::Rnn: `lengths` empty means every sequence runs all T steps; otherwise lengths[b] in
// [0, T] (any order): sequence b runs steps 0 .. lengths[b]-1, its y is 0 after them, its final state
// is its state after its last step (its initial state when 0), and dy past its end is ignored.
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "recur/parameter.hpp"
#include "recur/tensor.hpp"

namespace recur {

class RecurrentStack {
 public:
  virtual ~RecurrentStack() = default;

  // The kind ("dglstm", "clockwork", "gridlstm") for messages and checkpoint metadata.
  virtual std::string kind() const = 0;
  virtual int64_t input_size() const = 0;
  virtual int64_t output_size() const = 0;

  // The state of B sequences at the start, zero. Its tensors are the variant's own (h and c of each
  // layer, a clockwork's step counter, ...); callers only keep it and pass it back.
  virtual std::vector<Tensor> zero_state(int64_t batch) const = 0;

  // Inference: x [T, B, I] -> y [T, B, O]. `state`: in, the state before x; out, the state after it.
  // T = 1 is a streaming step.
  virtual Tensor forward(const Tensor& x, std::vector<Tensor>& state, std::span<const int64_t> lengths) = 0;

  // Training: as forward, and keeps what backward needs. Where the stack has layers, dropout with
  // probability `dropout` (inverted; masks drawn from rng) sits on the hidden output between them.
  virtual Tensor forward_train(const Tensor& x, std::vector<Tensor>& state, std::span<const int64_t> lengths,
                               float dropout, std::mt19937_64& rng) = 0;
  // The gradient of the last forward_train: dy [T, B, O] -> dx [T, B, I]. Accumulates (+=) into the
  // parameters' grads. No gradient flows into the initial state (truncated BPTT treats it as a constant).
  Tensor backward(const Tensor& dy) { return backward(dy, nullptr); }

  // As backward, and also the gradient into the initial state (shaped as zero_state's tensors), for
  // callers that train through it (the long-gap experiment's gradient measurements, tests).
  virtual Tensor backward(const Tensor& dy, std::vector<Tensor>* d_initial_state) = 0;

  // Every trainable tensor once, in a fixed order, named as checkpoints store them.
  virtual std::vector<Parameter> parameters() = 0;
};

}  // namespace recur
