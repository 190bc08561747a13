// Rnn::forward and Rnn::backward: checks at the API edge, the batch sorted by length, layers stacked
// and directions run through the shared schedule of driver/layer.cpp, results in the caller's order.
#include "recur/rnn.hpp"

#include <algorithm>

#include "cells/cell.hpp"
#include "driver/frozen_rnn.hpp"
#include "driver/layer.hpp"
#include "recur/error.hpp"

namespace recur {

struct Tape::Impl {
  bool recorded = false;
  RnnConfig config;
  driver::SequenceLayout layout;
  Shape x_shape;
  bool batch_first = false;
  std::vector<AlignedVector<float>> layer_inputs;  // [L], each [T*B, I_l] sorted time-major
  std::vector<driver::LayerTape> layers;           // [L*D]
};

Tape::Tape() : impl_(std::make_unique<Impl>()) {}
Tape::~Tape() = default;
Tape::Tape(Tape&&) noexcept = default;
Tape& Tape::operator=(Tape&&) noexcept = default;

namespace {

struct Dimensions {
  int64_t steps, batch;
};

Dimensions check_input(const RnnConfig& config, const Tensor& x, const SequenceOptions& options) {
  if (x.rank() != 3)
    throw Error(std::string("rnn input x: expected rank 3 ") +
                (options.batch_first ? "[B, T, I]" : "[T, B, I]") + ", got shape " +
                shape_to_string(x.shape()));
  const Dimensions dims =
      options.batch_first ? Dimensions{x.dim(1), x.dim(0)} : Dimensions{x.dim(0), x.dim(1)};
  if (x.dim(2) != config.input_size)
    throw Error("rnn input x: last dimension must be input_size " + std::to_string(config.input_size) +
                ", got " + std::to_string(x.dim(2)) + " (shape " + shape_to_string(x.shape()) + ")");
  if (dims.steps < 1 || dims.batch < 1)
    throw Error("rnn input x: needs at least one time step and one sequence, got shape " +
                shape_to_string(x.shape()));
  if (!options.lengths.empty()) {
    if (int64_t(options.lengths.size()) != dims.batch)
      throw Error("rnn lengths: expected one per sequence (" + std::to_string(dims.batch) + "), got " +
                  std::to_string(options.lengths.size()));
    for (size_t b = 0; b < options.lengths.size(); ++b)
      if (options.lengths[b] < 0 || options.lengths[b] > dims.steps)
        throw Error("rnn lengths[" + std::to_string(b) + "] = " + std::to_string(options.lengths[b]) +
                    " is outside [0, T = " + std::to_string(dims.steps) + "]");
  }
  const Shape state_shape{config.num_layers * config.directions(), dims.batch, config.hidden_size};
  if (options.h0 != nullptr) options.h0->check_shape("rnn initial state h0 [L*D, B, H]", state_shape);
  if (options.c0 != nullptr) {
    if (!config.cell.has_cell_state())
      throw Error("rnn initial state c0: cell '" + config.cell.name() + "' has no cell state; give only h0");
    options.c0->check_shape("rnn initial state c0 [L*D, B, H]", state_shape);
  }
  return dims;
}

// Caller's x ([T,B,I] or [B,T,I]) -> sorted [T*B, I], time-major in sorted order (every element written).
void gather_input(const Tensor& x, const driver::SequenceLayout& layout, bool batch_first,
                  AlignedVector<float>& sorted) {
  const int64_t T = layout.steps, B = layout.batch, I = x.dim(2);
  sorted.resize(size_t(T * B * I));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t k = 0; k < B; ++k) {
      const int64_t b = layout.order[size_t(k)];
      const float* src = x.data() + (batch_first ? b * T + t : t * B + b) * I;
      std::copy_n(src, I, sorted.data() + (t * B + k) * I);
    }
}

// Zeroes the rows past a sequence's end of a layer's output [T*B, width] (as PyTorch pads them); the
// passes write every live row.
void zero_dead_rows(const driver::SequenceLayout& layout, int64_t width, float* rows) {
  const int64_t B = layout.batch;
  for (int64_t t = 0; t < layout.steps; ++t)
    std::fill(rows + (t * B + layout.live_rows[size_t(t)]) * width, rows + (t + 1) * B * width, 0.0f);
}

// A layer's output buffer [T*B, width], its dead rows zeroed.
void prepare_output(const driver::SequenceLayout& layout, int64_t width, AlignedVector<float>& rows) {
  rows.resize(size_t(layout.steps * layout.batch * width));
  zero_dead_rows(layout, width, rows.data());
}

// Inverse of gather_input for a [T*B, width] buffer.
Tensor scatter_output(const AlignedVector<float>& sorted, const driver::SequenceLayout& layout, int64_t width,
                      bool batch_first) {
  const int64_t T = layout.steps, B = layout.batch;
  Tensor y = Tensor::uninitialized(batch_first ? Shape{B, T, width} : Shape{T, B, width});  // every row below
  for (int64_t t = 0; t < T; ++t)
    for (int64_t k = 0; k < B; ++k) {
      const int64_t b = layout.order[size_t(k)];
      std::copy_n(sorted.data() + (t * B + k) * width, width,
                  y.data() + (batch_first ? b * T + t : t * B + b) * width);
    }
  return y;
}

// Row `index` of a caller's [L*D, B, H] state -> [B, H] in sorted order (zeros if absent).
void gather_state(const Tensor* state, int64_t index, const driver::SequenceLayout& layout, int64_t H,
                  AlignedVector<float>& out) {
  out.assign(size_t(layout.batch * H), 0.0f);
  if (state == nullptr || state->empty()) return;
  for (int64_t k = 0; k < layout.batch; ++k)
    std::copy_n(state->data() + (index * layout.batch + layout.order[size_t(k)]) * H, H, out.data() + k * H);
}

void scatter_state(const AlignedVector<float>& sorted, int64_t index, const driver::SequenceLayout& layout,
                   int64_t H, Tensor& state) {
  for (int64_t k = 0; k < layout.batch; ++k)
    std::copy_n(sorted.data() + k * H, H,
                state.data() + (index * layout.batch + layout.order[size_t(k)]) * H);
}

// The passes' buffers, kept from call to call on each calling thread: fresh ones would be allocated,
// page-faulted in and zeroed by the kernel at every call (2% of a training step's samples, a quarter
// of a millisecond for a 1 MB copy of W_h). Forward and backward never run nested. (A tape keeps the
// layers' inputs; their storage goes back and forth between it and these.)
struct PassBuffers {
  driver::LayerScratch layer;
  AlignedVector<float> rows_in, rows_out;  // [T*B, width] sorted, time-major: a layer's input and output
};

PassBuffers& pass_buffers() {
  thread_local PassBuffers buffers;
  return buffers;
}

// packed: the weights of every layer and direction packed once (FrozenRnn), or nullptr.
RnnOutput run_forward(const Rnn& rnn, const Tensor& x, const SequenceOptions& options, Tape::Impl* tape,
                      const std::vector<driver::LayerForward::Packed>* packed = nullptr) {
  const RnnConfig& config = rnn.config();
  const Dimensions dims = check_input(config, x, options);
  const driver::SequenceLayout layout = driver::SequenceLayout::make(dims.steps, dims.batch, options.lengths);
  const int D = config.directions();
  const int64_t H = config.hidden_size, B = dims.batch;
  const bool has_c = config.cell.has_cell_state();

  RnnOutput output;
  output.final_state.h = Tensor({config.num_layers * D, B, H});
  if (has_c) output.final_state.c = Tensor({config.num_layers * D, B, H});
  if (tape != nullptr) {
    tape->recorded = false;
    tape->config = config;
    tape->layout = layout;
    tape->x_shape = x.shape();
    tape->batch_first = options.batch_first;
    tape->layer_inputs.resize(size_t(config.num_layers));
    tape->layers.resize(size_t(config.num_layers * D));
  }

  PassBuffers& buffers = pass_buffers();
  AlignedVector<float> input, output_rows, h, c;
  input.swap(buffers.rows_in);
  output_rows.swap(buffers.rows_out);
  // A time-major batch already longest first is in the passes' layout as it is: the first layer reads x
  // in place (unless the tape must keep a copy) and the last writes y in place, which saves two copies
  // of the whole sequence (and one of dy and dx backward).
  const bool caller_layout = !options.batch_first && layout.in_caller_order();
  const float* layer_input = x.data();
  if (!caller_layout || tape != nullptr) {
    gather_input(x, layout, options.batch_first, input);
    layer_input = input.data();
  }
  for (int l = 0; l < config.num_layers; ++l) {
    float* layer_output = nullptr;
    if (caller_layout && l + 1 == config.num_layers) {
      output.y = Tensor::uninitialized({dims.steps, B, D * H});
      layer_output = output.y.data();
      zero_dead_rows(layout, D * H, layer_output);
    } else {
      prepare_output(layout, D * H, output_rows);
      layer_output = output_rows.data();
    }
    for (int d = 0; d < D; ++d) {
      const int64_t index = l * D + d;
      const LayerParameters& weights = rnn.parameters().layers[size_t(index)];
      const auto cell = cells::make_cell(config.cell, H, weights);
      gather_state(options.h0, index, layout, H, h);
      gather_state(options.c0, index, layout, H, c);
      driver::LayerForward args{
          cell.get(),
          &weights,
          &layout,
          d == 1,
          layer_input,
          config.layer_input_size(l),
          layer_output + d * H,
          D * H,
          h.data(),
          has_c ? c.data() : nullptr,
          tape != nullptr ? &tape->layers[size_t(index)] : nullptr,
          packed != nullptr ? (*packed)[size_t(index)] : driver::LayerForward::Packed{}};
      driver::layer_forward(args, buffers.layer);
      scatter_state(h, index, layout, H, output.final_state.h);
      if (has_c) scatter_state(c, index, layout, H, output.final_state.c);
    }
    // The tape keeps this layer's input; the storage of the one it kept before comes back for reuse.
    if (tape != nullptr) input.swap(tape->layer_inputs[size_t(l)]);
    input.swap(output_rows);
    layer_input = input.data();
  }
  if (!caller_layout) output.y = scatter_output(input, layout, D * H, options.batch_first);
  input.swap(buffers.rows_in);
  output_rows.swap(buffers.rows_out);
  if (tape != nullptr) tape->recorded = true;
  return output;
}

}  // namespace

RnnOutput Rnn::forward(const Tensor& x, const SequenceOptions& options) const {
  return run_forward(*this, x, options, nullptr);
}

RnnOutput Rnn::forward(const Tensor& x, const SequenceOptions& options, Tape& tape) const {
  return run_forward(*this, x, options, &tape.impl());
}

FrozenRnn::FrozenRnn(const Rnn& rnn) : impl_(std::make_unique<Impl>(Impl{rnn, {}, {}, {}})) {
  Impl& impl = *impl_;
  const RnnConfig& config = impl.rnn.config();
  const int64_t H = config.hidden_size, G = config.cell.gate_count();
  const size_t count = size_t(config.num_layers * config.directions());
  impl.w_x.reserve(count);
  impl.w_h.resize(count);
  for (size_t index = 0; index < count; ++index) {
    const LayerParameters& weights = impl.rnn.parameters().layers[index];
    const int64_t I = config.layer_input_size(int(index) / config.directions());
    impl.w_x.emplace_back(weights.w_x.data(), I, G * H, I);
    if (kernels::PackedWeights::available()) impl.w_h[index].pack_transposed(weights.w_h.data(), H, G, H, H);
    impl.packed.push_back({&impl.w_x[index], impl.w_h[index].empty() ? nullptr : &impl.w_h[index], nullptr});
  }
}

FrozenRnn::~FrozenRnn() = default;
FrozenRnn::FrozenRnn(FrozenRnn&&) noexcept = default;
FrozenRnn& FrozenRnn::operator=(FrozenRnn&&) noexcept = default;

const RnnConfig& FrozenRnn::config() const { return impl_->rnn.config(); }
const RnnParameters& FrozenRnn::parameters() const { return impl_->rnn.parameters(); }

RnnOutput FrozenRnn::forward(const Tensor& x, const SequenceOptions& options) const {
  return run_forward(impl_->rnn, x, options, nullptr, &impl_->packed);
}

void Rnn::backward(const Tape& tape_handle, const Tensor& dy, const RnnState& d_final_state,
                   RnnGradients& grads) const {
  const Tape::Impl& tape = tape_handle.impl();
  if (!tape.recorded)
    throw Error("rnn backward: the tape holds no forward pass; call forward with a Tape first");
  if (!(tape.config == config_))
    throw Error("rnn backward: the tape was recorded by a network of another shape");
  const driver::SequenceLayout& layout = tape.layout;
  const int D = config_.directions();
  const int64_t H = config_.hidden_size, T = layout.steps, B = layout.batch;
  const bool has_c = config_.cell.has_cell_state();
  const Shape y_shape = tape.batch_first ? Shape{B, T, D * H} : Shape{T, B, D * H};
  dy.check_shape("rnn backward dy (the shape of y)", y_shape);
  const Shape state_shape{config_.num_layers * D, B, H};
  if (!d_final_state.h.empty())
    d_final_state.h.check_shape("rnn backward d final h [L*D, B, H]", state_shape);
  if (!d_final_state.c.empty()) {
    if (!has_c)
      throw Error("rnn backward: d final c given, but cell '" + config_.cell.name() + "' has no cell state");
    d_final_state.c.check_shape("rnn backward d final c [L*D, B, H]", state_shape);
  }
  grads.parameters.check_shapes(config_);

  grads.initial_state.h = Tensor(state_shape);
  grads.initial_state.c = has_c ? Tensor(state_shape) : Tensor();
  // dL/d(output of the layer above), sorted time-major; becomes dL/d(input) of each layer in turn.
  PassBuffers& buffers = pass_buffers();
  AlignedVector<float> d_output, d_input, dh, dc;
  d_output.swap(buffers.rows_in);
  d_input.swap(buffers.rows_out);
  // As forward: in the caller's layout, the top layer reads dy in place and the bottom one writes dx.
  const bool caller_layout = !tape.batch_first && layout.in_caller_order();
  const float* layer_dy = dy.data();
  if (!caller_layout) {
    gather_input(dy, layout, tape.batch_first, d_output);
    layer_dy = d_output.data();
  }
  for (int l = config_.num_layers - 1; l >= 0; --l) {
    const int64_t I = config_.layer_input_size(l);
    float* layer_dx = nullptr;
    if (caller_layout && l == 0) {
      grads.dx = Tensor::uninitialized(tape.x_shape);  // written whole by the first direction's dx
      layer_dx = grads.dx.data();
    } else {
      d_input.resize(size_t(T * B * I));  // written whole by the first direction's dx (below)
      layer_dx = d_input.data();
    }
    for (int d = 0; d < D; ++d) {
      const int64_t index = l * D + d;
      const LayerParameters& weights = parameters_.layers[size_t(index)];
      const auto cell = cells::make_cell(config_.cell, H, weights);
      gather_state(&d_final_state.h, index, layout, H, dh);
      gather_state(&d_final_state.c, index, layout, H, dc);
      driver::LayerBackward args{cell.get(),
                                 &weights,
                                 &layout,
                                 d == 1,
                                 tape.layer_inputs[size_t(l)].data(),
                                 I,
                                 &tape.layers[size_t(index)],
                                 layer_dy + d * H,
                                 D * H,
                                 dh.data(),
                                 has_c ? dc.data() : nullptr,
                                 &grads.parameters.layers[size_t(index)],
                                 layer_dx,
                                 d > 0};
      driver::layer_backward(args, buffers.layer);
      scatter_state(dh, index, layout, H, grads.initial_state.h);
      if (has_c) scatter_state(dc, index, layout, H, grads.initial_state.c);
    }
    d_output.swap(d_input);
    layer_dy = d_output.data();
  }
  if (!caller_layout) grads.dx = scatter_output(d_output, layout, config_.input_size, tape.batch_first);
  d_output.swap(buffers.rows_in);
  d_input.swap(buffers.rows_out);
}

}  // namespace recur
