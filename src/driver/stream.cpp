// RnnStream: one time step at a time through the same cells and schedule as Rnn::forward (T = 1).
#include "recur/stream.hpp"

#include "cells/cell.hpp"
#include "driver/frozen_rnn.hpp"
#include "driver/layer.hpp"
#include "recur/error.hpp"

namespace recur {

struct RnnStream::Scratch {
  driver::SequenceLayout layout;  // one step, every row live
  std::vector<float> hidden[2];   // the outputs of the layers below the top one, in turn
  // Per layer, h(t-1) kept by the steps in a ring from call to call (LayerForward::CarriedRing): a step
  // then starts without a serial copy of the state.
  std::vector<AlignedVector<float>> rings;
  std::vector<driver::LayerForward::CarriedRing> carried;
  driver::LayerScratch buffer;
  std::vector<std::unique_ptr<cells::Cell>> cells;  // one per layer
  // On a FrozenRnn: its packed weights, with W_x packed for the steps' fused input products.
  std::vector<driver::LayerForward::Packed> packed;
  std::vector<kernels::PackedWeights> w_x_steps;
};

RnnStream::RnnStream(const FrozenRnn& frozen, int64_t batch) : RnnStream(frozen.impl().rnn, batch) {
  const FrozenRnn::Impl& impl = frozen.impl();
  const RnnConfig& config = impl.rnn.config();
  const int64_t H = config.hidden_size, G = config.cell.gate_count();
  Scratch& s = *scratch_;
  s.packed = impl.packed;
  s.w_x_steps.resize(size_t(config.num_layers));
  for (int l = 0; l < config.num_layers; ++l) {
    driver::LayerForward::Packed& packed = s.packed[size_t(l)];
    // The small batches whose steps take x W_x^T with the recurrent product (layer_forward's fuse_input).
    if (packed.w_h == nullptr || batch > kernels::kSmallGemmMaxRows ||
        !s.cells[size_t(l)]->fuses_input_product())
      continue;
    const int64_t I = config.layer_input_size(l);
    s.w_x_steps[size_t(l)].pack_transposed(impl.rnn.parameters().layers[size_t(l)].w_x.data(), I, G, H, I,
                                           {batch, batch});
    packed.w_x_steps = &s.w_x_steps[size_t(l)];
  }
}

RnnStream::RnnStream(const Rnn& rnn, int64_t batch)
    : rnn_(rnn), batch_(batch), scratch_(std::make_unique<Scratch>()) {
  const RnnConfig& config = rnn.config();
  if (config.bidirectional)
    throw Error(
        "rnn stream: a bidirectional network needs the whole sequence; stream only unidirectional ones");
  if (batch < 1) throw Error("rnn stream: batch must be at least 1, got " + std::to_string(batch));
  scratch_->layout = driver::SequenceLayout::make(1, batch, {});
  for (int l = 0; l < config.num_layers; ++l) {
    scratch_->cells.push_back(
        cells::make_cell(config.cell, config.hidden_size, rnn.parameters().layers[size_t(l)]));
    scratch_->rings.emplace_back(size_t(2 * batch * config.hidden_size));
  }
  scratch_->carried.resize(size_t(config.num_layers));
  for (int l = 0; l < config.num_layers; ++l)
    scratch_->carried[size_t(l)].buffers = scratch_->rings[size_t(l)].data();
  reset();
}

RnnStream::~RnnStream() = default;

void RnnStream::reset() {
  const RnnConfig& config = rnn_.config();
  const Shape shape{config.num_layers, batch_, config.hidden_size};
  state_.h = Tensor(shape);
  state_.c = config.cell.has_cell_state() ? Tensor(shape) : Tensor();
  for (auto& ring : scratch_->carried) ring.filled = false;
}

void RnnStream::set_state(RnnState state) {
  const RnnConfig& config = rnn_.config();
  const Shape shape{config.num_layers, batch_, config.hidden_size};
  state.h.check_shape("rnn stream state h [L, B, H]", shape);
  if (config.cell.has_cell_state())
    state.c.check_shape("rnn stream state c [L, B, H]", shape);
  else if (!state.c.empty())
    throw Error("rnn stream state: cell '" + config.cell.name() + "' has no cell state; give only h");
  state_ = std::move(state);
  for (auto& ring : scratch_->carried) ring.filled = false;
}

Tensor RnnStream::step(const Tensor& x_t) {
  const RnnConfig& config = rnn_.config();
  const int64_t H = config.hidden_size, B = batch_;
  x_t.check_shape("rnn stream input x_t [B, I]", {B, config.input_size});
  Scratch& s = *scratch_;
  // x_t is read in place, the top layer writes y in place (every row is live in a stream's step, so the
  // steps write y whole), and the layers between take turns with two buffers: no copies between steps.
  Tensor y = Tensor::uninitialized({B, H});
  const float* input = x_t.data();
  for (int l = 0; l < config.num_layers; ++l) {
    std::vector<float>& between = s.hidden[size_t(l % 2)];
    between.resize(size_t(B * H));
    float* output = l + 1 == config.num_layers ? y.data() : between.data();
    float* c = config.cell.has_cell_state() ? state_.c.data() + l * B * H : nullptr;
    driver::LayerForward args{s.cells[size_t(l)].get(),
                              &rnn_.parameters().layers[size_t(l)],
                              &s.layout,
                              false,
                              input,
                              config.layer_input_size(l),
                              output,
                              H,
                              state_.h.data() + l * B * H,
                              c,
                              nullptr,
                              s.packed.empty() ? driver::LayerForward::Packed{} : s.packed[size_t(l)],
                              &s.carried[size_t(l)]};
    driver::layer_forward(args, s.buffer);
    input = output;
  }
  return y;
}

}  // namespace recur
