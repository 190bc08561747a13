// RnnStream: one time step at a time through the same cells and schedule as Rnn::forward (T = 1).
#include "recur/stream.hpp"

#include "cells/cell.hpp"
#include "driver/frozen_rnn.hpp"
#include "driver/layer.hpp"
#include "recur/error.hpp"

namespace recur {

struct RnnStream::Scratch {
  driver::SequenceLayout layout;  // one step, every row live
  std::vector<float> input, output;
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
    if (packed.w_h == nullptr || batch > kernels::kSmallGemmMaxRows || !s.cells[size_t(l)]->fuses_input_product())
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
  for (int l = 0; l < config.num_layers; ++l)
    scratch_->cells.push_back(
        cells::make_cell(config.cell, config.hidden_size, rnn.parameters().layers[size_t(l)]));
  reset();
}

RnnStream::~RnnStream() = default;

void RnnStream::reset() {
  const RnnConfig& config = rnn_.config();
  const Shape shape{config.num_layers, batch_, config.hidden_size};
  state_.h = Tensor(shape);
  state_.c = config.cell.has_cell_state() ? Tensor(shape) : Tensor();
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
}

Tensor RnnStream::step(const Tensor& x_t) {
  const RnnConfig& config = rnn_.config();
  const int64_t H = config.hidden_size, B = batch_;
  x_t.check_shape("rnn stream input x_t [B, I]", {B, config.input_size});
  Scratch& s = *scratch_;
  s.input.assign(x_t.values().begin(), x_t.values().end());
  for (int l = 0; l < config.num_layers; ++l) {
    s.output.assign(size_t(B * H), 0.0f);
    float* c = config.cell.has_cell_state() ? state_.c.data() + l * B * H : nullptr;
    driver::LayerForward args{s.cells[size_t(l)].get(),
                              &rnn_.parameters().layers[size_t(l)],
                              &s.layout,
                              false,
                              s.input.data(),
                              config.layer_input_size(l),
                              s.output.data(),
                              H,
                              state_.h.data() + l * B * H,
                              c,
                              nullptr,
                              s.packed.empty() ? driver::LayerForward::Packed{} : s.packed[size_t(l)]};
    driver::layer_forward(args, s.buffer);
    s.input.swap(s.output);
  }
  return Tensor({B, H}, s.input);
}

}  // namespace recur
