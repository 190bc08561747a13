#pragma once
// Grid LSTM (Kalchbrenner, Danihelka, Graves 2015, "Grid Long Short-Term Memory", arXiv:1507.01526).
//
// The block. An N-dimensional block takes N hidden vectors h_1..h_N and N memory vectors m_1..m_N (d
// units each); H = [h_1; ...; h_N] (N*d). For every dimension k, one LSTM transform:
//   a_k = W_k H + b_k          rows in recur's gate order i, f, g, o (g: the candidate)
//   i = s(a_i)  f = s(a_f)  g = tanh(a_g)  o = s(a_o)
//   m'_k = f * m_k + i * g     h'_k = tanh(o * m'_k)      (the paper's h, not o * tanh(m))
// docs/cells/grid_lstm.md has the backward pass and the choices the paper leaves open.
//
// Three arrangements of blocks, each with its own driver:
//   GridBlock   one block over a batch (any N), for arrangements of one's own and for tests
//   GridLstm1d  the paper's 1-LSTM (section 4.1, parity): N = 1 along depth only; x is projected into h and
//               m of the bottom block, the top block's h is the output
//   GridLstm    the paper's 2-LSTM along time and depth (sections 4.2 addition, 4.3 language model): block
//               (t, l) gets h, m along time from (t-1, l) and along depth from (t, l-1); x(t) is projected
//               into the depth vectors below layer 0; y(t) is the depth h above the top layer
// Sharing (section 3.5 of the paper): `tie_weights` is the paper's "tied": every block along depth (every
// layer) uses the same transforms, so that the network is recurrent in depth too. `share_dimensions`
// (not used in the paper's experiments) makes the N dimensions of a block use one transform.
//
// Shapes: B rows (sequences), d = H hidden units, I inputs, T steps (time-major), L layers.
#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "recur/parameter.hpp"
#include "recur/recurrent_stack.hpp"
#include "recur/tensor.hpp"

namespace recur {

// The transforms of one block: transform k is w [4d, N*d] (column block j multiplies h_j), b [4d].
// With share_dimensions there is one transform, used by every dimension.
struct GridTransformTensors {
  Tensor weight;  // [4d, N*d], row blocks i, f, g, o
  Tensor bias;    // [4d]
};

struct GridBlockConfig {
  int64_t dimensions = 1;   // N
  int64_t hidden_size = 0;  // d
  bool share_dimensions = false;

  int64_t transform_count() const { return share_dimensions ? 1 : dimensions; }
  // Throws recur::Error naming the field, its value and the limit.
  void validate() const;
  bool operator==(const GridBlockConfig&) const = default;
};

// One block over a batch: (h [B, N*d], m [B, N*d]) -> (h', m'), dimension k in columns k*d .. k*d+d-1.
// Parameters "gridblock.weight_d<k>", "gridblock.bias_d<k>" (k < transform_count()).
class GridBlock {
 public:
  // Every weight and bias uniform in [-1/sqrt(d), 1/sqrt(d)] (PyTorch's LSTM).
  GridBlock(const GridBlockConfig& config, uint64_t seed);
  ~GridBlock();
  GridBlock(GridBlock&&) noexcept;
  GridBlock& operator=(GridBlock&&) noexcept;

  const GridBlockConfig& config() const { return config_; }
  std::vector<GridTransformTensors>& transforms() { return weights_; }

  struct State {
    Tensor h, m;  // [B, N*d] each
  };
  State forward(const Tensor& h, const Tensor& m) const;
  // As forward; keeps what backward needs.
  State forward_train(const Tensor& h, const Tensor& m);
  // From dL/dh', dL/dm' (either may be empty: zero) of the last forward_train: returns dL/dh, dL/dm and
  // accumulates (+=) the parameters' gradients.
  State backward(const Tensor& dh_out, const Tensor& dm_out);
  std::vector<Parameter> parameters();

 private:
  struct Tape;
  GridBlockConfig config_;
  std::vector<GridTransformTensors> weights_, grads_;
  std::unique_ptr<Tape> tape_;
};

struct GridLstm1dConfig {
  int64_t input_size = 0;
  int64_t hidden_size = 0;
  int64_t num_layers = 1;
  bool tie_weights = false;  // one block's transform for every layer (the paper's tied 1-LSTM)

  void validate() const;
  bool operator==(const GridLstm1dConfig&) const = default;
};

// The 1-LSTM: x [B, I] -> y [B, H]. h_0, m_0 = the two halves of W_in x + b_in; then L blocks with N = 1,
// (h_l, m_l) = block_l(h_{l-1}, m_{l-1}); y = h_L. Parameters:
//   gridlstm1d.weight_input [2H, I], gridlstm1d.bias_input [2H]   rows 0..H-1 give h_0, H..2H-1 give m_0
//   gridlstm1d.weight_l<l>_d0 [4H, H], gridlstm1d.bias_l<l>_d0 [4H]   l < L (l = 0 only when tied)
class GridLstm1d {
 public:
  // Every tensor uniform in [-1/sqrt(H), 1/sqrt(H)].
  GridLstm1d(const GridLstm1dConfig& config, uint64_t seed);
  ~GridLstm1d();
  GridLstm1d(GridLstm1d&&) noexcept;
  GridLstm1d& operator=(GridLstm1d&&) noexcept;

  const GridLstm1dConfig& config() const { return config_; }
  Tensor forward(const Tensor& x) const;
  Tensor forward_train(const Tensor& x);
  // dy [B, H] of the last forward_train -> dx [B, I]; accumulates (+=) into the parameters' gradients.
  Tensor backward(const Tensor& dy);
  std::vector<Parameter> parameters();

 private:
  struct Tape;
  Tensor run(const Tensor& x, Tape* tape) const;
  GridLstm1dConfig config_;
  Tensor w_in_, b_in_, dw_in_, db_in_;
  std::vector<GridTransformTensors> layers_, d_layers_;  // one per layer, or one when tied
  std::unique_ptr<Tape> tape_;
};

struct GridLstmConfig {
  int64_t input_size = 0;
  int64_t hidden_size = 0;
  int64_t num_layers = 1;
  bool tie_weights = false;       // the paper's tied 2-LSTM: every layer uses layer 0's transforms
  bool share_dimensions = false;  // time and depth use one transform (d0)

  void validate() const;
  bool operator==(const GridLstmConfig&) const = default;
};

// The 2-LSTM along time and depth, as a RecurrentStack (kind "gridlstm"): x [T, B, I] -> y [T, B, H].
// Parameters (k = 0 time, 1 depth; l = 0 only when tied; k = 0 only with share_dimensions):
//   gridlstm.weight_input [2H, I], gridlstm.bias_input [2H]   x(t) -> depth h, m below layer 0
//   gridlstm.weight_l<l>_d<k> [4H, 2H], gridlstm.bias_l<l>_d<k> [4H]   columns 0..H-1 multiply the time
//                                                                     h, H..2H-1 the depth h
// State (zero_state): h [L, B, H], m [L, B, H], the time-dimension vectors of each layer.
// Dropout (forward_train) sits on the depth h passed from layer l to layer l+1; m passes undropped.
class GridLstm : public RecurrentStack {
 public:
  GridLstm(const GridLstmConfig& config, uint64_t seed);
  ~GridLstm() override;
  GridLstm(GridLstm&&) noexcept;
  GridLstm& operator=(GridLstm&&) noexcept;

  const GridLstmConfig& config() const { return config_; }
  std::string kind() const override { return "gridlstm"; }
  int64_t input_size() const override { return config_.input_size; }
  int64_t output_size() const override { return config_.hidden_size; }
  std::vector<Tensor> zero_state(int64_t batch) const override;

  Tensor forward(const Tensor& x, std::vector<Tensor>& state, std::span<const int64_t> lengths) override;
  Tensor forward_train(const Tensor& x, std::vector<Tensor>& state, std::span<const int64_t> lengths,
                       float dropout, std::mt19937_64& rng) override;
  using RecurrentStack::backward;
  Tensor backward(const Tensor& dy, std::vector<Tensor>* d_initial_state) override;
  std::vector<Parameter> parameters() override;

  Tensor& input_weight() { return w_in_; }
  Tensor& input_bias() { return b_in_; }
  // transforms()[l * K + k]: layer l (one layer when tied), dimension k (K = 1 with share_dimensions, else
  // 2).
  std::vector<GridTransformTensors>& transforms() { return weights_; }

  struct Tape;

 private:
  Tensor run(const Tensor& x, std::vector<Tensor>& state, std::span<const int64_t> lengths, float dropout,
             std::mt19937_64* rng, Tape* tape);
  GridLstmConfig config_;
  Tensor w_in_, b_in_, dw_in_, db_in_;
  std::vector<GridTransformTensors> weights_, grads_;
  std::unique_ptr<Tape> tape_;
};

}  // namespace recur
