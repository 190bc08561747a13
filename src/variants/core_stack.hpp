#pragma once
// The core's cells as a RecurrentStack: one single-layer recur::Rnn per layer (so that sizes may
// differ and dropout can sit between layers; the cost is that of one stacked Rnn, which also runs layer
// by layer). Parameters keep PyTorch's names (rnn.weight_ih_l<k>, ...), so a model file loads in torch.
// State: per layer h [1, B, H_l], then c [1, B, H_l] for the LSTM family.
#include <vector>

#include "recur/recurrent_stack.hpp"
#include "recur/rnn.hpp"

namespace recur {

class CoreStack : public RecurrentStack {
 public:
  CoreStack(const CellSpec& cell, int64_t input_size, const std::vector<int64_t>& hidden_sizes,
            uint64_t seed);

  std::string kind() const override { return cell_.name(); }
  int64_t input_size() const override { return layers_.front().config().input_size; }
  int64_t output_size() const override { return layers_.back().config().hidden_size; }
  std::vector<Tensor> zero_state(int64_t batch) const override;
  Tensor forward(const Tensor& x, std::vector<Tensor>& state, std::span<const int64_t> lengths) override;
  Tensor forward_train(const Tensor& x, std::vector<Tensor>& state, std::span<const int64_t> lengths,
                       float dropout, std::mt19937_64& rng) override;
  using RecurrentStack::backward;
  Tensor backward(const Tensor& dy, std::vector<Tensor>* d_initial_state) override;
  std::vector<Parameter> parameters() override;

  const std::vector<Rnn>& layers() const { return layers_; }
  std::vector<Rnn>& layers() { return layers_; }

 private:
  int states_per_layer() const { return cell_.has_cell_state() ? 2 : 1; }
  Tensor run(const Tensor& x, std::vector<Tensor>& state, std::span<const int64_t> lengths, float dropout,
             std::mt19937_64* rng);

  CellSpec cell_;
  std::vector<Rnn> layers_;
  std::vector<RnnGradients> d_layers_;
  // The last forward_train: each layer's tape, and the dropout masks on layer l's output (l < L-1).
  std::vector<Tape> tapes_;
  std::vector<std::vector<float>> masks_;
};

}  // namespace recur
