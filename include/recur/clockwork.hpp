#pragma once
// The clockwork RNN (Koutnik, Greff, Gomez, Schmidhuber 2014, "A Clockwork RNN", arXiv 1402.3511): a tanh
// RNN whose H hidden units form g modules of k = H / g units; module i has a clock period T_i and at step
// s only the modules with s mod T_i == 0 update, the others keep their h. Module i reads the recurrent
// state of the modules j >= i only (modules ordered by increasing period: slower modules feed faster
// ones, never the other way), so W_h is block upper-triangular. docs/cells/clockwork.md has the
// equations, forward and backward, and the choices the paper leaves open.
//
// Per layer l (modules u = i*k .. i*k+k-1 of module i):
//   a(s) = W_x x(s) + b_x + W_h h(s-1) + b_h      (row block i of W_h reads column blocks j >= i only)
//   h_u(s) = tanh(a_u(s))  if s mod T_i == 0,  else h_u(s-1)
// Layers stack: layer l+1 reads layer l's h (with dropout in training, as RecurrentStack says).
//
// Parameters (PyTorch's names and shapes, so that a file loads as a state_dict), per layer l:
//   clockwork.weight_ih_l<l>  [H, I_l]   clockwork.weight_hh_l<l> [H, H]
//   clockwork.bias_ih_l<l>    [H]        clockwork.bias_hh_l<l>   [H]
// weight_hh keeps its structural zeros (the blocks (i, j < i)): they are zero at construction, never
// read by the forward pass, and their gradient is exactly zero, so no optimizer moves them.
//
// State (RecurrentStack::zero_state): h of each layer [1, B, H], then one tensor [B]: each sequence's step
// count s, stored modulo the clock cycle lcm(T_1..T_g) (what decides every later update); whole numbers in
// float, exact because validate() keeps the cycle <= 2^24. A sequence of length n advances its count by
// n; counting starts at 0, so every module updates at a sequence's first step.
#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "recur/recurrent_stack.hpp"
#include "recur/rnn.hpp"

namespace recur {

struct ClockworkConfig {
  int64_t input_size = 0;
  int64_t hidden_size = 0;
  std::vector<int64_t> periods;  // one per module, non-decreasing; empty: 2^0 .. 2^(g-1), g = num_modules
  int64_t num_modules = 0;       // g; with periods given, 0 or periods.size()
  int64_t num_layers = 1;

  // Throws recur::Error naming the field, its value and the rule it breaks.
  void validate() const;
  // The periods in use: `periods`, or 2^0 .. 2^(num_modules-1).
  std::vector<int64_t> module_periods() const;
  int64_t module_count() const;
  int64_t module_size() const { return hidden_size / module_count(); }
  // lcm of the periods: the step counter is kept modulo this.
  int64_t cycle() const;
};

// The largest cycle a float step counter holds exactly.
inline constexpr int64_t kClockworkMaxCycle = int64_t(1) << 24;

class ClockworkRnn : public RecurrentStack {
 public:
  // Weights uniform in [-1/sqrt(H), 1/sqrt(H)] (recur::Rnn's draw), structural zeros of W_h set to 0.
  ClockworkRnn(const ClockworkConfig& config, uint64_t seed);
  ~ClockworkRnn() override;
  ClockworkRnn(ClockworkRnn&&) noexcept;
  ClockworkRnn& operator=(ClockworkRnn&&) noexcept;

  std::string kind() const override { return "clockwork"; }
  int64_t input_size() const override { return config_.input_size; }
  int64_t output_size() const override { return config_.hidden_size; }
  std::vector<Tensor> zero_state(int64_t batch) const override;
  Tensor forward(const Tensor& x, std::vector<Tensor>& state, std::span<const int64_t> lengths) override;
  Tensor forward_train(const Tensor& x, std::vector<Tensor>& state, std::span<const int64_t> lengths,
                       float dropout, std::mt19937_64& rng) override;
  using RecurrentStack::backward;
  Tensor backward(const Tensor& dy, std::vector<Tensor>* d_initial_state) override;
  std::vector<Parameter> parameters() override;

  const ClockworkConfig& config() const { return config_; }
  const std::vector<int64_t>& periods() const { return periods_; }
  // True when module j feeds module i (j >= i): block (i, j) of W_h is a parameter.
  static bool connected(int64_t i, int64_t j) { return j >= i; }
  // Trainable numbers: every tensor's size less the structural zeros of each W_h.
  int64_t parameter_count() const;

  // Layer l's weights and their accumulated gradients (w_x, w_h, b_x, b_h; peephole empty). Values put
  // into the structural-zero blocks of w_h are ignored (never read).
  LayerParameters& layer(int l) { return layers_.at(size_t(l)); }
  const LayerParameters& layer(int l) const { return layers_.at(size_t(l)); }
  LayerParameters& layer_gradients(int l) { return grads_.at(size_t(l)); }

  struct Workspace;  // the last forward_train (src/variants/clockwork.cpp)

 private:
  Tensor run(const Tensor& x, std::vector<Tensor>& state, std::span<const int64_t> lengths, float dropout,
             std::mt19937_64* rng);

  ClockworkConfig config_;
  std::vector<int64_t> periods_;
  std::vector<LayerParameters> layers_, grads_;
  std::unique_ptr<Workspace> tape_;
};

}  // namespace recur
