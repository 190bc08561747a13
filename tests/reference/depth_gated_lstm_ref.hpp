#pragma once
// The ground truth for the depth-gated LSTM (Yao et al. 2015; docs/cells/depth_gated_lstm.md): a whole
// stack, forward and backward by plain BPTT, naive and in any number type (used with double). Each
// sequence is run on its own, one step at a time, every layer at step t before step t+1; every product is
// an explicit loop. Written independently of the fast engine (src/variants/depth_gated_lstm.cpp).
//
// Per layer l (layer 0: no d, no c_lower), x = input (l = 0) or h of layer l-1 at the same step:
//   i = s(a_i + p_i c(t-1))   f = s(a_f + p_f c(t-1))   g = tanh(a_g)     a = W_ih x + b_ih + W_hh h(t-1) +
//   b_hh d = s(W_xd x + b_d + w_cd c(t-1) + w_ld c_lower(t))                  (rows 4H..5H of W_ih, b_ih) c =
//   d c_lower + f c(t-1) + i g     o = s(a_o + p_o c)     h = o tanh(c)
// Shapes: x [T, B, I]; y [T, B, H] (0 past a sequence's end); h0, c0, h_n, c_n [L, B, H].
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "reference/reference_cells.hpp"

namespace recur::ref {

struct DepthGatedShapeRef {
  int64_t input_size = 0, hidden_size = 0, num_layers = 0;
};

template <typename Real>
struct DepthGatedLayerRef {
  std::vector<Real> w_ih;      // [G*H, I_l], G = 4 (layer 0) or 5: blocks i, f, g, o, d
  std::vector<Real> w_hh;      // [4H, H]
  std::vector<Real> b_ih;      // [G*H]
  std::vector<Real> b_hh;      // [4H]
  std::vector<Real> peephole;  // [3H] p_i, p_f, p_o
  std::vector<Real> depth;     // [2H] w_cd, w_ld; empty in layer 0
};

template <typename Real>
struct DepthGatedParamsRef {
  std::vector<DepthGatedLayerRef<Real>> layers;
};

template <typename Real>
DepthGatedParamsRef<Real> zero_depth_gated_parameters_ref(const DepthGatedShapeRef& shape) {
  const int64_t H = shape.hidden_size;
  DepthGatedParamsRef<Real> p;
  for (int64_t l = 0; l < shape.num_layers; ++l) {
    const int64_t G = l == 0 ? 4 : 5, I = l == 0 ? shape.input_size : H;
    DepthGatedLayerRef<Real> layer;
    layer.w_ih.assign(size_t(G * H * I), Real(0));
    layer.w_hh.assign(size_t(4 * H * H), Real(0));
    layer.b_ih.assign(size_t(G * H), Real(0));
    layer.b_hh.assign(size_t(4 * H), Real(0));
    layer.peephole.assign(size_t(3 * H), Real(0));
    if (l > 0) layer.depth.assign(size_t(2 * H), Real(0));
    p.layers.push_back(std::move(layer));
  }
  return p;
}

// Calls f(name, values) for every tensor, named as the engine's checkpoints ("dglstm.weight_ih_l0", ...).
template <typename Params, typename F>
void for_each_depth_gated_parameter_ref(Params& p, F&& f) {
  for (size_t l = 0; l < p.layers.size(); ++l) {
    auto& layer = p.layers[l];
    const std::string suffix = "_l" + std::to_string(l);
    f("dglstm.weight_ih" + suffix, layer.w_ih);
    f("dglstm.weight_hh" + suffix, layer.w_hh);
    f("dglstm.bias_ih" + suffix, layer.b_ih);
    f("dglstm.bias_hh" + suffix, layer.b_hh);
    f("dglstm.weight_peephole" + suffix, layer.peephole);
    if (!layer.depth.empty()) f("dglstm.weight_depth" + suffix, layer.depth);
  }
}

// Every weight uniform in [-scale, scale].
template <typename Real>
DepthGatedParamsRef<Real> random_depth_gated_parameters_ref(const DepthGatedShapeRef& shape,
                                                            std::mt19937_64& rng, double scale) {
  DepthGatedParamsRef<Real> p = zero_depth_gated_parameters_ref<Real>(shape);
  std::uniform_real_distribution<double> uniform(-scale, scale);
  for_each_depth_gated_parameter_ref(p, [&](const std::string&, std::vector<Real>& v) {
    for (Real& value : v) value = static_cast<Real>(uniform(rng));
  });
  return p;
}

template <typename Real>
struct DepthGatedBatchRef {
  int64_t steps = 0, batch = 0;
  std::vector<Real> x;           // [T, B, I]
  std::vector<int64_t> lengths;  // [B], each in [0, T]
  std::vector<Real> h0, c0;      // [L, B, H] or empty (zeros)
};

template <typename Real>
struct DepthGatedForwardRef {
  std::vector<Real> y;         // [T, B, H]
  std::vector<Real> h_n, c_n;  // [L, B, H]
};

template <typename Real>
struct DepthGatedGradientsRef {
  DepthGatedParamsRef<Real> parameters;
  std::vector<Real> dx;        // [T, B, I]
  std::vector<Real> dh0, dc0;  // [L, B, H]
};

template <typename Real>
struct DepthGatedStepRef {
  std::vector<Real> x, h_prev, c_prev, c_lower;  // c_lower empty in layer 0
  std::vector<Real> i, f, g, o, d;               // d empty in layer 0
  std::vector<Real> h, c;
};

template <typename Real>
DepthGatedStepRef<Real> depth_gated_step_forward_ref(const DepthGatedLayerRef<Real>& p,
                                                     DepthGatedStepRef<Real> s) {
  const auto H = static_cast<int64_t>(s.h_prev.size());
  const bool depth = !s.c_lower.empty();
  auto a = [&](int64_t block, int64_t j) {
    const int64_t row = block * H + j;
    return affine_ref(p.w_ih, p.b_ih, row, s.x) + affine_ref(p.w_hh, p.b_hh, row, s.h_prev);
  };
  for (auto* v : {&s.i, &s.f, &s.g, &s.o, &s.h, &s.c}) v->assign(size_t(H), Real(0));
  if (depth) s.d.assign(size_t(H), Real(0));
  for (int64_t j = 0; j < H; ++j) {
    const Real c_prev = s.c_prev[j];
    s.i[j] = sigmoid_ref(a(0, j) + p.peephole[j] * c_prev);
    s.f[j] = sigmoid_ref(a(1, j) + p.peephole[H + j] * c_prev);
    s.g[j] = std::tanh(a(2, j));
    s.c[j] = s.f[j] * c_prev + s.i[j] * s.g[j];
    if (depth) {
      s.d[j] = sigmoid_ref(affine_ref(p.w_ih, p.b_ih, 4 * H + j, s.x) + p.depth[j] * c_prev +
                           p.depth[H + j] * s.c_lower[j]);
      s.c[j] += s.d[j] * s.c_lower[j];
    }
    s.o[j] = sigmoid_ref(a(3, j) + p.peephole[2 * H + j] * s.c[j]);
    s.h[j] = s.o[j] * std::tanh(s.c[j]);
  }
  return s;
}

// Gradients out of one step, given dh = dL/dh(t) and dc = dL/dc(t) (all of them).
template <typename Real>
struct DepthGatedStepGradRef {
  std::vector<Real> dx, dh_prev, dc_prev, dc_lower;
};

template <typename Real>
DepthGatedStepGradRef<Real> depth_gated_step_backward_ref(const DepthGatedLayerRef<Real>& p,
                                                          const DepthGatedStepRef<Real>& s,
                                                          const std::vector<Real>& dh,
                                                          const std::vector<Real>& dc,
                                                          DepthGatedLayerRef<Real>& grads) {
  const auto H = static_cast<int64_t>(s.h_prev.size());
  const bool depth = !s.c_lower.empty();
  DepthGatedStepGradRef<Real> out;
  out.dx.assign(s.x.size(), Real(0));
  out.dh_prev.assign(size_t(H), Real(0));
  out.dc_prev.assign(size_t(H), Real(0));
  if (depth) out.dc_lower.assign(size_t(H), Real(0));
  auto gate_backward = [&](int64_t block, int64_t j, Real da) {
    const int64_t row = block * H + j;
    affine_backward_ref(p.w_ih, row, da, s.x, grads.w_ih, grads.b_ih, out.dx);
    if (block < 4) affine_backward_ref(p.w_hh, row, da, s.h_prev, grads.w_hh, grads.b_hh, out.dh_prev);
  };
  for (int64_t j = 0; j < H; ++j) {
    const Real tanh_c = std::tanh(s.c[j]), c_prev = s.c_prev[j];
    // h = o tanh(c); c feeds o through its peephole.
    const Real da_o = dh[j] * tanh_c * s.o[j] * (Real(1) - s.o[j]);
    const Real dc_total = dc[j] + dh[j] * s.o[j] * (Real(1) - tanh_c * tanh_c) + da_o * p.peephole[2 * H + j];
    const Real da_i = dc_total * s.g[j] * s.i[j] * (Real(1) - s.i[j]);
    const Real da_f = dc_total * c_prev * s.f[j] * (Real(1) - s.f[j]);
    const Real da_g = dc_total * s.i[j] * (Real(1) - s.g[j] * s.g[j]);
    out.dc_prev[j] = dc_total * s.f[j] + da_i * p.peephole[j] + da_f * p.peephole[H + j];
    grads.peephole[j] += da_i * c_prev;
    grads.peephole[H + j] += da_f * c_prev;
    grads.peephole[2 * H + j] += da_o * s.c[j];
    gate_backward(0, j, da_i);
    gate_backward(1, j, da_f);
    gate_backward(2, j, da_g);
    gate_backward(3, j, da_o);
    if (depth) {
      const Real da_d = dc_total * s.c_lower[j] * s.d[j] * (Real(1) - s.d[j]);
      out.dc_prev[j] += da_d * p.depth[j];
      out.dc_lower[j] = dc_total * s.d[j] + da_d * p.depth[H + j];
      grads.depth[j] += da_d * c_prev;
      grads.depth[H + j] += da_d * s.c_lower[j];
      gate_backward(4, j, da_d);
    }
  }
  return out;
}

// One sequence b through the stack: steps[t][l].
template <typename Real>
std::vector<std::vector<DepthGatedStepRef<Real>>> depth_gated_sequence_ref(
    const DepthGatedShapeRef& shape, const DepthGatedParamsRef<Real>& params,
    const DepthGatedBatchRef<Real>& batch, int64_t b) {
  const int64_t L = shape.num_layers, H = shape.hidden_size, I = shape.input_size, B = batch.batch;
  auto initial = [&](const std::vector<Real>& state, int64_t l) {
    if (state.empty()) return std::vector<Real>(size_t(H), Real(0));
    return std::vector<Real>(state.begin() + (l * B + b) * H, state.begin() + (l * B + b + 1) * H);
  };
  std::vector<std::vector<DepthGatedStepRef<Real>>> steps;
  for (int64_t t = 0; t < batch.lengths[size_t(b)]; ++t) {
    std::vector<DepthGatedStepRef<Real>> layers;
    for (int64_t l = 0; l < L; ++l) {
      DepthGatedStepRef<Real> s;
      if (l == 0) {
        s.x.assign(batch.x.begin() + (t * B + b) * I, batch.x.begin() + (t * B + b + 1) * I);
      } else {
        s.x = layers[size_t(l - 1)].h;
        s.c_lower = layers[size_t(l - 1)].c;
      }
      s.h_prev = t == 0 ? initial(batch.h0, l) : steps[size_t(t - 1)][size_t(l)].h;
      s.c_prev = t == 0 ? initial(batch.c0, l) : steps[size_t(t - 1)][size_t(l)].c;
      layers.push_back(depth_gated_step_forward_ref(params.layers[size_t(l)], std::move(s)));
    }
    steps.push_back(std::move(layers));
  }
  return steps;
}

template <typename Real>
DepthGatedForwardRef<Real> depth_gated_forward_ref(const DepthGatedShapeRef& shape,
                                                   const DepthGatedParamsRef<Real>& params,
                                                   const DepthGatedBatchRef<Real>& batch) {
  const int64_t L = shape.num_layers, H = shape.hidden_size, T = batch.steps, B = batch.batch;
  DepthGatedForwardRef<Real> out;
  out.y.assign(size_t(T * B * H), Real(0));
  out.h_n = batch.h0.empty() ? std::vector<Real>(size_t(L * B * H), Real(0)) : batch.h0;
  out.c_n = batch.c0.empty() ? std::vector<Real>(size_t(L * B * H), Real(0)) : batch.c0;
  for (int64_t b = 0; b < B; ++b) {
    const auto steps = depth_gated_sequence_ref(shape, params, batch, b);
    for (size_t t = 0; t < steps.size(); ++t)
      for (int64_t j = 0; j < H; ++j) out.y[(t * B + b) * H + j] = steps[t][size_t(L - 1)].h[j];
    if (steps.empty()) continue;
    for (int64_t l = 0; l < L; ++l)
      for (int64_t j = 0; j < H; ++j) {
        out.h_n[(l * B + b) * H + j] = steps.back()[size_t(l)].h[j];
        out.c_n[(l * B + b) * H + j] = steps.back()[size_t(l)].c[j];
      }
  }
  return out;
}

// dL/d everything for L with dL/dy = dy [T, B, H], dL/dh_n = dh_n, dL/dc_n = dc_n ([L, B, H]; empty: 0).
// Steps are undone from the last time step to the first and, within a step, from the top layer down, so
// that dL/dh(t) and dL/dc(t) of a layer are complete (from step t+1 and from the layer above) when used.
template <typename Real>
DepthGatedGradientsRef<Real> depth_gated_backward_ref(const DepthGatedShapeRef& shape,
                                                      const DepthGatedParamsRef<Real>& params,
                                                      const DepthGatedBatchRef<Real>& batch,
                                                      const std::vector<Real>& dy,
                                                      const std::vector<Real>& dh_n,
                                                      const std::vector<Real>& dc_n) {
  const int64_t L = shape.num_layers, H = shape.hidden_size, I = shape.input_size;
  const int64_t T = batch.steps, B = batch.batch;
  DepthGatedGradientsRef<Real> grads;
  grads.parameters = zero_depth_gated_parameters_ref<Real>(shape);
  grads.dx.assign(size_t(T * B * I), Real(0));
  grads.dh0.assign(size_t(L * B * H), Real(0));
  grads.dc0.assign(size_t(L * B * H), Real(0));
  for (int64_t b = 0; b < B; ++b) {
    const auto steps = depth_gated_sequence_ref(shape, params, batch, b);
    // dh[l], dc[l]: dL/d(h, c) of layer l at the step being undone.
    std::vector<std::vector<Real>> dh(size_t(L), std::vector<Real>(size_t(H), Real(0))), dc = dh;
    for (int64_t l = 0; l < L; ++l)
      for (int64_t j = 0; j < H; ++j) {
        if (!dh_n.empty()) dh[size_t(l)][j] = dh_n[(l * B + b) * H + j];
        if (!dc_n.empty()) dc[size_t(l)][j] = dc_n[(l * B + b) * H + j];
      }
    for (int64_t t = int64_t(steps.size()) - 1; t >= 0; --t) {
      for (int64_t j = 0; j < H; ++j) dh[size_t(L - 1)][j] += dy[(t * B + b) * H + j];
      for (int64_t l = L - 1; l >= 0; --l) {
        const auto g =
            depth_gated_step_backward_ref(params.layers[size_t(l)], steps[size_t(t)][size_t(l)],
                                          dh[size_t(l)], dc[size_t(l)], grads.parameters.layers[size_t(l)]);
        dh[size_t(l)] = g.dh_prev;
        dc[size_t(l)] = g.dc_prev;
        if (l > 0) {  // into the layer below at the same step: its h through x, its c through c_lower
          for (int64_t j = 0; j < H; ++j) {
            dh[size_t(l - 1)][j] += g.dx[j];
            dc[size_t(l - 1)][j] += g.dc_lower[j];
          }
        } else {
          for (int64_t k = 0; k < I; ++k) grads.dx[(t * B + b) * I + k] = g.dx[k];
        }
      }
    }
    for (int64_t l = 0; l < L; ++l)
      for (int64_t j = 0; j < H; ++j) {
        grads.dh0[(l * B + b) * H + j] = dh[size_t(l)][j];
        grads.dc0[(l * B + b) * H + j] = dc[size_t(l)][j];
      }
  }
  return grads;
}

// A second forward pass, written differently, for the independent check: straight from the paper's
// equations one unit and one scalar at a time, layer-major (the whole sequence through layer 0, then
// layer 1, ...), from zero initial states, naming each gate's weights as the paper does.
template <typename Real>
DepthGatedForwardRef<Real> depth_gated_paper_forward_ref(const DepthGatedShapeRef& shape,
                                                         const DepthGatedParamsRef<Real>& params,
                                                         const DepthGatedBatchRef<Real>& batch) {
  const int64_t I = shape.input_size, H = shape.hidden_size, L = shape.num_layers;
  const int64_t T = batch.steps, B = batch.batch;
  DepthGatedForwardRef<Real> out{std::vector<Real>(size_t(T * B * H), Real(0)),
                                 std::vector<Real>(size_t(L * B * H), Real(0)),
                                 std::vector<Real>(size_t(L * B * H), Real(0))};
  using Sequence = std::vector<std::vector<Real>>;  // [t][unit]
  for (int64_t b = 0; b < B; ++b) {
    const int64_t len = batch.lengths[size_t(b)];
    Sequence below_h, below_c;  // the layer below's h (this layer's x_t) and memory cell c_t^{l-1}
    for (int64_t t = 0; t < len; ++t)
      below_h.emplace_back(batch.x.begin() + (t * B + b) * I, batch.x.begin() + (t * B + b + 1) * I);
    for (int64_t l = 0; l < L; ++l) {
      const DepthGatedLayerRef<Real>& w = params.layers[size_t(l)];
      const int64_t in = l == 0 ? I : H;
      // Gate q (0 i, 1 f, 2 g, 3 o, 4 d) of unit j: W_xq[j, k], W_hq[j, k], b_q[j].
      auto W_x = [&](int q, int64_t j, int64_t k) { return w.w_ih[size_t((q * H + j) * in + k)]; };
      auto W_h = [&](int q, int64_t j, int64_t k) { return w.w_hh[size_t((q * H + j) * H + k)]; };
      auto b_q = [&](int q, int64_t j) {
        return w.b_ih[size_t(q * H + j)] + (q < 4 ? w.b_hh[size_t(q * H + j)] : 0);
      };
      std::vector<Real> h(static_cast<size_t>(H), Real(0)), c(static_cast<size_t>(H), Real(0));
      Sequence layer_h, layer_c;
      for (int64_t t = 0; t < len; ++t) {
        std::vector<Real> h_new(static_cast<size_t>(H)), c_new(static_cast<size_t>(H));
        for (int64_t j = 0; j < H; ++j) {
          Real z[5];
          for (int q = 0; q < (l == 0 ? 4 : 5); ++q) {
            z[q] = b_q(q, j);
            for (int64_t k = 0; k < in; ++k) z[q] += W_x(q, j, k) * below_h[size_t(t)][size_t(k)];
            for (int64_t k = 0; q < 4 && k < H; ++k) z[q] += W_h(q, j, k) * h[size_t(k)];
          }
          const Real input_gate = sigmoid_ref(z[0] + w.peephole[size_t(j)] * c[size_t(j)]);
          const Real forget_gate = sigmoid_ref(z[1] + w.peephole[size_t(H + j)] * c[size_t(j)]);
          Real cell = forget_gate * c[size_t(j)] + input_gate * std::tanh(z[2]);
          if (l > 0) {
            const Real lower = below_c[size_t(t)][size_t(j)];
            cell += sigmoid_ref(z[4] + w.depth[size_t(j)] * c[size_t(j)] + w.depth[size_t(H + j)] * lower) *
                    lower;
          }
          c_new[size_t(j)] = cell;
          h_new[size_t(j)] = sigmoid_ref(z[3] + w.peephole[size_t(2 * H + j)] * cell) * std::tanh(cell);
        }
        h = h_new;
        c = c_new;
        layer_h.push_back(h);
        layer_c.push_back(c);
      }
      for (int64_t j = 0; j < H; ++j) {
        out.h_n[size_t((l * B + b) * H + j)] = h[size_t(j)];
        out.c_n[size_t((l * B + b) * H + j)] = c[size_t(j)];
      }
      below_h = std::move(layer_h);
      below_c = std::move(layer_c);
    }
    for (int64_t t = 0; t < len; ++t)
      for (int64_t j = 0; j < H; ++j) out.y[size_t((t * B + b) * H + j)] = below_h[size_t(t)][size_t(j)];
  }
  return out;
}

}  // namespace recur::ref
