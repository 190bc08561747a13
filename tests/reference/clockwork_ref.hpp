#pragma once
// The ground truth of the clockwork RNN (recur/clockwork.hpp), naive and in any number type (used with
// double): each sequence on its own, one step and one unit at a time, plain BPTT. Written from the
// equations of docs/cells/clockwork.md, not from the fast path:
//   s = step count at the call's start + t;  unit u of module i = u / k updates iff s mod T_i == 0:
//   h_u(t) = tanh(b_x[u] + b_h[u] + sum_c W_x[u][c] x_c(t) + sum_{v: v/k >= i} W_h[u][v] h_v(t-1))
//   otherwise h_u(t) = h_u(t-1).
// W_h is [H, H]; its entries with v/k < u/k are not part of the model (never read, gradient 0).
// Shapes (time-major): x [T, B, I]; y [T, B, H] (the top layer's h, 0 past a sequence's end);
// h0, h_n [L, B, H]; steps [B] (step counts at the start).
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace recur::ref {

struct ClockworkShapeRef {
  int64_t input_size = 0, hidden_size = 0;
  std::vector<int64_t> periods;  // one per module; k = H / periods.size()
  int num_layers = 1;
  int64_t module_size() const { return hidden_size / int64_t(periods.size()); }
  int64_t layer_input(int l) const { return l == 0 ? input_size : hidden_size; }
};

template <typename Real>
struct ClockworkLayerRef {
  std::vector<Real> w_x, w_h, b_x, b_h;  // [H, I_l], [H, H], [H], [H]
};

template <typename Real>
struct ClockworkParamsRef {
  std::vector<ClockworkLayerRef<Real>> layers;
};

// Calls f(name, values) for each tensor of each layer.
template <typename Params, typename F>
void for_each_clockwork_tensor_ref(Params& p, F&& f) {
  for (size_t l = 0; l < p.layers.size(); ++l) {
    const std::string at = "[" + std::to_string(l) + "]";
    f("w_x" + at, p.layers[l].w_x);
    f("w_h" + at, p.layers[l].w_h);
    f("b_x" + at, p.layers[l].b_x);
    f("b_h" + at, p.layers[l].b_h);
  }
}

// True when W_h[u][v] is a weight of the model: v's module is u's or a slower one.
inline bool clockwork_connected_ref(const ClockworkShapeRef& s, int64_t u, int64_t v) {
  return v / s.module_size() >= u / s.module_size();
}

template <typename Real>
ClockworkParamsRef<Real> zero_clockwork_params_ref(const ClockworkShapeRef& s) {
  ClockworkParamsRef<Real> p;
  const auto H = size_t(s.hidden_size);
  for (int l = 0; l < s.num_layers; ++l)
    p.layers.push_back({std::vector<Real>(H * size_t(s.layer_input(l))), std::vector<Real>(H * H),
                        std::vector<Real>(H), std::vector<Real>(H)});
  return p;
}

// Uniform in [-scale, scale]; W_h's entries outside the model are 0.
template <typename Real>
ClockworkParamsRef<Real> random_clockwork_params_ref(const ClockworkShapeRef& s, std::mt19937_64& rng,
                                                     double scale) {
  ClockworkParamsRef<Real> p = zero_clockwork_params_ref<Real>(s);
  std::uniform_real_distribution<double> uniform(-scale, scale);
  for_each_clockwork_tensor_ref(p, [&](const std::string&, std::vector<Real>& v) {
    for (Real& value : v) value = Real(uniform(rng));
  });
  const int64_t H = s.hidden_size;
  for (auto& layer : p.layers)
    for (int64_t u = 0; u < H; ++u)
      for (int64_t v = 0; v < H; ++v)
        if (!clockwork_connected_ref(s, u, v)) layer.w_h[size_t(u * H + v)] = Real(0);
  return p;
}

template <typename Real>
struct ClockworkBatchRef {
  int64_t steps = 0, batch = 0;
  std::vector<Real> x;           // [T, B, I]
  std::vector<int64_t> lengths;  // [B]
  std::vector<Real> h0;          // [L, B, H]
  std::vector<int64_t> start;    // [B] step counts at the start
};

template <typename Real>
struct ClockworkForwardRef {
  std::vector<Real> y, h_n;  // [T, B, H], [L, B, H]
  std::vector<int64_t> steps_n;
};

template <typename Real>
struct ClockworkGradientsRef {
  ClockworkParamsRef<Real> params;
  std::vector<Real> dx, dh0;  // [T, B, I], [L, B, H]
};

// One layer over one sequence: inputs[t] -> h(t) for t < inputs.size(), from h0.
template <typename Real>
std::vector<std::vector<Real>> clockwork_layer_ref(const ClockworkShapeRef& s,
                                                   const ClockworkLayerRef<Real>& w,
                                                   const std::vector<std::vector<Real>>& inputs,
                                                   const std::vector<Real>& h0, int64_t start) {
  const int64_t H = s.hidden_size, k = s.module_size();
  std::vector<std::vector<Real>> hs;
  std::vector<Real> h = h0;
  for (size_t t = 0; t < inputs.size(); ++t) {
    const int64_t step = start + int64_t(t);
    const int64_t I = int64_t(inputs[t].size());
    std::vector<Real> next = h;
    for (int64_t u = 0; u < H; ++u) {
      if (step % s.periods[size_t(u / k)] != 0) continue;
      Real a = w.b_x[size_t(u)] + w.b_h[size_t(u)];
      for (int64_t c = 0; c < I; ++c) a += w.w_x[size_t(u * I + c)] * inputs[t][size_t(c)];
      for (int64_t v = 0; v < H; ++v)
        if (clockwork_connected_ref(s, u, v)) a += w.w_h[size_t(u * H + v)] * h[size_t(v)];
      next[size_t(u)] = std::tanh(a);
    }
    h = next;
    hs.push_back(h);
  }
  return hs;
}

// Sequence b's inputs [len][I] and h0 of layer l.
template <typename Real>
std::vector<std::vector<Real>> sequence_inputs_ref(const ClockworkShapeRef& s,
                                                   const ClockworkBatchRef<Real>& in, int64_t b) {
  std::vector<std::vector<Real>> xs;
  for (int64_t t = 0; t < in.lengths[size_t(b)]; ++t) {
    const auto first = in.x.begin() + (t * in.batch + b) * s.input_size;
    xs.emplace_back(first, first + s.input_size);
  }
  return xs;
}

template <typename Real>
std::vector<Real> initial_h_ref(const ClockworkShapeRef& s, const ClockworkBatchRef<Real>& in, int l,
                                int64_t b) {
  if (in.h0.empty()) return std::vector<Real>(size_t(s.hidden_size), Real(0));
  const auto first = in.h0.begin() + (l * in.batch + b) * s.hidden_size;
  return std::vector<Real>(first, first + s.hidden_size);
}

template <typename Real>
ClockworkForwardRef<Real> clockwork_forward_ref(const ClockworkShapeRef& s, const ClockworkParamsRef<Real>& p,
                                                const ClockworkBatchRef<Real>& in) {
  const int64_t H = s.hidden_size, B = in.batch;
  ClockworkForwardRef<Real> out;
  out.y.assign(size_t(in.steps * B * H), Real(0));
  out.h_n.assign(size_t(s.num_layers * B * H), Real(0));
  for (int64_t b = 0; b < B; ++b) {
    std::vector<std::vector<Real>> xs = sequence_inputs_ref(s, in, b);
    for (int l = 0; l < s.num_layers; ++l) {
      const std::vector<Real> h0 = initial_h_ref(s, in, l, b);
      xs = clockwork_layer_ref(s, p.layers[size_t(l)], xs, h0, in.start[size_t(b)]);
      const std::vector<Real>& last = xs.empty() ? h0 : xs.back();
      for (int64_t j = 0; j < H; ++j) out.h_n[size_t((l * B + b) * H + j)] = last[size_t(j)];
    }
    for (size_t t = 0; t < xs.size(); ++t)
      for (int64_t j = 0; j < H; ++j) out.y[size_t((int64_t(t) * B + b) * H + j)] = xs[t][size_t(j)];
    out.steps_n.push_back(in.start[size_t(b)] + in.lengths[size_t(b)]);
  }
  return out;
}

// BPTT through one layer of one sequence. hs = clockwork_layer_ref's output; dys[t] = dL/dh(t) from above;
// dh carries dL/dh(last) in and dL/dh0 out. Accumulates into g; returns dL/dinputs[t].
template <typename Real>
std::vector<std::vector<Real>> clockwork_layer_backward_ref(
    const ClockworkShapeRef& s, const ClockworkLayerRef<Real>& w,
    const std::vector<std::vector<Real>>& inputs, const std::vector<Real>& h0,
    const std::vector<std::vector<Real>>& hs, const std::vector<std::vector<Real>>& dys, int64_t start,
    std::vector<Real>& dh, ClockworkLayerRef<Real>& g) {
  const int64_t H = s.hidden_size, k = s.module_size();
  std::vector<std::vector<Real>> dinputs(inputs.size());
  for (int64_t t = int64_t(inputs.size()) - 1; t >= 0; --t) {
    const int64_t I = int64_t(inputs[size_t(t)].size());
    const std::vector<Real>& h_prev = t == 0 ? h0 : hs[size_t(t - 1)];
    for (int64_t u = 0; u < H; ++u) dh[size_t(u)] += dys[size_t(t)][size_t(u)];
    std::vector<Real> dh_prev(size_t(H), Real(0));
    dinputs[size_t(t)].assign(size_t(I), Real(0));
    for (int64_t u = 0; u < H; ++u) {
      if ((start + t) % s.periods[size_t(u / k)] != 0) {
        dh_prev[size_t(u)] += dh[size_t(u)];  // h_u(t) = h_u(t-1)
        continue;
      }
      const Real h = hs[size_t(t)][size_t(u)];
      const Real da = dh[size_t(u)] * (Real(1) - h * h);
      g.b_x[size_t(u)] += da;
      g.b_h[size_t(u)] += da;
      for (int64_t c = 0; c < I; ++c) {
        g.w_x[size_t(u * I + c)] += da * inputs[size_t(t)][size_t(c)];
        dinputs[size_t(t)][size_t(c)] += da * w.w_x[size_t(u * I + c)];
      }
      for (int64_t v = 0; v < H; ++v) {
        if (!clockwork_connected_ref(s, u, v)) continue;
        g.w_h[size_t(u * H + v)] += da * h_prev[size_t(v)];
        dh_prev[size_t(v)] += da * w.w_h[size_t(u * H + v)];
      }
    }
    dh = dh_prev;
  }
  return dinputs;
}

// Gradients of L with dL/dy = dy [T, B, H] and dL/dh_n = dh_n [L, B, H] (empty: 0).
template <typename Real>
ClockworkGradientsRef<Real> clockwork_backward_ref(const ClockworkShapeRef& s,
                                                   const ClockworkParamsRef<Real>& p,
                                                   const ClockworkBatchRef<Real>& in,
                                                   const std::vector<Real>& dy,
                                                   const std::vector<Real>& dh_n) {
  const int64_t H = s.hidden_size, B = in.batch, I = s.input_size;
  ClockworkGradientsRef<Real> g;
  g.params = zero_clockwork_params_ref<Real>(s);
  g.dx.assign(size_t(in.steps * B * I), Real(0));
  g.dh0.assign(size_t(s.num_layers * B * H), Real(0));
  for (int64_t b = 0; b < B; ++b) {
    const int64_t len = in.lengths[size_t(b)], start = in.start[size_t(b)];
    // Forward again, keeping every layer's inputs and outputs.
    std::vector<std::vector<std::vector<Real>>> inputs{sequence_inputs_ref(s, in, b)}, outputs;
    for (int l = 0; l < s.num_layers; ++l) {
      outputs.push_back(
          clockwork_layer_ref(s, p.layers[size_t(l)], inputs.back(), initial_h_ref(s, in, l, b), start));
      inputs.push_back(outputs.back());
    }
    std::vector<std::vector<Real>> d_above(static_cast<size_t>(len));
    for (int64_t t = 0; t < len; ++t) {
      const auto first = dy.begin() + (t * B + b) * H;
      d_above[size_t(t)].assign(first, first + H);
    }
    for (int l = s.num_layers - 1; l >= 0; --l) {
      std::vector<Real> dh(size_t(H), Real(0));
      if (!dh_n.empty()) dh.assign(dh_n.begin() + (l * B + b) * H, dh_n.begin() + (l * B + b + 1) * H);
      d_above =
          clockwork_layer_backward_ref(s, p.layers[size_t(l)], inputs[size_t(l)], initial_h_ref(s, in, l, b),
                                       outputs[size_t(l)], d_above, start, dh, g.params.layers[size_t(l)]);
      for (int64_t j = 0; j < H; ++j) g.dh0[size_t((l * B + b) * H + j)] = dh[size_t(j)];
    }
    for (int64_t t = 0; t < len; ++t)
      for (int64_t c = 0; c < I; ++c) g.dx[size_t((t * B + b) * I + c)] = d_above[size_t(t)][size_t(c)];
  }
  return g;
}

}  // namespace recur::ref
