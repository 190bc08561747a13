#pragma once
// The depth-gated LSTM (Yao, Cohn, Vylomova, Duh, Dyer 2015, "Depth-Gated LSTM", arXiv:1508.03790): a stack
// of peephole LSTMs in which layer l >= 1 has a fifth gate, the depth gate d, that lets the memory cell of
// the layer below at the same step flow into its own:
//   d(t) = s(W_xd x(t) + b_d + w_cd * c(t-1) + w_ld * c_lower(t))      x(t) = h_lower(t), after dropout
//   c(t) = d(t) * c_lower(t) + f(t) * c(t-1) + i(t) * g(t)
// i, f, g, o and h are those of recur's peephole LSTM (i, f look at c(t-1), o at c(t)); layer 0 is that
// peephole LSTM alone. docs/cells/depth_gated_lstm.md has the equations, the backward pass and the choices.
//
// Parameters, per layer l (G = 4 for l = 0, 5 above; rows in gate order i, f, g, o, then d):
//   dglstm.weight_ih_l<l>        [G*H, I_l]   I_0 = input_size, I_l = H above
//   dglstm.weight_hh_l<l>        [4*H, H]     (d has no recurrent term)
//   dglstm.bias_ih_l<l>          [G*H]        b_d is rows 4H..5H
//   dglstm.bias_hh_l<l>          [4*H]
//   dglstm.weight_peephole_l<l>  [3*H]        p_i, p_f, p_o (recur's peephole LSTM)
//   dglstm.weight_depth_l<l>     [2*H]        w_cd (own c(t-1)), w_ld (c_lower(t)); l >= 1 only
// State (zero_state): per layer h [1, B, H], then c [1, B, H], as the core's LSTM stack keeps it.
#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "recur/recurrent_stack.hpp"

namespace recur {

struct DepthGatedLstmConfig {
  int64_t input_size = 0;
  int64_t hidden_size = 0;
  int64_t num_layers = 2;

  // Throws recur::Error naming the field, its value and the limit (each must be at least 1).
  void validate() const;
  bool operator==(const DepthGatedLstmConfig&) const = default;
};

class DepthGatedLstm : public RecurrentStack {
 public:
  // Every weight uniform in [-1/sqrt(H), 1/sqrt(H)] (PyTorch's LSTM), the depth gate's included.
  DepthGatedLstm(const DepthGatedLstmConfig& config, uint64_t seed);
  ~DepthGatedLstm() override;
  DepthGatedLstm(DepthGatedLstm&&) noexcept;
  DepthGatedLstm& operator=(DepthGatedLstm&&) noexcept;

  const DepthGatedLstmConfig& config() const { return config_; }
  std::string kind() const override { return "dglstm"; }
  int64_t input_size() const override { return config_.input_size; }
  int64_t output_size() const override { return config_.hidden_size; }
  std::vector<Tensor> zero_state(int64_t batch) const override;

  Tensor forward(const Tensor& x, std::vector<Tensor>& state, std::span<const int64_t> lengths) override;
  // Dropout sits on h passed upwards (the lower layer's output, which is the upper layer's x and the
  // depth gate's input); c_lower reaches the upper layer undropped.
  Tensor forward_train(const Tensor& x, std::vector<Tensor>& state, std::span<const int64_t> lengths,
                       float dropout, std::mt19937_64& rng) override;
  using RecurrentStack::backward;
  Tensor backward(const Tensor& dy, std::vector<Tensor>* d_initial_state) override;
  std::vector<Parameter> parameters() override;

  // The weights of one layer, as parameters() names them (weight_depth empty in layer 0).
  struct LayerTensors {
    Tensor weight_ih, weight_hh, bias_ih, bias_hh, weight_peephole, weight_depth;
  };
  const std::vector<LayerTensors>& layers() const { return weights_; }
  std::vector<LayerTensors>& layers() { return weights_; }

  struct Tape;

 private:
  Tensor run(const Tensor& x, std::vector<Tensor>& state, std::span<const int64_t> lengths, float dropout,
             std::mt19937_64* rng);

  DepthGatedLstmConfig config_;
  std::vector<LayerTensors> weights_;
  std::vector<LayerTensors> grads_;
  std::unique_ptr<Tape> tape_;  // the last forward_train
};

}  // namespace recur
