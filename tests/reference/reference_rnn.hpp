#pragma once
// The ground truth, part 2: a whole network (stacked, bidirectional, variable lengths, initial states),
// forward and backward by plain BPTT, naive and in any number type (used with double).
//
// Shapes (time-major, as the engine inside): x [T, B, I]; y [T, B, D*H] (direction 1 in columns H..2H);
// h0, c0, h_n, c_n [L*D, B, H], row l*D + d. Each batch element is run on its own, one step at a time:
// sequence b has len_b steps; the forward direction runs t = 0 .. len_b-1, the reverse one len_b-1 .. 0;
// y past len_b is 0; its final state is the state after its last step (h0 when len_b = 0). These are
// PyTorch's packed-sequence semantics.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "recur/rnn.hpp"
#include "reference/reference_cells.hpp"

namespace recur::ref {

inline int64_t layer_input_size_ref(const RnnConfig& config, int layer) {
  return layer == 0 ? config.input_size : config.directions() * config.hidden_size;
}

// All weights; layers[l * D + d], as recur::RnnParameters.
template <typename Real>
struct RnnParametersRef {
  std::vector<LayerParametersRef<Real>> layers;
};

template <typename Real>
RnnParametersRef<Real> zero_parameters_ref(const RnnConfig& config) {
  const int64_t hidden = config.hidden_size;
  const int64_t rows = gate_count_ref(config.cell) * hidden;
  RnnParametersRef<Real> p;
  for (int l = 0; l < config.num_layers; ++l) {
    for (int d = 0; d < config.directions(); ++d) {
      LayerParametersRef<Real> layer;
      layer.w_x.assign(rows * layer_input_size_ref(config, l), Real(0));
      layer.w_h.assign(rows * hidden, Real(0));
      layer.b_x.assign(rows, Real(0));
      layer.b_h.assign(rows, Real(0));
      layer.peephole.assign(peephole_count_ref(config.cell) * hidden, Real(0));
      p.layers.push_back(std::move(layer));
    }
  }
  return p;
}

// Calls f(name, values) for every parameter tensor, e.g. ("layers[1].w_h", ...); skips empty ones.
template <typename Params, typename F>
void for_each_parameter_ref(Params& p, F&& f) {
  for (size_t k = 0; k < p.layers.size(); ++k) {
    auto& layer = p.layers[k];
    const std::string prefix = "layers[" + std::to_string(k) + "].";
    f(prefix + "w_x", layer.w_x);
    f(prefix + "w_h", layer.w_h);
    f(prefix + "b_x", layer.b_x);
    f(prefix + "b_h", layer.b_h);
    if (!layer.peephole.empty()) f(prefix + "peephole", layer.peephole);
  }
}

// Every weight uniform in [-scale, scale].
template <typename Real>
RnnParametersRef<Real> random_parameters_ref(const RnnConfig& config, std::mt19937_64& rng, double scale) {
  RnnParametersRef<Real> p = zero_parameters_ref<Real>(config);
  std::uniform_real_distribution<double> uniform(-scale, scale);
  for_each_parameter_ref(p, [&](const std::string&, std::vector<Real>& v) {
    for (Real& value : v) value = static_cast<Real>(uniform(rng));
  });
  return p;
}

// One call's input. h0 and c0 may be empty (zeros); c0 is read only by the lstm family.
template <typename Real>
struct BatchRef {
  int64_t steps = 0;             // T
  int64_t batch = 0;             // B
  std::vector<Real> x;           // [T, B, I]
  std::vector<int64_t> lengths;  // [B], each in [0, T]
  std::vector<Real> h0, c0;      // [L*D, B, H] or empty
};

template <typename Real>
struct ForwardRef {
  std::vector<Real> y;    // [T, B, D*H]
  std::vector<Real> h_n;  // [L*D, B, H]
  std::vector<Real> c_n;  // [L*D, B, H]; empty outside the lstm family
  // Smallest |pre-activation| of a relu cell over all steps (infinity for other cells): a test that
  // perturbs inputs can tell whether it may have crossed the kink at 0.
  Real min_abs_relu_pre = std::numeric_limits<Real>::infinity();
};

template <typename Real>
struct GradientsRef {
  RnnParametersRef<Real> parameters;
  std::vector<Real> dx;        // [T, B, I]; 0 past each sequence's end
  std::vector<Real> dh0, dc0;  // [L*D, B, H] (dc0 empty outside the lstm family)
};

// One sequence through the whole stack: steps[l*D + d][t] is the step at time t of layer l, direction d.
template <typename Real>
struct SequenceTraceRef {
  std::vector<std::vector<StepRef<Real>>> steps;
  std::vector<std::vector<Real>> y;         // [len][D*H]
  std::vector<std::vector<Real>> h_n, c_n;  // [L*D][H]
};

// Runs one sequence (inputs[t], t < len) from the initial states h0[l*D+d], c0[l*D+d].
template <typename Real>
SequenceTraceRef<Real> run_sequence_ref(const RnnConfig& config, const RnnParametersRef<Real>& params,
                                        std::vector<std::vector<Real>> inputs,
                                        const std::vector<std::vector<Real>>& h0,
                                        const std::vector<std::vector<Real>>& c0) {
  const int directions = config.directions();
  const int64_t hidden = config.hidden_size;
  const auto len = static_cast<int64_t>(inputs.size());
  SequenceTraceRef<Real> trace;
  trace.steps.resize(config.num_layers * directions);
  trace.h_n = h0;
  trace.c_n = c0;
  for (int l = 0; l < config.num_layers; ++l) {
    std::vector<std::vector<Real>> outputs(len, std::vector<Real>(directions * hidden, Real(0)));
    for (int d = 0; d < directions; ++d) {
      const int k = l * directions + d;
      std::vector<Real> h = h0[k], c = c0[k];
      auto& steps = trace.steps[k];
      steps.resize(len);
      for (int64_t n = 0; n < len; ++n) {
        const int64_t t = d == 0 ? n : len - 1 - n;
        steps[t] = step_forward_ref(config.cell, params.layers[k], inputs[t], h, c);
        h = steps[t].h;
        if (config.cell.has_cell_state()) c = steps[t].c;
        for (int64_t j = 0; j < hidden; ++j) outputs[t][d * hidden + j] = h[j];
      }
      trace.h_n[k] = h;
      trace.c_n[k] = c;
    }
    inputs = std::move(outputs);
  }
  trace.y = std::move(inputs);
  return trace;
}

// Row (k, b) of a [K, B, H] tensor, or zeros when the tensor is empty.
template <typename Real>
std::vector<Real> state_row_ref(const std::vector<Real>& state, int64_t k, int64_t b, int64_t batch,
                                int64_t hidden) {
  if (state.empty()) return std::vector<Real>(hidden, Real(0));
  const auto first = state.begin() + (k * batch + b) * hidden;
  return std::vector<Real>(first, first + hidden);
}

// The trace of batch element b.
template <typename Real>
SequenceTraceRef<Real> run_batch_element_ref(const RnnConfig& config, const RnnParametersRef<Real>& params,
                                             const BatchRef<Real>& in, int64_t b) {
  const int64_t input = config.input_size, hidden = config.hidden_size;
  const int layer_directions = config.num_layers * config.directions();
  std::vector<std::vector<Real>> inputs(in.lengths[b]);
  for (int64_t t = 0; t < in.lengths[b]; ++t) {
    const auto first = in.x.begin() + (t * in.batch + b) * input;
    inputs[t].assign(first, first + input);
  }
  std::vector<std::vector<Real>> h0, c0;
  for (int k = 0; k < layer_directions; ++k) {
    h0.push_back(state_row_ref(in.h0, k, b, in.batch, hidden));
    c0.push_back(config.cell.has_cell_state() ? state_row_ref(in.c0, k, b, in.batch, hidden)
                                              : std::vector<Real>{});
  }
  return run_sequence_ref(config, params, std::move(inputs), h0, c0);
}

template <typename Real>
ForwardRef<Real> forward_ref(const RnnConfig& config, const RnnParametersRef<Real>& params,
                             const BatchRef<Real>& in) {
  const int64_t hidden = config.hidden_size, width = config.directions() * hidden;
  const int64_t layer_directions = config.num_layers * config.directions();
  const bool lstm = config.cell.has_cell_state();
  ForwardRef<Real> out;
  out.y.assign(in.steps * in.batch * width, Real(0));
  out.h_n.assign(layer_directions * in.batch * hidden, Real(0));
  if (lstm) out.c_n.assign(out.h_n.size(), Real(0));
  for (int64_t b = 0; b < in.batch; ++b) {
    const SequenceTraceRef<Real> trace = run_batch_element_ref(config, params, in, b);
    for (int64_t t = 0; t < in.lengths[b]; ++t) {
      for (int64_t j = 0; j < width; ++j) out.y[(t * in.batch + b) * width + j] = trace.y[t][j];
    }
    for (int64_t k = 0; k < layer_directions; ++k) {
      for (int64_t j = 0; j < hidden; ++j) {
        out.h_n[(k * in.batch + b) * hidden + j] = trace.h_n[k][j];
        if (lstm) out.c_n[(k * in.batch + b) * hidden + j] = trace.c_n[k][j];
      }
    }
    if (config.cell.family == CellFamily::rnn && config.cell.activation == Activation::relu) {
      for (const auto& steps : trace.steps) {
        for (const auto& s : steps) {
          for (Real v : s.pre) out.min_abs_relu_pre = std::min(out.min_abs_relu_pre, std::abs(v));
        }
      }
    }
  }
  return out;
}

// Backward of forward_ref by plain BPTT, from dL/dy ([T, B, D*H]; entries past a sequence's end are
// ignored) and dL/dh_n, dL/dc_n ([L*D, B, H]; empty = zero). Recomputes the forward pass itself.
template <typename Real>
GradientsRef<Real> backward_ref(const RnnConfig& config, const RnnParametersRef<Real>& params,
                                const BatchRef<Real>& in, const std::vector<Real>& dy,
                                const std::vector<Real>& dh_n, const std::vector<Real>& dc_n) {
  const int directions = config.directions();
  const int64_t hidden = config.hidden_size, width = directions * hidden;
  const int64_t layer_directions = config.num_layers * directions;
  const bool lstm = config.cell.has_cell_state();
  GradientsRef<Real> grads;
  grads.parameters = zero_parameters_ref<Real>(config);
  grads.dx.assign(in.steps * in.batch * config.input_size, Real(0));
  grads.dh0.assign(layer_directions * in.batch * hidden, Real(0));
  if (lstm) grads.dc0.assign(grads.dh0.size(), Real(0));
  for (int64_t b = 0; b < in.batch; ++b) {
    const SequenceTraceRef<Real> trace = run_batch_element_ref(config, params, in, b);
    const int64_t len = in.lengths[b];
    // d_out[t]: dL/d(output of the current layer at t), [D*H].
    std::vector<std::vector<Real>> d_out(len);
    for (int64_t t = 0; t < len; ++t) {
      const auto first = dy.begin() + (t * in.batch + b) * width;
      d_out[t].assign(first, first + width);
    }
    for (int l = config.num_layers - 1; l >= 0; --l) {
      std::vector<std::vector<Real>> d_in(len, std::vector<Real>(layer_input_size_ref(config, l), Real(0)));
      for (int d = 0; d < directions; ++d) {
        const int k = l * directions + d;
        std::vector<Real> dh = state_row_ref(dh_n, k, b, in.batch, hidden);
        std::vector<Real> dc = lstm ? state_row_ref(dc_n, k, b, in.batch, hidden) : std::vector<Real>{};
        // The reverse of the forward order: t = len-1 .. 0 for direction 0, 0 .. len-1 for direction 1.
        for (int64_t n = 0; n < len; ++n) {
          const int64_t t = d == 0 ? len - 1 - n : n;
          for (int64_t j = 0; j < hidden; ++j) dh[j] += d_out[t][d * hidden + j];
          StepGradientsRef<Real> g = step_backward_ref(config.cell, params.layers[k], trace.steps[k][t], dh,
                                                       dc, grads.parameters.layers[k]);
          for (size_t j = 0; j < g.dx.size(); ++j) d_in[t][j] += g.dx[j];
          dh = std::move(g.dh_prev);
          dc = std::move(g.dc_prev);
        }
        for (int64_t j = 0; j < hidden; ++j) {
          grads.dh0[(k * in.batch + b) * hidden + j] = dh[j];
          if (lstm) grads.dc0[(k * in.batch + b) * hidden + j] = dc[j];
        }
      }
      d_out = std::move(d_in);
    }
    for (int64_t t = 0; t < len; ++t) {
      for (int64_t j = 0; j < config.input_size; ++j)
        grads.dx[(t * in.batch + b) * config.input_size + j] = d_out[t][j];
    }
  }
  return grads;
}

// ---- Conversions to and from the float32 API (templates, so that the level-1 tests need not link the
// library: only what a test instantiates is compiled).

template <typename Real, typename TensorT>
std::vector<Real> values_from_tensor_ref(const TensorT& tensor) {
  std::vector<Real> out(static_cast<size_t>(tensor.size()));
  for (size_t j = 0; j < out.size(); ++j) out[j] = static_cast<Real>(tensor.data()[j]);
  return out;
}

template <typename Real>
Tensor tensor_from_values_ref(Shape shape, const std::vector<Real>& values) {
  std::vector<float> floats(values.size());
  for (size_t j = 0; j < values.size(); ++j) floats[j] = static_cast<float>(values[j]);
  return Tensor(std::move(shape), std::move(floats));
}

template <typename Real, typename Params = RnnParameters>
RnnParametersRef<Real> parameters_from_recur_ref(const Params& params) {
  RnnParametersRef<Real> out;
  for (const auto& layer : params.layers) {
    out.layers.push_back({values_from_tensor_ref<Real>(layer.w_x), values_from_tensor_ref<Real>(layer.w_h),
                          values_from_tensor_ref<Real>(layer.b_x), values_from_tensor_ref<Real>(layer.b_h),
                          values_from_tensor_ref<Real>(layer.peephole)});
  }
  return out;
}

template <typename Real>
RnnParameters parameters_to_recur_ref(const RnnConfig& config, const RnnParametersRef<Real>& params) {
  const int64_t hidden = config.hidden_size;
  const int64_t rows = gate_count_ref(config.cell) * hidden;
  RnnParameters out;
  for (size_t k = 0; k < params.layers.size(); ++k) {
    const auto& layer = params.layers[k];
    const int l = static_cast<int>(k) / config.directions();
    LayerParameters converted;
    converted.w_x = tensor_from_values_ref({rows, layer_input_size_ref(config, l)}, layer.w_x);
    converted.w_h = tensor_from_values_ref({rows, hidden}, layer.w_h);
    converted.b_x = tensor_from_values_ref({rows}, layer.b_x);
    converted.b_h = tensor_from_values_ref({rows}, layer.b_h);
    if (!layer.peephole.empty()) {
      converted.peephole =
          tensor_from_values_ref({static_cast<int64_t>(layer.peephole.size())}, layer.peephole);
    }
    out.layers.push_back(std::move(converted));
  }
  return out;
}

// [d0, d1, inner] -> [d1, d0, inner]: between time-major and batch-first layouts.
template <typename Real>
std::vector<Real> swap_leading_axes_ref(const std::vector<Real>& values, int64_t d0, int64_t d1,
                                        int64_t inner) {
  std::vector<Real> out(values.size());
  for (int64_t a = 0; a < d0; ++a) {
    for (int64_t b = 0; b < d1; ++b) {
      for (int64_t j = 0; j < inner; ++j) out[(b * d0 + a) * inner + j] = values[(a * d1 + b) * inner + j];
    }
  }
  return out;
}

}  // namespace recur::ref
