// The core's cells as a RecurrentStack (core_stack.hpp).
#include "variants/core_stack.hpp"

#include "recur/error.hpp"
#include "recur/layers.hpp"

namespace recur {
namespace {

const char* const field_names[] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_peephole"};

}  // namespace

CoreStack::CoreStack(const CellSpec& cell, int64_t input_size, const std::vector<int64_t>& hidden_sizes,
                     uint64_t seed)
    : cell_(cell) {
  if (hidden_sizes.empty()) throw Error("recurrent stack: needs at least one layer");
  for (size_t l = 0; l < hidden_sizes.size(); ++l) {
    RnnConfig c;
    c.cell = cell;
    c.input_size = l == 0 ? input_size : hidden_sizes[l - 1];
    c.hidden_size = hidden_sizes[l];
    layers_.emplace_back(c, seed + 1 + uint64_t(l));
    RnnGradients grads;
    grads.parameters = RnnParameters::zeros(c);
    d_layers_.push_back(std::move(grads));
  }
}

std::vector<Tensor> CoreStack::zero_state(int64_t batch) const {
  std::vector<Tensor> state;
  for (const Rnn& layer : layers_)
    for (int k = 0; k < states_per_layer(); ++k)
      state.emplace_back(Shape{1, batch, layer.config().hidden_size});
  return state;
}

Tensor CoreStack::run(const Tensor& x, std::vector<Tensor>& state, std::span<const int64_t> lengths,
                      float dropout, std::mt19937_64* rng) {
  const int L = int(layers_.size()), S = states_per_layer();
  x.check_shape("recurrent stack input", {x.dim(0), x.dim(1), input_size()});
  if (int(state.size()) != L * S)
    throw Error("recurrent stack state: " + std::to_string(state.size()) + " tensors, " + kind() + " x " +
                std::to_string(L) + " layers needs " + std::to_string(L * S));
  const bool train = rng != nullptr;
  if (train) {
    tapes_.resize(size_t(L));
    masks_.resize(size_t(L));
  }
  SequenceOptions options;
  options.lengths.assign(lengths.begin(), lengths.end());
  Tensor y;
  const Tensor* input = &x;
  for (int l = 0; l < L; ++l) {
    const int64_t H = layers_[size_t(l)].config().hidden_size;
    for (int k = 0; k < S; ++k)
      state[size_t(l * S + k)].check_shape("recurrent stack state of layer " + std::to_string(l),
                                           {1, x.dim(1), H});
    options.h0 = &state[size_t(l * S)];
    options.c0 = S == 2 ? &state[size_t(l * S + 1)] : nullptr;
    RnnOutput out = train ? layers_[size_t(l)].forward(*input, options, tapes_[size_t(l)])
                          : layers_[size_t(l)].forward(*input, options);
    state[size_t(l * S)] = std::move(out.final_state.h);
    if (S == 2) state[size_t(l * S + 1)] = std::move(out.final_state.c);
    y = std::move(out.y);
    if (train && l + 1 < L) dropout_forward(y, dropout, *rng, masks_[size_t(l)]);
    input = &y;
  }
  return y;
}

Tensor CoreStack::forward(const Tensor& x, std::vector<Tensor>& state, std::span<const int64_t> lengths) {
  return run(x, state, lengths, 0.0f, nullptr);
}

Tensor CoreStack::forward_train(const Tensor& x, std::vector<Tensor>& state, std::span<const int64_t> lengths,
                                float dropout, std::mt19937_64& rng) {
  return run(x, state, lengths, dropout, &rng);
}

Tensor CoreStack::backward(const Tensor& dy_top, std::vector<Tensor>* d_initial_state) {
  const int L = int(layers_.size()), S = states_per_layer();
  if (int(tapes_.size()) != L) throw Error("recurrent stack: backward without a training forward");
  if (d_initial_state != nullptr) d_initial_state->resize(size_t(L * S));
  Tensor dy = dy_top;
  for (int l = L - 1; l >= 0; --l) {
    if (l + 1 < L) dropout_backward(masks_[size_t(l)], dy);
    RnnGradients& grads = d_layers_[size_t(l)];
    layers_[size_t(l)].backward(tapes_[size_t(l)], dy, RnnState{}, grads);
    if (d_initial_state != nullptr) {
      (*d_initial_state)[size_t(l * S)] = grads.initial_state.h;
      if (S == 2) (*d_initial_state)[size_t(l * S + 1)] = grads.initial_state.c;
    }
    dy = std::move(grads.dx);
  }
  return dy;
}

std::vector<Parameter> CoreStack::parameters() {
  std::vector<Parameter> list;
  for (size_t l = 0; l < layers_.size(); ++l) {
    LayerParameters& p = layers_[l].parameters().layers[0];
    LayerParameters& d = d_layers_[l].parameters.layers[0];
    Tensor* values[] = {&p.w_x, &p.w_h, &p.b_x, &p.b_h, &p.peephole};
    Tensor* grads[] = {&d.w_x, &d.w_h, &d.b_x, &d.b_h, &d.peephole};
    for (int k = 0; k < 5; ++k)
      if (!values[k]->empty())
        list.push_back(
            {std::string("rnn.") + field_names[k] + "_l" + std::to_string(l), values[k], grads[k]});
  }
  return list;
}

}  // namespace recur
