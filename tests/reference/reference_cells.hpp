#pragma once
// The ground truth, part 1: one step of each cell, forward and backward, naive and in any number type.
// Every product is an explicit loop over matrix entries; no BLAS, no batching, no fusion. The equations
// are those of include/recur/cell.hpp and /work/shared docs; gate blocks are stacked along rows:
//   rnn   1 block                      lstm  i, f, g, o      cifg (coupled) i, g, o (f = 1 - i)
//   gru   r, z, n                      peepholes  i, f, o (i, o when coupled)
// Written independently of the fast engine (src/); it reads only the header-only parts of the API.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "recur/cell.hpp"

namespace recur::ref {

// Gate rows per hidden unit: rnn 1, lstm 4 (3 coupled), gru 3.
inline int gate_count_ref(const CellSpec& cell) {
  switch (cell.family) {
    case CellFamily::rnn:
      return 1;
    case CellFamily::lstm:
      return cell.coupled_gates ? 3 : 4;
    case CellFamily::gru:
      return 3;
  }
  return 0;
}

// Peephole vectors: i, f, o (i, o when coupled); none without peepholes or outside the lstm family.
inline int peephole_count_ref(const CellSpec& cell) {
  if (cell.family != CellFamily::lstm || !cell.peephole) return 0;
  return cell.coupled_gates ? 2 : 3;
}

inline std::string cell_name_ref(const CellSpec& cell) {
  switch (cell.family) {
    case CellFamily::rnn:
      return cell.activation == Activation::relu ? "rnn_relu" : "rnn_tanh";
    case CellFamily::lstm: {
      std::string name = cell.peephole ? "peephole" : "";
      if (cell.coupled_gates) name += name.empty() ? "cifg" : "_cifg";
      return name.empty() ? "lstm" : name;
    }
    case CellFamily::gru:
      return cell.gru_reset == GruReset::before ? "gru_reset_before" : "gru";
  }
  return "?";
}

// The eight variants, for tests that cover every cell.
inline std::vector<CellSpec> all_cells_ref() {
  CellSpec peephole_cifg = CellSpec::coupled_lstm();
  peephole_cifg.peephole = true;
  return {CellSpec::rnn_tanh(),           CellSpec::rnn_relu(),           CellSpec::lstm(),
          CellSpec::peephole_lstm(),      CellSpec::coupled_lstm(),       peephole_cifg,
          CellSpec::gru(GruReset::after), CellSpec::gru(GruReset::before)};
}

// Weights of one layer in one direction, row-major, as recur::LayerParameters.
template <typename Real>
struct LayerParametersRef {
  std::vector<Real> w_x;       // [G*H, I_layer]
  std::vector<Real> w_h;       // [G*H, H]
  std::vector<Real> b_x;       // [G*H]
  std::vector<Real> b_h;       // [G*H]
  std::vector<Real> peephole;  // [P*H]
};

// Everything one step computes, kept for its backward. Vectors of length H unless noted.
template <typename Real>
struct StepRef {
  std::vector<Real> x, h_prev, c_prev;  // inputs (x: [I_layer])
  std::vector<Real> pre;                // rnn: activation input
  std::vector<Real> i, f, g, o;         // lstm gates after their nonlinearity (f = 1 - i when coupled)
  std::vector<Real> r, z, n;            // gru gates
  std::vector<Real> ah_n;               // gru: W_hn h + b_hn (reset after) or W_hn (r*h) + b_hn (before)
  std::vector<Real> h, c;               // outputs
};

template <typename Real>
Real sigmoid_ref(Real v) {
  return Real(1) / (Real(1) + std::exp(-v));
}

// b[row] + sum_j w[row, j] * v[j], with w of v.size() columns.
template <typename Real>
Real affine_ref(const std::vector<Real>& w, const std::vector<Real>& b, int64_t row,
                const std::vector<Real>& v) {
  const auto cols = static_cast<int64_t>(v.size());
  Real sum = b[row];
  for (int64_t j = 0; j < cols; ++j) sum += w[row * cols + j] * v[j];
  return sum;
}

// Backward of affine_ref for one row, given da = dL/d(result): dw[row, :] += da * v, db[row] += da,
// dv += da * w[row, :].
template <typename Real>
void affine_backward_ref(const std::vector<Real>& w, int64_t row, Real da, const std::vector<Real>& v,
                         std::vector<Real>& dw, std::vector<Real>& db, std::vector<Real>& dv) {
  const auto cols = static_cast<int64_t>(v.size());
  db[row] += da;
  for (int64_t j = 0; j < cols; ++j) {
    dw[row * cols + j] += da * v[j];
    dv[j] += da * w[row * cols + j];
  }
}

// Row blocks of the lstm family: returns the block of gate i, f (-1 when coupled), g, o.
struct LstmBlocksRef {
  int i, f, g, o;              // row blocks in w_x, w_h, b_x, b_h
  int peep_i, peep_f, peep_o;  // blocks of the peephole vector
};

inline LstmBlocksRef lstm_blocks_ref(const CellSpec& cell) {
  if (cell.coupled_gates) return {0, -1, 1, 2, 0, -1, 1};
  return {0, 1, 2, 3, 0, 1, 2};
}

template <typename Real>
StepRef<Real> rnn_step_forward_ref(const CellSpec& cell, const LayerParametersRef<Real>& p, StepRef<Real> s) {
  const auto hidden = static_cast<int64_t>(s.h_prev.size());
  s.pre.assign(hidden, Real(0));
  s.h.assign(hidden, Real(0));
  for (int64_t j = 0; j < hidden; ++j) {
    const Real a = affine_ref(p.w_x, p.b_x, j, s.x) + affine_ref(p.w_h, p.b_h, j, s.h_prev);
    s.pre[j] = a;
    s.h[j] = cell.activation == Activation::relu ? std::max(a, Real(0)) : std::tanh(a);
  }
  return s;
}

template <typename Real>
StepRef<Real> lstm_step_forward_ref(const CellSpec& cell, const LayerParametersRef<Real>& p,
                                    StepRef<Real> s) {
  const auto hidden = static_cast<int64_t>(s.h_prev.size());
  const LstmBlocksRef k = lstm_blocks_ref(cell);
  auto a = [&](int block, int64_t j) {
    const int64_t row = block * hidden + j;
    return affine_ref(p.w_x, p.b_x, row, s.x) + affine_ref(p.w_h, p.b_h, row, s.h_prev);
  };
  auto peep = [&](int block, int64_t j, Real c) {
    return cell.peephole ? p.peephole[block * hidden + j] * c : Real(0);
  };
  for (auto* v : {&s.i, &s.f, &s.g, &s.o, &s.h, &s.c}) v->assign(hidden, Real(0));
  for (int64_t j = 0; j < hidden; ++j) {
    const Real c_prev = s.c_prev[j];
    s.i[j] = sigmoid_ref(a(k.i, j) + peep(k.peep_i, j, c_prev));
    s.f[j] = cell.coupled_gates ? Real(1) - s.i[j] : sigmoid_ref(a(k.f, j) + peep(k.peep_f, j, c_prev));
    s.g[j] = std::tanh(a(k.g, j));
    s.c[j] = s.f[j] * c_prev + s.i[j] * s.g[j];
    s.o[j] = sigmoid_ref(a(k.o, j) + peep(k.peep_o, j, s.c[j]));
    s.h[j] = s.o[j] * std::tanh(s.c[j]);
  }
  return s;
}

template <typename Real>
StepRef<Real> gru_step_forward_ref(const CellSpec& cell, const LayerParametersRef<Real>& p, StepRef<Real> s) {
  const auto hidden = static_cast<int64_t>(s.h_prev.size());
  for (auto* v : {&s.r, &s.z, &s.n, &s.ah_n, &s.h}) v->assign(hidden, Real(0));
  for (int64_t j = 0; j < hidden; ++j) {
    s.r[j] = sigmoid_ref(affine_ref(p.w_x, p.b_x, j, s.x) + affine_ref(p.w_h, p.b_h, j, s.h_prev));
    s.z[j] = sigmoid_ref(affine_ref(p.w_x, p.b_x, hidden + j, s.x) +
                         affine_ref(p.w_h, p.b_h, hidden + j, s.h_prev));
  }
  // Reset before: the candidate's recurrent product sees r*h instead of h.
  std::vector<Real> rh(hidden);
  for (int64_t j = 0; j < hidden; ++j) rh[j] = s.r[j] * s.h_prev[j];
  const bool before = cell.gru_reset == GruReset::before;
  for (int64_t j = 0; j < hidden; ++j) {
    s.ah_n[j] = affine_ref(p.w_h, p.b_h, 2 * hidden + j, before ? rh : s.h_prev);
    const Real ax_n = affine_ref(p.w_x, p.b_x, 2 * hidden + j, s.x);
    s.n[j] = std::tanh(ax_n + (before ? s.ah_n[j] : s.r[j] * s.ah_n[j]));
    s.h[j] = (Real(1) - s.z[j]) * s.n[j] + s.z[j] * s.h_prev[j];
  }
  return s;
}

// One step: (x, h_prev, c_prev) -> everything, with h and c the new state. c_prev is ignored (and c is
// left empty) outside the lstm family.
template <typename Real>
StepRef<Real> step_forward_ref(const CellSpec& cell, const LayerParametersRef<Real>& p, std::vector<Real> x,
                               std::vector<Real> h_prev, std::vector<Real> c_prev) {
  StepRef<Real> s;
  s.x = std::move(x);
  s.h_prev = std::move(h_prev);
  s.c_prev = std::move(c_prev);
  switch (cell.family) {
    case CellFamily::rnn:
      return rnn_step_forward_ref(cell, p, std::move(s));
    case CellFamily::lstm:
      return lstm_step_forward_ref(cell, p, std::move(s));
    case CellFamily::gru:
      return gru_step_forward_ref(cell, p, std::move(s));
  }
  return s;
}

// Gradients flowing out of one step: to its input, its previous state; weights go to dp (+=).
template <typename Real>
struct StepGradientsRef {
  std::vector<Real> dx, dh_prev, dc_prev;
};

template <typename Real>
void rnn_step_backward_ref(const CellSpec& cell, const LayerParametersRef<Real>& p, const StepRef<Real>& s,
                           const std::vector<Real>& dh, LayerParametersRef<Real>& dp,
                           StepGradientsRef<Real>& out) {
  const auto hidden = static_cast<int64_t>(s.h.size());
  for (int64_t j = 0; j < hidden; ++j) {
    const Real slope = cell.activation == Activation::relu ? (s.pre[j] > Real(0) ? Real(1) : Real(0))
                                                           : Real(1) - s.h[j] * s.h[j];
    const Real da = dh[j] * slope;
    affine_backward_ref(p.w_x, j, da, s.x, dp.w_x, dp.b_x, out.dx);
    affine_backward_ref(p.w_h, j, da, s.h_prev, dp.w_h, dp.b_h, out.dh_prev);
  }
}

template <typename Real>
void lstm_step_backward_ref(const CellSpec& cell, const LayerParametersRef<Real>& p, const StepRef<Real>& s,
                            const std::vector<Real>& dh, const std::vector<Real>& dc,
                            LayerParametersRef<Real>& dp, StepGradientsRef<Real>& out) {
  const auto hidden = static_cast<int64_t>(s.h.size());
  const LstmBlocksRef k = lstm_blocks_ref(cell);
  auto peep = [&](int block, int64_t j) { return cell.peephole ? p.peephole[block * hidden + j] : Real(0); };
  for (int64_t j = 0; j < hidden; ++j) {
    const Real tanh_c = std::tanh(s.c[j]);
    const Real c_prev = s.c_prev[j];
    // dL/d(pre-sigmoid of o); o also sees c through its peephole.
    const Real dz_o = dh[j] * tanh_c * s.o[j] * (Real(1) - s.o[j]);
    const Real dc_total = dc[j] + dh[j] * s.o[j] * (Real(1) - tanh_c * tanh_c) + dz_o * peep(k.peep_o, j);
    Real di = dc_total * s.g[j];
    const Real df = dc_total * c_prev;
    const Real dz_g = dc_total * s.i[j] * (Real(1) - s.g[j] * s.g[j]);
    Real dc_prev = dc_total * s.f[j];
    Real dz_f = 0;
    if (cell.coupled_gates) {
      di -= df;  // f = 1 - i
    } else {
      dz_f = df * s.f[j] * (Real(1) - s.f[j]);
      dc_prev += dz_f * peep(k.peep_f, j);
    }
    const Real dz_i = di * s.i[j] * (Real(1) - s.i[j]);
    dc_prev += dz_i * peep(k.peep_i, j);
    if (cell.peephole) {
      dp.peephole[k.peep_i * hidden + j] += dz_i * c_prev;
      if (!cell.coupled_gates) dp.peephole[k.peep_f * hidden + j] += dz_f * c_prev;
      dp.peephole[k.peep_o * hidden + j] += dz_o * s.c[j];
    }
    out.dc_prev[j] = dc_prev;
    std::vector<std::pair<int, Real>> blocks = {{k.i, dz_i}, {k.g, dz_g}, {k.o, dz_o}};
    if (!cell.coupled_gates) blocks.push_back({k.f, dz_f});
    for (const auto& [block, da] : blocks) {
      affine_backward_ref(p.w_x, block * hidden + j, da, s.x, dp.w_x, dp.b_x, out.dx);
      affine_backward_ref(p.w_h, block * hidden + j, da, s.h_prev, dp.w_h, dp.b_h, out.dh_prev);
    }
  }
}

template <typename Real>
void gru_step_backward_ref(const CellSpec& cell, const LayerParametersRef<Real>& p, const StepRef<Real>& s,
                           const std::vector<Real>& dh, LayerParametersRef<Real>& dp,
                           StepGradientsRef<Real>& out) {
  const auto hidden = static_cast<int64_t>(s.h.size());
  const bool before = cell.gru_reset == GruReset::before;
  std::vector<Real> dz_n(hidden), dr(hidden, Real(0)), dz_z(hidden);
  for (int64_t j = 0; j < hidden; ++j) {
    out.dh_prev[j] += dh[j] * s.z[j];
    dz_z[j] = dh[j] * (s.h_prev[j] - s.n[j]) * s.z[j] * (Real(1) - s.z[j]);
    dz_n[j] = dh[j] * (Real(1) - s.z[j]) * (Real(1) - s.n[j] * s.n[j]);
    affine_backward_ref(p.w_x, 2 * hidden + j, dz_n[j], s.x, dp.w_x, dp.b_x, out.dx);
  }
  if (before) {
    // n = tanh(ax_n + W_hn (r*h) + b_hn): the product's gradient goes to r*h, then to r and h.
    std::vector<Real> rh(hidden), drh(hidden, Real(0));
    for (int64_t j = 0; j < hidden; ++j) rh[j] = s.r[j] * s.h_prev[j];
    for (int64_t j = 0; j < hidden; ++j)
      affine_backward_ref(p.w_h, 2 * hidden + j, dz_n[j], rh, dp.w_h, dp.b_h, drh);
    for (int64_t j = 0; j < hidden; ++j) {
      dr[j] = drh[j] * s.h_prev[j];
      out.dh_prev[j] += drh[j] * s.r[j];
    }
  } else {
    // n = tanh(ax_n + r * (W_hn h + b_hn)).
    for (int64_t j = 0; j < hidden; ++j) {
      dr[j] = dz_n[j] * s.ah_n[j];
      affine_backward_ref(p.w_h, 2 * hidden + j, dz_n[j] * s.r[j], s.h_prev, dp.w_h, dp.b_h, out.dh_prev);
    }
  }
  for (int64_t j = 0; j < hidden; ++j) {
    const Real dz_r = dr[j] * s.r[j] * (Real(1) - s.r[j]);
    affine_backward_ref(p.w_x, j, dz_r, s.x, dp.w_x, dp.b_x, out.dx);
    affine_backward_ref(p.w_h, j, dz_r, s.h_prev, dp.w_h, dp.b_h, out.dh_prev);
    affine_backward_ref(p.w_x, hidden + j, dz_z[j], s.x, dp.w_x, dp.b_x, out.dx);
    affine_backward_ref(p.w_h, hidden + j, dz_z[j], s.h_prev, dp.w_h, dp.b_h, out.dh_prev);
  }
}

// Backward of one step: from dL/dh and dL/dc of its outputs (dc ignored outside the lstm family) to the
// gradients of its inputs; weight gradients are added into dp.
template <typename Real>
StepGradientsRef<Real> step_backward_ref(const CellSpec& cell, const LayerParametersRef<Real>& p,
                                         const StepRef<Real>& s, const std::vector<Real>& dh,
                                         const std::vector<Real>& dc, LayerParametersRef<Real>& dp) {
  StepGradientsRef<Real> out;
  out.dx.assign(s.x.size(), Real(0));
  out.dh_prev.assign(s.h_prev.size(), Real(0));
  out.dc_prev.assign(s.c_prev.size(), Real(0));
  switch (cell.family) {
    case CellFamily::rnn:
      rnn_step_backward_ref(cell, p, s, dh, dp, out);
      break;
    case CellFamily::lstm:
      lstm_step_backward_ref(cell, p, s, dh, dc, dp, out);
      break;
    case CellFamily::gru:
      gru_step_backward_ref(cell, p, s, dh, dp, out);
      break;
  }
  return out;
}

}  // namespace recur::ref
