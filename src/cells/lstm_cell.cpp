// The LSTM family: plain, peephole (Gers & Schmidhuber 2000, as ONNX's P) and coupled input-forget gates.
// Pre-activations a = x W_x^T + b_x + h(t-1) W_h^T + b_h, gate blocks i, f, g, o (coupled: i, g, o).
//   i = s(a_i + p_i c(t-1))     f = s(a_f + p_f c(t-1))   (coupled: f = 1 - i)
//   g = tanh(a_g)               c(t) = f c(t-1) + i g
//   o = s(a_o + p_o c(t))       h(t) = o tanh(c(t))
// Backward (dh, dc from later steps and the output):
//   do = dh tanh(c);  da_o = do o(1-o);  dc' = dc + dh o (1 - tanh(c)^2) + da_o p_o
//   da_g = dc' i (1 - g^2);  di = dc' g;  df = dc' c(t-1)  (coupled: di -= df, no f gate)
//   da_i = di i(1-i);  da_f = df f(1-f);  dc(t-1) = dc' f + da_i p_i + da_f p_f;  dh(t-1) = da W_h
// docs/cells/lstm.md derives these.
#include <cmath>

#include "cells/cell.hpp"
#include "kernels/activations.hpp"
#include "kernels/gemm.hpp"

namespace recur::cells {
namespace {

using kernels::sigmoid;

class LstmCell final : public Cell {
 public:
  LstmCell(const CellSpec& spec, int64_t hidden, const LayerParameters& weights) : Cell(spec, hidden, weights) {
    const int64_t H = hidden;
    const bool coupled = spec.coupled_gates;
    gate_i_ = 0;
    gate_f_ = coupled ? -1 : H;
    gate_g_ = coupled ? H : 2 * H;
    gate_o_ = coupled ? 2 * H : 3 * H;
    peephole_o_ = coupled ? H : 2 * H;
  }

  // Saved per row: activated gates [G*H], c(t-1) [H], c(t) [H], tanh(c(t)) [H].
  int64_t saved_width() const override { return gate_width() + 3 * hidden_; }
  int64_t scratch_width() const override { return 0; }

  void forward_step(const StepForward& step) const override {
    const int64_t H = hidden_, width = gate_width();
    kernels::gemm_nt(step.rows, width, H, step.h, H, weights_.w_h.data(), H, 1.0f, step.gates, width);
    const float* b = weights_.b_h.data();
    const float* p = spec_.peephole ? weights_.peephole.data() : nullptr;
    for (int64_t r = 0; r < step.rows; ++r) {
      float* a = step.gates + r * width;  // becomes the activated gates
      float* c = step.c + r * H;
      float* h = step.h + r * H;
      float* saved = step.saved != nullptr ? step.saved + r * saved_width() : nullptr;
      for (int64_t j = 0; j < H; ++j) {
        const float c_prev = c[j];
        const float i = sigmoid(a[gate_i_ + j] + b[gate_i_ + j] + (p ? p[j] * c_prev : 0.0f));
        const float f = gate_f_ < 0 ? 1.0f - i : sigmoid(a[gate_f_ + j] + b[gate_f_ + j] + (p ? p[H + j] * c_prev : 0.0f));
        const float g = std::tanh(a[gate_g_ + j] + b[gate_g_ + j]);
        const float c_new = f * c_prev + i * g;
        const float o = sigmoid(a[gate_o_ + j] + b[gate_o_ + j] + (p ? p[peephole_o_ + j] * c_new : 0.0f));
        const float tanh_c = std::tanh(c_new);
        c[j] = c_new;
        h[j] = o * tanh_c;
        if (saved != nullptr) {
          saved[gate_i_ + j] = i;
          if (gate_f_ >= 0) saved[gate_f_ + j] = f;
          saved[gate_g_ + j] = g;
          saved[gate_o_ + j] = o;
          saved[width + j] = c_prev;
          saved[width + H + j] = c_new;
          saved[width + 2 * H + j] = tanh_c;
        }
      }
    }
  }

  void backward_step(const StepBackward& step) const override {
    const int64_t H = hidden_, width = gate_width();
    const float* p = spec_.peephole ? weights_.peephole.data() : nullptr;
    float* dp = step.dpeephole;
    for (int64_t r = 0; r < step.rows; ++r) {
      const float* saved = step.saved + r * saved_width();
      const float* dh = step.dh + r * H;
      float* dc = step.dc + r * H;
      float* da = step.dgates_x + r * width;
      for (int64_t j = 0; j < H; ++j) {
        const float i = saved[gate_i_ + j], g = saved[gate_g_ + j], o = saved[gate_o_ + j];
        const float f = gate_f_ < 0 ? 1.0f - i : saved[gate_f_ + j];
        const float c_prev = saved[width + j], c_new = saved[width + H + j], tanh_c = saved[width + 2 * H + j];
        const float da_o = dh[j] * tanh_c * kernels::sigmoid_grad_from_output(o);
        float dc_total = dc[j] + dh[j] * o * kernels::tanh_grad_from_output(tanh_c);
        if (p) dc_total += da_o * p[peephole_o_ + j];
        const float da_g = dc_total * i * kernels::tanh_grad_from_output(g);
        const float df = dc_total * c_prev;
        const float di = dc_total * g - (gate_f_ < 0 ? df : 0.0f);
        const float da_i = di * kernels::sigmoid_grad_from_output(i);
        const float da_f = gate_f_ < 0 ? 0.0f : df * kernels::sigmoid_grad_from_output(f);
        float dc_prev = dc_total * f;
        if (p) {
          dc_prev += da_i * p[j] + (gate_f_ < 0 ? 0.0f : da_f * p[H + j]);
          dp[j] += da_i * c_prev;
          if (gate_f_ >= 0) dp[H + j] += da_f * c_prev;
          dp[peephole_o_ + j] += da_o * c_new;
        }
        dc[j] = dc_prev;
        da[gate_i_ + j] = da_i;
        if (gate_f_ >= 0) da[gate_f_ + j] = da_f;
        da[gate_g_ + j] = da_g;
        da[gate_o_ + j] = da_o;
      }
    }
    kernels::gemm_nn(step.rows, H, width, step.dgates_x, width, weights_.w_h.data(), H, 0.0f, step.dh, H);
  }

 private:
  // Column offsets of the gate blocks in a row of pre-activations; gate_f_ < 0 when coupled.
  int64_t gate_i_, gate_f_, gate_g_, gate_o_;
  int64_t peephole_o_;  // offset of p_o inside the peephole vector
};

}  // namespace

std::unique_ptr<Cell> make_lstm_cell(const CellSpec& spec, int64_t hidden, const LayerParameters& weights) {
  return std::make_unique<LstmCell>(spec, hidden, weights);
}

}  // namespace recur::cells
