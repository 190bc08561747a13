#pragma once
// The ground truth for the Grid LSTM (Kalchbrenner et al. 2015): one block for one row, the 1-LSTM along
// depth and the 2-LSTM along time and depth, forward and backward, naive and in any number type. Every
// product is an explicit loop over matrix entries; no batching, no sorting: each sequence runs on its own.
// Written from the paper's equations (docs/cells/grid_lstm.md), independently of src/variants/grid_lstm.cpp;
// it reads only the configuration structs of recur/grid_lstm.hpp.
//   H = [h_1; ...; h_N];  per dimension k: a = W_k H + b_k (rows i, f, g, o)
//   m'_k = s(a_f) m_k + s(a_i) tanh(a_g);   h'_k = tanh(s(a_o) m'_k)
#include <cmath>
#include <cstdint>
#include <vector>

#include "recur/grid_lstm.hpp"

namespace recur::ref {

template <typename Real>
struct GridTransformRef {
  std::vector<Real> w;  // [4d, N*d]
  std::vector<Real> b;  // [4d]
};

template <typename Real>
Real grid_sigmoid_ref(Real v) {
  return Real(1) / (Real(1) + std::exp(-v));
}

// One block applied to one row, with all it needs for its backward.
template <typename Real>
struct GridBlockRowRef {
  std::vector<Real> h, m;          // [N*d] in
  std::vector<Real> i, f, g, o;    // [N*d]: dimension k's gates at k*d
  std::vector<Real> h_out, m_out;  // [N*d]
};

// transform_of[k]: the transform dimension k uses.
template <typename Real>
GridBlockRowRef<Real> grid_block_forward_ref(int64_t dims, int64_t d,
                                             const std::vector<GridTransformRef<Real>>& transforms,
                                             const std::vector<size_t>& transform_of,
                                             const std::vector<Real>& h, const std::vector<Real>& m) {
  const int64_t width = dims * d;
  GridBlockRowRef<Real> s{h, m};
  for (std::vector<Real>* v : {&s.i, &s.f, &s.g, &s.o, &s.h_out, &s.m_out}) v->assign(size_t(width), Real(0));
  for (int64_t k = 0; k < dims; ++k) {
    const GridTransformRef<Real>& t = transforms[transform_of[size_t(k)]];
    for (int64_t j = 0; j < d; ++j) {
      Real a[4];
      for (int q = 0; q < 4; ++q) {
        const int64_t row = q * d + j;
        a[q] = t.b[size_t(row)];
        for (int64_t c = 0; c < width; ++c) a[q] += t.w[size_t(row * width + c)] * h[size_t(c)];
      }
      const size_t u = size_t(k * d + j);
      s.i[u] = grid_sigmoid_ref(a[0]);
      s.f[u] = grid_sigmoid_ref(a[1]);
      s.g[u] = std::tanh(a[2]);
      s.o[u] = grid_sigmoid_ref(a[3]);
      s.m_out[u] = s.f[u] * m[u] + s.i[u] * s.g[u];
      s.h_out[u] = std::tanh(s.o[u] * s.m_out[u]);
    }
  }
  return s;
}

// From dL/dh', dL/dm' of the row: dL/dh and dL/dm (overwritten), the transforms' gradients accumulated.
template <typename Real>
void grid_block_backward_ref(int64_t dims, int64_t d, const std::vector<GridTransformRef<Real>>& transforms,
                             const std::vector<size_t>& transform_of, const GridBlockRowRef<Real>& s,
                             const std::vector<Real>& dh_out, const std::vector<Real>& dm_out,
                             std::vector<GridTransformRef<Real>>& grads, std::vector<Real>& dh,
                             std::vector<Real>& dm) {
  const int64_t width = dims * d;
  dh.assign(size_t(width), Real(0));
  dm.assign(size_t(width), Real(0));
  for (int64_t k = 0; k < dims; ++k) {
    const size_t index = transform_of[size_t(k)];
    const GridTransformRef<Real>& t = transforms[index];
    GridTransformRef<Real>& dt = grads[index];
    for (int64_t j = 0; j < d; ++j) {
      const size_t u = size_t(k * d + j);
      // h' = tanh(u), u = o m'
      const Real d_product = dh_out[u] * (Real(1) - s.h_out[u] * s.h_out[u]);
      const Real d_memory = dm_out[u] + d_product * s.o[u];
      dm[u] = d_memory * s.f[u];
      Real da[4];
      da[0] = d_memory * s.g[u] * s.i[u] * (Real(1) - s.i[u]);
      da[1] = d_memory * s.m[u] * s.f[u] * (Real(1) - s.f[u]);
      da[2] = d_memory * s.i[u] * (Real(1) - s.g[u] * s.g[u]);
      da[3] = d_product * s.m_out[u] * s.o[u] * (Real(1) - s.o[u]);
      for (int q = 0; q < 4; ++q) {
        const int64_t row = q * d + j;
        dt.b[size_t(row)] += da[q];
        for (int64_t c = 0; c < width; ++c) {
          dt.w[size_t(row * width + c)] += da[q] * s.h[size_t(c)];
          dh[size_t(c)] += da[q] * t.w[size_t(row * width + c)];
        }
      }
    }
  }
}

template <typename Real>
std::vector<GridTransformRef<Real>> grid_zero_transforms_ref(size_t count, int64_t dims, int64_t d) {
  return std::vector<GridTransformRef<Real>>(count, {std::vector<Real>(size_t(4 * d * dims * d), Real(0)),
                                                     std::vector<Real>(size_t(4 * d), Real(0))});
}

// ---- networks: an input projection (rows 0..H-1 to h, H..2H-1 to m) and transforms ----

template <typename Real>
struct GridNetworkRef {
  std::vector<Real> w_in;  // [2H, I]
  std::vector<Real> b_in;  // [2H]
  std::vector<GridTransformRef<Real>> transforms;
};

// (h, m) = halves of W_in x + b_in for one input row x [I].
template <typename Real>
void grid_project_ref(const GridNetworkRef<Real>& p, int64_t H, const Real* x, int64_t I,
                      std::vector<Real>& h, std::vector<Real>& m) {
  h.assign(size_t(H), Real(0));
  m.assign(size_t(H), Real(0));
  for (int64_t j = 0; j < 2 * H; ++j) {
    Real sum = p.b_in[size_t(j)];
    for (int64_t c = 0; c < I; ++c) sum += p.w_in[size_t(j * I + c)] * x[c];
    (j < H ? h[size_t(j)] : m[size_t(j - H)]) = sum;
  }
}

template <typename Real>
void grid_project_backward_ref(const GridNetworkRef<Real>& p, int64_t H, const Real* x, int64_t I,
                               const std::vector<Real>& dh, const std::vector<Real>& dm,
                               GridNetworkRef<Real>& grads, Real* dx) {
  for (int64_t c = 0; c < I; ++c) dx[c] = Real(0);
  for (int64_t j = 0; j < 2 * H; ++j) {
    const Real da = j < H ? dh[size_t(j)] : dm[size_t(j - H)];
    grads.b_in[size_t(j)] += da;
    for (int64_t c = 0; c < I; ++c) {
      grads.w_in[size_t(j * I + c)] += da * x[c];
      dx[c] += da * p.w_in[size_t(j * I + c)];
    }
  }
}

template <typename Real>
GridNetworkRef<Real> grid_zero_network_ref(const GridNetworkRef<Real>& like) {
  GridNetworkRef<Real> z{std::vector<Real>(like.w_in.size(), Real(0)),
                         std::vector<Real>(like.b_in.size(), Real(0)), like.transforms};
  for (GridTransformRef<Real>& t : z.transforms)
    for (std::vector<Real>* v : {&t.w, &t.b}) v->assign(v->size(), Real(0));
  return z;
}

// ---- the 1-LSTM: x [B, I] -> y = h_L [B, H] ----

template <typename Real>
struct Grid1dForwardRef {
  std::vector<Real> y;                                     // [B, H]
  std::vector<std::vector<GridBlockRowRef<Real>>> blocks;  // [B][L]
};

template <typename Real>
Grid1dForwardRef<Real> grid1d_forward_ref(const GridLstm1dConfig& c, const GridNetworkRef<Real>& p,
                                          const std::vector<Real>& x, int64_t batch) {
  const int64_t H = c.hidden_size, I = c.input_size;
  Grid1dForwardRef<Real> out;
  out.y.assign(size_t(batch * H), Real(0));
  out.blocks.resize(size_t(batch));
  for (int64_t b = 0; b < batch; ++b) {
    std::vector<Real> h, m;
    grid_project_ref(p, H, x.data() + b * I, I, h, m);
    for (int64_t l = 0; l < c.num_layers; ++l) {
      const std::vector<size_t> use{c.tie_weights ? size_t(0) : size_t(l)};
      out.blocks[size_t(b)].push_back(grid_block_forward_ref(1, H, p.transforms, use, h, m));
      h = out.blocks[size_t(b)].back().h_out, m = out.blocks[size_t(b)].back().m_out;
    }
    for (int64_t j = 0; j < H; ++j) out.y[size_t(b * H + j)] = h[size_t(j)];
  }
  return out;
}

// dy [B, H] -> grads (accumulated), dx [B, I] (overwritten).
template <typename Real>
void grid1d_backward_ref(const GridLstm1dConfig& c, const GridNetworkRef<Real>& p, const std::vector<Real>& x,
                         const Grid1dForwardRef<Real>& fwd, const std::vector<Real>& dy,
                         GridNetworkRef<Real>& grads, std::vector<Real>& dx) {
  const int64_t H = c.hidden_size, I = c.input_size, batch = int64_t(fwd.blocks.size());
  dx.assign(size_t(batch * I), Real(0));
  for (int64_t b = 0; b < batch; ++b) {
    std::vector<Real> dh(dy.begin() + b * H, dy.begin() + (b + 1) * H), dm(size_t(H), Real(0)), dh_in, dm_in;
    for (int64_t l = c.num_layers - 1; l >= 0; --l) {
      const std::vector<size_t> use{c.tie_weights ? size_t(0) : size_t(l)};
      grid_block_backward_ref(1, H, p.transforms, use, fwd.blocks[size_t(b)][size_t(l)], dh, dm,
                              grads.transforms, dh_in, dm_in);
      dh = dh_in, dm = dm_in;
    }
    grid_project_backward_ref(p, H, x.data() + b * I, I, dh, dm, grads, dx.data() + b * I);
  }
}

// ---- the 2-LSTM along time (k = 0) and depth (k = 1) ----

inline std::vector<size_t> grid2d_transforms_of_ref(const GridLstmConfig& c, int64_t layer) {
  const size_t per_layer = c.share_dimensions ? 1 : 2;
  const size_t first = c.tie_weights ? 0 : size_t(layer) * per_layer;
  return {first, first + (c.share_dimensions ? 0 : 1)};
}

template <typename Real>
struct Grid2dForwardRef {
  std::vector<Real> y;                                                  // [T, B, H], 0 past each end
  std::vector<Real> h_n, m_n;                                           // [L, B, H]
  std::vector<std::vector<std::vector<GridBlockRowRef<Real>>>> blocks;  // [B][t][l], t < lengths[b]
};

// x [T, B, I]; lengths[b] in [0, T]; h0, m0 [L, B, H].
template <typename Real>
Grid2dForwardRef<Real> grid2d_forward_ref(const GridLstmConfig& c, const GridNetworkRef<Real>& p,
                                          const std::vector<Real>& x, int64_t steps, int64_t batch,
                                          const std::vector<int64_t>& lengths, const std::vector<Real>& h0,
                                          const std::vector<Real>& m0) {
  const int64_t H = c.hidden_size, I = c.input_size, L = c.num_layers;
  Grid2dForwardRef<Real> out{std::vector<Real>(size_t(steps * batch * H), Real(0)), h0, m0};
  out.blocks.resize(size_t(batch));
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = 0; t < lengths[size_t(b)]; ++t) {
      std::vector<Real> depth_h, depth_m;
      grid_project_ref(p, H, x.data() + (t * batch + b) * I, I, depth_h, depth_m);
      out.blocks[size_t(b)].emplace_back();
      for (int64_t l = 0; l < L; ++l) {
        Real* h_time = out.h_n.data() + (l * batch + b) * H;
        Real* m_time = out.m_n.data() + (l * batch + b) * H;
        std::vector<Real> h(h_time, h_time + H), m(m_time, m_time + H);
        h.insert(h.end(), depth_h.begin(), depth_h.end());
        m.insert(m.end(), depth_m.begin(), depth_m.end());
        const GridBlockRowRef<Real> s =
            grid_block_forward_ref(2, H, p.transforms, grid2d_transforms_of_ref(c, l), h, m);
        for (int64_t j = 0; j < H; ++j) {
          h_time[j] = s.h_out[size_t(j)], m_time[j] = s.m_out[size_t(j)];
          depth_h[size_t(j)] = s.h_out[size_t(H + j)], depth_m[size_t(j)] = s.m_out[size_t(H + j)];
        }
        out.blocks[size_t(b)].back().push_back(s);
      }
      for (int64_t j = 0; j < H; ++j) out.y[size_t((t * batch + b) * H + j)] = depth_h[size_t(j)];
    }
  return out;
}

template <typename Real>
struct Grid2dGradientsRef {
  GridNetworkRef<Real> params;  // accumulated
  std::vector<Real> dx;         // [T, B, I]
  std::vector<Real> dh0, dm0;   // [L, B, H]
};

// From dy [T, B, H] (ignored past each end) and dL/d(h_n, m_n) [L, B, H].
template <typename Real>
void grid2d_backward_ref(const GridLstmConfig& c, const GridNetworkRef<Real>& p, const std::vector<Real>& x,
                         int64_t steps, int64_t batch, const Grid2dForwardRef<Real>& fwd,
                         const std::vector<Real>& dy, const std::vector<Real>& dh_n,
                         const std::vector<Real>& dm_n, Grid2dGradientsRef<Real>& g) {
  const int64_t H = c.hidden_size, I = c.input_size, L = c.num_layers;
  g.dx.assign(size_t(steps * batch * I), Real(0));
  g.dh0 = dh_n, g.dm0 = dm_n;  // carried back to the start: dL/d(time h, m) of each layer
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t t = int64_t(fwd.blocks[size_t(b)].size()) - 1; t >= 0; --t) {
      std::vector<Real> d_depth_h(dy.begin() + (t * batch + b) * H, dy.begin() + (t * batch + b + 1) * H);
      std::vector<Real> d_depth_m(size_t(H), Real(0));
      for (int64_t l = L - 1; l >= 0; --l) {
        Real* dh_time = g.dh0.data() + (l * batch + b) * H;
        Real* dm_time = g.dm0.data() + (l * batch + b) * H;
        std::vector<Real> dh_out(dh_time, dh_time + H), dm_out(dm_time, dm_time + H), dh, dm;
        dh_out.insert(dh_out.end(), d_depth_h.begin(), d_depth_h.end());
        dm_out.insert(dm_out.end(), d_depth_m.begin(), d_depth_m.end());
        grid_block_backward_ref(2, H, p.transforms, grid2d_transforms_of_ref(c, l),
                                fwd.blocks[size_t(b)][size_t(t)][size_t(l)], dh_out, dm_out,
                                g.params.transforms, dh, dm);
        for (int64_t j = 0; j < H; ++j) {
          dh_time[j] = dh[size_t(j)], dm_time[j] = dm[size_t(j)];
          d_depth_h[size_t(j)] = dh[size_t(H + j)], d_depth_m[size_t(j)] = dm[size_t(H + j)];
        }
      }
      grid_project_backward_ref(p, H, x.data() + (t * batch + b) * I, I, d_depth_h, d_depth_m, g.params,
                                g.dx.data() + (t * batch + b) * I);
    }
}

}  // namespace recur::ref
