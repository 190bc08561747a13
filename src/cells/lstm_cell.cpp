// The LSTM family: plain, peephole (Gers & Schmidhuber 2000, as ONNX's P) and coupled input-forget gates.
// Pre-activations a = x W_x^T + b_x + h(t-1) W_h^T + b_h, gate blocks i, f, g, o (coupled: i, g, o).
//   i = s(a_i + p_i c(t-1))     f = s(a_f + p_f c(t-1))   (coupled: f = 1 - i)
//   g = tanh(a_g)               c(t) = f c(t-1) + i g
//   o = s(a_o + p_o c(t))       h(t) = o tanh(c(t))
// Backward (dh, dc from later steps and the output):
//   do = dh tanh(c);  da_o = do o(1-o);  dc' = dc + dh o (1 - tanh(c)^2) + da_o p_o
//   da_g = dc' i (1 - g^2);  di = dc' g;  df = dc' c(t-1)  (coupled: di -= df, no f gate)
//   da_i = di i(1-i);  da_f = df f(1-f);  dc(t-1) = dc' f + da_i p_i + da_f p_f;  dh(t-1) = da W_h
// The element-wise work is kernels/post_gemm_impl.hpp's; docs/cells/lstm.md derives these.
#include <algorithm>

#include "cells/cell.hpp"
#include "kernels/gemm.hpp"
#include "kernels/post_gemm.hpp"

namespace recur::cells {
namespace {

class LstmCell final : public Cell {
 public:
  using Cell::Cell;

  // Saved per row: activated gates [G*H], c(t-1) [H], c(t) [H], tanh(c(t)) [H].
  int64_t saved_width() const override { return gate_width() + 3 * hidden_; }
  // A copy of h(t-1) for a step shared by units, when the driver gives none.
  int64_t scratch_width() const override { return hidden_; }
  bool fuses_input_product() const override { return true; }

  void forward_step(const StepForward& step) const override {
    if (step.w_h == nullptr && step.rows <= kernels::kSmallGemmMaxRows) {
      // A small batch's step, a stream's too (fuses_input_product: x W_x^T as well): the products and
      // the pass, shared by units as below, through the small-batch kernel on the weights as they are.
      int64_t lda = 0;
      const float* h_prev = stable_h_prev(step, step.scratch, hidden_, &lda);
      const int64_t depth = hidden_ + (step.x != nullptr ? step.input_size : 0);
      return for_small_unit_shares(step.rows, depth, [&](int64_t unit_begin, int64_t unit_end) {
        const int64_t G = spec_.gate_count();
        if (step.x != nullptr)
          small_product_units(step.rows, step.x, step.ldx, step.w_x, step.input_size, hidden_, 0, G,
                              unit_begin, unit_end, 0.0f, step.gates, gate_width());
        small_product_units(step.rows, h_prev, lda, weights_.w_h.data(), hidden_, hidden_, 0, G, unit_begin,
                            unit_end, 1.0f, step.gates, gate_width());
        forward_pass(step, unit_begin, unit_end);
      });
    }
    if (step.w_h == nullptr) {  // a portable build's step of more than 4 rows (BLAS)
      recurrent_product(step, step.h, hidden_, 0, spec_.gate_count(), 1.0f, step.gates, gate_width());
      return forward_pass(step, 0, hidden_);
    }
    // Shared by units: each thread's product and element-wise pass for its units of all rows.
    int64_t lda = 0;
    const float* h_prev = stable_h_prev(step, step.scratch, hidden_, &lda);
    const int64_t nr = step.w_h->panel_width();
    for_unit_shares(*step.w_h, [&](int64_t panel_begin, int64_t panel_end) {
      if (step.x != nullptr)  // a stream's step on packed weights: x W_x^T first
        step.w_x_packed->multiply_units(step.rows, step.x, step.ldx, panel_begin, panel_end, 0.0f, step.gates,
                                        gate_width());
      step.w_h->multiply_units(step.rows, h_prev, lda, panel_begin, panel_end, 1.0f, step.gates,
                               gate_width());
      forward_pass(step, panel_begin * nr, std::min(hidden_, panel_end * nr));
    });
  }

  void backward_step(const StepBackward& step) const override {
    // The peephole gradients are sums over all rows, kept in one fixed order: those steps are not shared.
    const kernels::PackedWeights* shared = spec_.peephole ? nullptr : step.w_h;
    if (shared == nullptr || steps_shared_by_rows(shared, step.rows))
      return for_row_shares(shared, step.rows,
                            [&](int64_t begin, int64_t end) { backward_rows(share(step, begin, end)); });
    for_rows(step.rows, [&](int64_t begin, int64_t end) { backward_pass(share(step, begin, end)); });
    recurrent_gradient(step.w_h, step.rows, step.dgates_x, gate_width(), 0, spec_.gate_count(), 0.0f, step.dh,
                       hidden_);
  }

 private:
  // One share of a step's rows (Cell::for_row_shares); `step` addresses only those rows.
  void backward_rows(const StepBackward& step) const {
    backward_pass(step);
    recurrent_gradient(step.w_h, step.rows, step.dgates_x, gate_width(), 0, spec_.gate_count(), 0.0f, step.dh,
                       hidden_);
  }

  // The element-wise work of a step (kernels/post_gemm_impl.hpp), after the product / before it.
  void forward_pass(const StepForward& step, int64_t unit_begin, int64_t unit_end) const {
    const int64_t H = hidden_;
    kernels::LstmForwardRows rows;
    rows.rows = step.rows;
    rows.hidden = H;
    rows.coupled = spec_.coupled_gates;
    rows.b_x = weights_.b_x.data();
    rows.b_h = weights_.b_h.data();
    rows.peephole = spec_.peephole ? weights_.peephole.data() : nullptr;
    rows.gates = step.gates;
    rows.c = step.c;
    rows.h = step.h;
    rows.saved = step.saved;
    rows.saved_ld = saved_width();
    rows.saved_streamed = step.saved_streamed;
    rows.unit_begin = unit_begin;
    rows.unit_end = unit_end;
    rows.copies = step.copies;
    post_gemm_.lstm_forward(rows);
  }

  void backward_pass(const StepBackward& step) const {
    const int64_t H = hidden_;
    kernels::LstmBackwardRows rows;
    rows.rows = step.rows;
    rows.hidden = H;
    rows.coupled = spec_.coupled_gates;
    rows.peephole = spec_.peephole ? weights_.peephole.data() : nullptr;
    rows.dpeephole = step.dpeephole;
    rows.saved = step.saved;
    rows.saved_ld = saved_width();
    rows.dh = step.dh;
    rows.dy = step.dy;
    rows.ldy = step.ldy;
    rows.dc = step.dc;
    rows.dgates = step.dgates_x;
    post_gemm_.lstm_backward(rows);
  }

  const kernels::PostGemmKernels& post_gemm_ = kernels::post_gemm();
};
}  // namespace

std::unique_ptr<Cell> make_lstm_cell(const CellSpec& spec, int64_t hidden, const LayerParameters& weights) {
  return std::make_unique<LstmCell>(spec, hidden, weights);
}

}  // namespace recur::cells
