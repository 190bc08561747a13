#pragma once
// A recurrent network: num_layers stacked layers of one cell, one or two directions.
//
// Shapes (T time, B batch, I input, H hidden, G gates, D directions, L layers):
//   x    [T, B, I]        or [B, T, I] with batch_first
//   y    [T, B, D*H]      or [B, T, D*H]; direction 1 (reverse) fills columns H..2H, as PyTorch
//   h0, c0, h_n, c_n      [L*D, B, H], row l*D + d for layer l, direction d (PyTorch's order)
// Variable lengths: lengths[b] in [0, T], any order. Outputs past a sequence's end are zero; its final
// state is the state after its last valid step (exactly as PyTorch's packed sequences).
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "recur/cell.hpp"
#include "recur/tensor.hpp"

namespace recur {

struct RnnConfig {
  CellSpec cell;
  int64_t input_size = 0;
  int64_t hidden_size = 0;
  int num_layers = 1;
  bool bidirectional = false;

  int directions() const { return bidirectional ? 2 : 1; }
  // Input width of layer l: input_size for l = 0, D*H above.
  int64_t layer_input_size(int layer) const;
  // Throws recur::Error naming the field and value if a size is not positive.
  void validate() const;
  bool operator==(const RnnConfig&) const = default;
};

// The weights of one layer in one direction, gate blocks stacked along rows in recur's gate order
// (see cell.hpp): row block k of w_x, w_h, b_x, b_h belongs to gate k.
struct LayerParameters {
  Tensor w_x;       // [G*H, I_layer]
  Tensor w_h;       // [G*H, H]
  Tensor b_x;       // [G*H]
  Tensor b_h;       // [G*H]
  Tensor peephole;  // [P*H], blocks i, f, o (i, o when coupled); empty without peepholes
};

// All weights; layers[l * D + d].
struct RnnParameters {
  std::vector<LayerParameters> layers;

  // Zero-filled parameters with the shapes `config` asks for.
  static RnnParameters zeros(const RnnConfig& config);
  void fill(float value);
  // Throws recur::Error naming the tensor, its shape and the expected one.
  void check_shapes(const RnnConfig& config) const;
};

struct RnnState {
  Tensor h;  // [L*D, B, H]
  Tensor c;  // [L*D, B, H]; empty unless the cell has a cell state
};

struct SequenceOptions {
  std::vector<int64_t> lengths;  // empty: every sequence has length T
  const Tensor* h0 = nullptr;    // nullptr: zeros
  const Tensor* c0 = nullptr;    // nullptr: zeros (lstm family only)
  bool batch_first = false;
};

struct RnnOutput {
  Tensor y;
  RnnState final_state;
};

// What training's forward keeps for backward. Opaque; reused across calls without reallocation when
// the shapes stay the same. Backward must see the same weights that forward saw.
class Tape {
 public:
  Tape();
  ~Tape();
  Tape(Tape&&) noexcept;
  Tape& operator=(Tape&&) noexcept;
  struct Impl;
  Impl& impl() { return *impl_; }
  const Impl& impl() const { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

struct RnnGradients {
  RnnParameters parameters;  // accumulated into by backward (zero it with parameters.fill(0))
  Tensor dx;                 // overwritten: the shape of x
  RnnState initial_state;    // overwritten: d h0, d c0
};

class Rnn {
 public:
  // Weights drawn as PyTorch does: uniform in [-1/sqrt(H), 1/sqrt(H)].
  Rnn(const RnnConfig& config, uint64_t seed);
  // Takes the given weights; throws if their shapes do not match the config.
  Rnn(const RnnConfig& config, RnnParameters parameters);

  const RnnConfig& config() const { return config_; }
  const RnnParameters& parameters() const { return parameters_; }
  RnnParameters& parameters() { return parameters_; }

  // Inference: keeps no workspace.
  RnnOutput forward(const Tensor& x, const SequenceOptions& options = {}) const;
  // Training: records in `tape` what backward needs.
  RnnOutput forward(const Tensor& x, const SequenceOptions& options, Tape& tape) const;
  // From dL/dy (shape of y) and dL/d final state (tensors may be empty: zero), computes dL/dx,
  // dL/d initial state and accumulates dL/d weights into grads.parameters (which must be shaped as
  // the weights, e.g. by RnnParameters::zeros).
  void backward(const Tape& tape, const Tensor& dy, const RnnState& d_final_state, RnnGradients& grads) const;

 private:
  RnnConfig config_;
  RnnParameters parameters_;
};

// Inference on weights prepared once, as oneDNN's primitives take weights reordered once: a snapshot of
// an Rnn's weights (later changes to that Rnn are not seen; freeze it again), with each layer's W_x split
// and packed for the AMX tile unit here instead of at every forward (where the tile unit runs the input
// products: kernels/amx_gemm.hpp). forward gives what Rnn::forward gives on the same weights, bit for
// bit, and may run on several threads at once.
class FrozenRnn {
 public:
  explicit FrozenRnn(const Rnn& rnn);
  ~FrozenRnn();
  FrozenRnn(FrozenRnn&&) noexcept;
  FrozenRnn& operator=(FrozenRnn&&) noexcept;

  const RnnConfig& config() const;
  const RnnParameters& parameters() const;
  RnnOutput forward(const Tensor& x, const SequenceOptions& options = {}) const;

  // The snapshot and its packed weights; opaque (RnnStream steps on them).
  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace recur
