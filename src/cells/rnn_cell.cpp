// Elman RNN: h(t) = act(a), a = x W_x^T + b_x + h(t-1) W_h^T + b_h, act = tanh or relu.
// Backward: da = dh * act'(h(t)); dh(t-1) = da W_h.   Saved per row: h(t) [H].
#include <algorithm>

#include "cells/cell.hpp"
#include "kernels/gemm.hpp"
#include "kernels/post_gemm.hpp"

namespace recur::cells {
namespace {

class RnnCell final : public Cell {
 public:
  using Cell::Cell;
  int64_t saved_width() const override { return hidden_; }
  // A copy of h(t-1) for a step shared by units, when the driver gives none.
  int64_t scratch_width() const override { return hidden_; }
  bool fuses_input_product() const override { return true; }

  void forward_step(const StepForward& step) const override {
    if (step.w_h == nullptr && step.rows <= kernels::kSmallGemmMaxRows) return forward_small(step);
    if (step.w_h == nullptr) return forward_rows(step);
    // Shared by units (Cell::for_unit_shares): each thread's product and activation for its units.
    int64_t lda = 0;
    const float* h_prev = stable_h_prev(step, step.scratch, hidden_, &lda);
    const int64_t nr = step.w_h->panel_width();
    for_unit_shares(*step.w_h, [&](int64_t panel_begin, int64_t panel_end) {
      if (step.x != nullptr)  // a stream's step on packed weights: x W_x^T first
        step.w_x_packed->multiply_units(step.rows, step.x, step.ldx, panel_begin, panel_end, 0.0f, step.gates,
                                        hidden_);
      step.w_h->multiply_units(step.rows, h_prev, lda, panel_begin, panel_end, 1.0f, step.gates, hidden_);
      activate(step, panel_begin * nr, std::min(hidden_, panel_end * nr));
    });
  }

  void backward_step(const StepBackward& step) const override {
    if (step.w_h == nullptr || steps_shared_by_rows(step.w_h, step.rows))
      return for_row_shares(step.w_h, step.rows,
                            [&](int64_t begin, int64_t end) { backward_rows(share(step, begin, end)); });
    // Too few rows to share the step by rows: the pass shares by rows, the product by panels.
    for_rows(step.rows, [&](int64_t begin, int64_t end) { activation_gradient(share(step, begin, end)); });
    recurrent_gradient(step.w_h, step.rows, step.dgates_x, hidden_, 0, 1, 0.0f, step.dh, hidden_);
  }

 private:
  // A portable build's step of more than 4 rows (BLAS).
  void forward_rows(const StepForward& step) const {
    recurrent_product(step, step.h, hidden_, 0, 1, 1.0f, step.gates, hidden_);
    activate(step, 0, hidden_);
  }

  // A small batch's step, a stream's too (fuses_input_product: x W_x^T as well): the products and the
  // activation, shared by units (an RNN's units are its one gate block's columns) through the small-batch
  // kernel on the weights as they are. h(t-1) is read from a copy while h(t) is written.
  void forward_small(const StepForward& step) const {
    const int64_t H = hidden_;
    int64_t lda = 0;
    const float* h_prev = stable_h_prev(step, step.scratch, H, &lda);
    const int64_t depth = H + (step.x != nullptr ? step.input_size : 0);
    for_small_unit_shares(step.rows, depth, [&](int64_t unit_begin, int64_t unit_end) {
      if (step.x != nullptr)
        small_product_units(step.rows, step.x, step.ldx, step.w_x, step.input_size, H, 0, 1, unit_begin,
                            unit_end, 0.0f, step.gates, H);
      small_product_units(step.rows, h_prev, lda, weights_.w_h.data(), H, H, 0, 1, unit_begin, unit_end, 1.0f,
                          step.gates, H);
      activate(step, unit_begin, unit_end);
    });
  }

  // h = act(gates + b_h) for units [unit_begin, unit_end) of every row.
  void activate(const StepForward& step, int64_t unit_begin, int64_t unit_end) const {
    kernels::RnnForwardRows rows;
    rows.rows = step.rows;
    rows.hidden = hidden_;
    rows.relu = spec_.activation == Activation::relu;
    rows.b_x = weights_.b_x.data();
    rows.b_h = weights_.b_h.data();
    rows.gates = step.gates;
    rows.h = step.h;
    rows.saved = step.saved;
    rows.saved_streamed = step.saved_streamed;
    rows.unit_begin = unit_begin;
    rows.unit_end = unit_end;
    rows.copies = step.copies;
    post_gemm_.rnn_forward(rows);
  }

  // One share of a step's rows (Cell::for_row_shares); `step` addresses only those rows.
  void backward_rows(const StepBackward& step) const {
    activation_gradient(step);
    recurrent_gradient(step.w_h, step.rows, step.dgates_x, hidden_, 0, 1, 0.0f, step.dh, hidden_);
  }

  // da = dh act'(h(t)).
  void activation_gradient(const StepBackward& step) const {
    kernels::RnnBackwardRows rows;
    rows.rows = step.rows;
    rows.hidden = hidden_;
    rows.relu = spec_.activation == Activation::relu;
    rows.saved = step.saved;
    rows.dh = step.dh;
    rows.dy = step.dy;
    rows.ldy = step.ldy;
    rows.dgates = step.dgates_x;
    post_gemm_.rnn_backward(rows);
  }

  const kernels::PostGemmKernels& post_gemm_ = kernels::post_gemm();
};

}  // namespace

std::unique_ptr<Cell> make_rnn_cell(const CellSpec& spec, int64_t hidden, const LayerParameters& weights) {
  return std::make_unique<RnnCell>(spec, hidden, weights);
}

}  // namespace recur::cells
