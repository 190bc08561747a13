// GRU (Cho et al. 2014), gate blocks r, z, n; ax = x W_x^T + b_x, ah = h(t-1) W_h^T + b_h.
//   r = s(ax_r + ah_r)   z = s(ax_z + ah_z)   h(t) = (1 - z) n + z h(t-1)
//   reset after  (PyTorch, cuDNN, ONNX linear_before_reset=1): n = tanh(ax_n + r ah_n)
//   reset before (Cho et al., ONNX default):                   n = tanh(ax_n + (r h(t-1)) W_hn^T + b_hn)
// The "before" form needs a second GEMM inside the step, after r is known; the driver does not know.
// Backward: dn = dh (1 - z);  dz = dh (h(t-1) - n);  da_n = dn (1 - n^2);  da_z = dz z(1-z)
//   after:  dr = da_n ah_n;  the recurrent n part gets da_n r (so dgates_h differs from dgates_x)
//   before: d(rh) = da_n W_hn;  dr = d(rh) h(t-1);  dh(t-1) gains d(rh) r
//   da_r = dr r(1-r);  dh(t-1) = dh z + (recurrent gradients) W_h.   docs/cells/gru.md derives these.
#include <algorithm>

#include "cells/cell.hpp"
#include "kernels/activations.hpp"
#include "kernels/gemm.hpp"
#include "kernels/post_gemm.hpp"

namespace recur::cells {
namespace {

using kernels::sigmoid_grad_from_output;
using kernels::tanh_grad_from_output;

class GruCell final : public Cell {
 public:
  GruCell(const CellSpec& spec, int64_t hidden, const LayerParameters& weights)
      : Cell(spec, hidden, weights), reset_after_(spec.gru_reset == GruReset::after) {}

  // Saved per row: r, z, n [3H], then ah_n [H] (reset after) or r * h(t-1) [H] (reset before).
  int64_t saved_width() const override { return 4 * hidden_; }
  // Forward: ah [3H] (after), or ah_r, ah_z, r * h(t-1), ah_n (before). Backward (before): d(rh) [H].
  int64_t scratch_width() const override { return 4 * hidden_; }
  bool fuses_input_product() const override { return reset_after_; }
  bool distinct_recurrent_gradient() const override { return reset_after_; }

  void forward_step(const StepForward& step) const override {
    // Reset before: the second product needs r of every unit, so the step shares by rows.
    const int64_t H = hidden_, ld = 4 * H;
    if (reset_after_ && step.w_h == nullptr && step.rows <= kernels::kSmallGemmMaxRows) {
      // A small batch's step, a stream's too (fuses_input_product: x W_x^T as well), reset after: the
      // products and the passes, shared by units as below, through the small-batch kernel on the weights
      // as they are.
      int64_t lda = 0;
      const float* h_prev = stable_h_prev(step, step.scratch + 3 * H, ld, &lda);
      const int64_t depth = H + (step.x != nullptr ? step.input_size : 0);
      return for_small_unit_shares(step.rows, depth, [&](int64_t unit_begin, int64_t unit_end) {
        if (step.x != nullptr)
          small_product_units(step.rows, step.x, step.ldx, step.w_x, step.input_size, H, 0, 3, unit_begin,
                              unit_end, 0.0f, step.gates, 3 * H);
        small_product_units(step.rows, h_prev, lda, weights_.w_h.data(), H, H, 0, 3, unit_begin, unit_end,
                            0.0f, step.scratch, ld);
        gates_after_product(step, unit_begin, unit_end);
      });
    }
    if (step.w_h == nullptr || !reset_after_)
      return for_row_shares(step.w_h, step.rows,
                            [&](int64_t begin, int64_t end) { forward_rows(share(step, begin, end)); });
    // Reset after, shared by units (Cell::for_unit_shares): each thread's product and element-wise pass
    // for its units of r, z and n. h(t-1) is copied into column 3H of the scratch, which "after" leaves free.
    const int64_t nr = step.w_h->panel_width();
    int64_t lda = 0;
    const float* h_prev = stable_h_prev(step, step.scratch + 3 * H, ld, &lda);
    for_unit_shares(*step.w_h, [&](int64_t panel_begin, int64_t panel_end) {
      if (step.x != nullptr)  // a stream's step on packed weights: x W_x^T into the gates first
        step.w_x_packed->multiply_units(step.rows, step.x, step.ldx, panel_begin, panel_end, 0.0f, step.gates,
                                        3 * H);
      step.w_h->multiply_units(step.rows, h_prev, lda, panel_begin, panel_end, 0.0f, step.scratch, ld);
      gates_after_product(step, panel_begin * nr, std::min(H, panel_end * nr));
    });
  }

  void backward_step(const StepBackward& step) const override {
    if (step.w_h == nullptr || steps_shared_by_rows(step.w_h, step.rows))
      return for_row_shares(step.w_h, step.rows, [&](int64_t begin, int64_t end) {
        backward_rows(share(step, begin, end), false);
      });
    // Too few rows to share the step by rows: the products share by panels, the passes by rows.
    backward_rows(step, true);
  }

  void accumulate_weight_gradients(int64_t total_rows, const float* dgates_x, const float* x,
                                   int64_t input_size, const float* dgates_h, const float* h_prev,
                                   const float* saved, LayerParameters& grads) const override {
    const int64_t H = hidden_;
    if (reset_after_) {
      // dG_x and dG_h agree on r and z (gru_backward writes the same values into both): one packing of
      // those columns serves both products, x and h(t-1) stacked, and one sum both biases. n's two
      // gradients differ (dG_h's is dG_x's times r): one product each. b_db512: 2/3 of the packing.
      std::vector<float> sums(size_t(2 * H), 0.0f);
      const kernels::WeightGradient rz[] = {{x, input_size, input_size, grads.w_x.data(), input_size},
                                            {h_prev, H, H, grads.w_h.data(), H}};
      kernels::weight_gradients(2 * H, total_rows, dgates_x, 3 * H, rz, sums.data());
      add_to_both_biases(sums, grads);
      const kernels::WeightGradient input_n{x, input_size, input_size, grads.w_x.data() + 2 * H * input_size,
                                            input_size},
          recurrent_n{h_prev, H, H, grads.w_h.data() + 2 * H * H, H};
      kernels::weight_gradients(H, total_rows, dgates_x + 2 * H, 3 * H, {&input_n, 1},
                                grads.b_x.data() + 2 * H);
      kernels::weight_gradients(H, total_rows, dgates_h + 2 * H, 3 * H, {&recurrent_n, 1},
                                grads.b_h.data() + 2 * H);
      return;
    }
    // One gradient (dgates_h is dgates_x): b_x and b_h get the same sums.
    std::vector<float> sums(size_t(3 * H), 0.0f);
    const kernels::WeightGradient input{x, input_size, input_size, grads.w_x.data(), input_size};
    kernels::weight_gradients(3 * H, total_rows, dgates_x, 3 * H, {&input, 1}, sums.data());
    add_to_both_biases(sums, grads);
    // Rows r, z of W_h multiply h(t-1); rows n multiply r * h(t-1), saved at column 3H.
    float* dw_h = grads.w_h.data();
    kernels::gemm_tn(2 * H, H, total_rows, dgates_h, 3 * H, h_prev, H, 1.0f, dw_h, H);
    kernels::gemm_tn(H, H, total_rows, dgates_h + 2 * H, 3 * H, saved + 3 * H, 4 * H, 1.0f, dw_h + 2 * H * H,
                     H);
  }

 private:
  // One share of a step's rows (Cell::for_row_shares); `step` addresses only those rows.
  void forward_rows(const StepForward& step) const {
    const int64_t H = hidden_, ld = 4 * H;
    float* ah = step.scratch;
    recurrent_product(step, step.h, H, 0, reset_after_ ? 3 : 2, 0.0f, ah, ld);
    if (!reset_after_) {  // ah_n = (r h) W_hn^T, the step's second GEMM, once r is known
      reset_and_update(step, 0, H);
      for (int64_t row = 0; row < step.rows; ++row)
        for (int64_t j = 0; j < H; ++j)
          ah[row * ld + 2 * H + j] = step.gates[row * 3 * H + j] * step.h[row * H + j];
      recurrent_product(step, ah + 2 * H, ld, 2, 3, 0.0f, ah + 3 * H, ld);
      return output(step, 0, H);
    }
    gates_after_product(step, 0, H);
  }

  // Everything of a step after its recurrent product(s), units [unit_begin, unit_end) of every row.
  void gates_after_product(const StepForward& step, int64_t unit_begin, int64_t unit_end) const {
    reset_and_update(step, unit_begin, unit_end);
    output(step, unit_begin, unit_end);
  }

  // r and z = s(ax + ah + b_h), in place of ax_r, ax_z, for units [unit_begin, unit_end).
  void reset_and_update(const StepForward& step, int64_t unit_begin, int64_t unit_end) const {
    const int64_t H = hidden_;
    for (int64_t block : {0, 1}) {
      kernels::SigmoidSumRows rz;
      rz.rows = step.rows;
      rz.width = unit_end - unit_begin;
      rz.bias_x = weights_.b_x.data() + block * H + unit_begin;
      rz.bias = weights_.b_h.data() + block * H + unit_begin;
      rz.b = step.scratch + block * H + unit_begin;
      rz.ldb = 4 * H;
      rz.a = step.gates + block * H + unit_begin;
      rz.lda = 3 * H;
      post_gemm_.sigmoid_sum(rz);
    }
  }

  // n and h(t) (and what backward keeps) for units [unit_begin, unit_end).
  void output(const StepForward& step, int64_t unit_begin, int64_t unit_end) const {
    const int64_t H = hidden_, ld = 4 * H;
    const float* ah = step.scratch;
    kernels::GruOutputRows out;
    out.rows = step.rows;
    out.hidden = H;
    out.reset_after = reset_after_;
    out.b_xn = weights_.b_x.data() + 2 * H;
    out.b_hn = weights_.b_h.data() + 2 * H;
    out.gates = step.gates;
    out.ah_n = reset_after_ ? ah + 2 * H : ah + 3 * H;
    out.rh = ah + 2 * H;
    out.ld_ah = ld;
    out.h = step.h;
    out.saved = step.saved;
    out.saved_streamed = step.saved_streamed;
    out.unit_begin = unit_begin;
    out.unit_end = unit_end;
    out.copies = step.copies;
    post_gemm_.gru_output(out);
  }

  // The step's backward: element-wise passes, each shared by rows among the threads when `share_passes`
  // (else run here, on a share of rows or on all of them), and the products through W_h.
  void backward_rows(const StepBackward& step, bool share_passes) const {
    const auto pass = [&](void (GruCell::*rows_pass)(const StepBackward&) const) {
      if (!share_passes) return (this->*rows_pass)(step);
      for_rows(step.rows, [&](int64_t begin, int64_t end) { (this->*rows_pass)(share(step, begin, end)); });
    };
    const int64_t H = hidden_;
    pass(&GruCell::gate_gradients);
    if (reset_after_) {
      recurrent_gradient(step.w_h, step.rows, step.dgates_h, 3 * H, 0, 3, 1.0f, step.dh, H);
      return;
    }
    // d(rh) = da_n W_hn into the scratch, then r's gradient from it.
    recurrent_gradient(step.w_h, step.rows, step.dgates_x + 2 * H, 3 * H, 2, 3, 0.0f, step.scratch, 4 * H);
    pass(&GruCell::reset_gradient);
    recurrent_gradient(step.w_h, step.rows, step.dgates_x, 3 * H, 0, 2, 1.0f, step.dh, H);
  }

  void gate_gradients(const StepBackward& step) const {
    kernels::GruBackwardRows gates;
    gates.rows = step.rows;
    gates.hidden = hidden_;
    gates.reset_after = reset_after_;
    gates.saved = step.saved;
    gates.h_prev = step.h_prev;
    gates.dh = step.dh;
    gates.dy = step.dy;
    gates.ldy = step.ldy;
    gates.dgates_x = step.dgates_x;
    gates.dgates_h = step.dgates_h;
    post_gemm_.gru_backward(gates);
  }

  // Reset before: da_r = d(rh) h(t-1) r(1 - r), and dh(t-1) gains d(rh) r.
  void reset_gradient(const StepBackward& step) const {
    const int64_t H = hidden_, ld = 4 * H;
    const float* d_rh = step.scratch;  // [rows, H] with row stride ld
    for (int64_t row = 0; row < step.rows; ++row) {
      const float* saved = step.saved + row * ld;
      const float* h_prev = step.h_prev + row * H;
      float* dh = step.dh + row * H;
      for (int64_t j = 0; j < H; ++j) {
        const float r = saved[j];
        step.dgates_x[row * 3 * H + j] = d_rh[row * ld + j] * h_prev[j] * sigmoid_grad_from_output(r);
        dh[j] += d_rh[row * ld + j] * r;
      }
    }
  }

  bool reset_after_;
  const kernels::PostGemmKernels& post_gemm_ = kernels::post_gemm();
};

}  // namespace

std::unique_ptr<Cell> make_gru_cell(const CellSpec& spec, int64_t hidden, const LayerParameters& weights) {
  return std::make_unique<GruCell>(spec, hidden, weights);
}

}  // namespace recur::cells
