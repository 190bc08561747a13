// RnnConfig and RnnParameters: sizes, shapes, initialisation.
#include <cmath>
#include <random>

#include "recur/error.hpp"
#include "recur/rnn.hpp"

namespace recur {

int64_t RnnConfig::layer_input_size(int layer) const {
  return layer == 0 ? input_size : directions() * hidden_size;
}

void RnnConfig::validate() const {
  if (input_size <= 0)
    throw Error("rnn config: input_size must be positive, got " + std::to_string(input_size));
  if (hidden_size <= 0)
    throw Error("rnn config: hidden_size must be positive, got " + std::to_string(hidden_size));
  if (num_layers <= 0)
    throw Error("rnn config: num_layers must be positive, got " + std::to_string(num_layers));
}

namespace {

struct LayerShapes {
  Shape w_x, w_h, b, peephole;
};

LayerShapes layer_shapes(const RnnConfig& config, int layer) {
  const int64_t G = config.cell.gate_count(), H = config.hidden_size;
  const int64_t P = config.cell.peephole_count();
  return {{G * H, config.layer_input_size(layer)}, {G * H, H}, {G * H}, P == 0 ? Shape{0} : Shape{P * H}};
}

std::string layer_name(const RnnConfig& config, size_t index) {
  const int D = config.directions();
  return "layer " + std::to_string(index / size_t(D)) + (index % size_t(D) == 1 ? " reverse" : "");
}

}  // namespace

RnnParameters RnnParameters::zeros(const RnnConfig& config) {
  config.validate();
  RnnParameters parameters;
  for (int l = 0; l < config.num_layers; ++l) {
    for (int d = 0; d < config.directions(); ++d) {
      const LayerShapes shapes = layer_shapes(config, l);
      parameters.layers.push_back({Tensor(shapes.w_x), Tensor(shapes.w_h), Tensor(shapes.b), Tensor(shapes.b),
                                   Tensor(shapes.peephole)});
    }
  }
  return parameters;
}

void RnnParameters::fill(float value) {
  for (LayerParameters& layer : layers)
    for (Tensor* t : {&layer.w_x, &layer.w_h, &layer.b_x, &layer.b_h, &layer.peephole}) t->fill(value);
}

void RnnParameters::check_shapes(const RnnConfig& config) const {
  const size_t expected = size_t(config.num_layers) * size_t(config.directions());
  if (layers.size() != expected)
    throw Error("rnn parameters: expected " + std::to_string(expected) + " layer-directions for " +
                std::to_string(config.num_layers) + " layers x " + std::to_string(config.directions()) +
                " directions, got " + std::to_string(layers.size()));
  for (size_t i = 0; i < layers.size(); ++i) {
    const LayerShapes shapes = layer_shapes(config, int(i / size_t(config.directions())));
    const std::string where = "rnn parameters, " + layer_name(config, i) + ", ";
    layers[i].w_x.check_shape(where + "w_x", shapes.w_x);
    layers[i].w_h.check_shape(where + "w_h", shapes.w_h);
    layers[i].b_x.check_shape(where + "b_x", shapes.b);
    layers[i].b_h.check_shape(where + "b_h", shapes.b);
    // An absent peephole may be an empty tensor of any rank.
    if (!(shapes.peephole == Shape{0} && layers[i].peephole.empty()))
      layers[i].peephole.check_shape(where + "peephole (" + config.cell.name() + ")", shapes.peephole);
  }
}

Rnn::Rnn(const RnnConfig& config, uint64_t seed)
    : config_(config), parameters_(RnnParameters::zeros(config)) {
  // PyTorch's initialisation: every weight uniform in [-1/sqrt(H), 1/sqrt(H)]. The uniform draw is
  // written out (top 24 bits of a 64-bit Mersenne twister) so that a seed gives the same weights with
  // any standard library.
  std::mt19937_64 generator(seed);
  const float bound = 1.0f / std::sqrt(static_cast<float>(config.hidden_size));
  for (LayerParameters& layer : parameters_.layers)
    for (Tensor* t : {&layer.w_x, &layer.w_h, &layer.b_x, &layer.b_h, &layer.peephole})
      for (float& v : t->values()) {
        const float unit = static_cast<float>(generator() >> 40) * (1.0f / 16777216.0f);
        v = (2.0f * unit - 1.0f) * bound;
      }
}

Rnn::Rnn(const RnnConfig& config, RnnParameters parameters)
    : config_(config), parameters_(std::move(parameters)) {
  config_.validate();
  parameters_.check_shapes(config_);
}

}  // namespace recur
