#pragma once
// One cell family's time step, forward and backward, over the live rows of one step of one layer in
// one direction. The driver (src/driver/layer.cpp) owns the schedule: the input GEMM over all steps
// before the loop, the time loop, and the weight-gradient GEMMs over all steps after it. A cell owns
// what happens inside a step: its recurrent GEMM(s) and its fused element-wise "post-GEMM" work.
//
// Rows are a prefix of the batch (the driver sorts sequences by length), so every pointer below
// addresses `rows` consecutive rows.
#include <cstdint>
#include <memory>

#include "kernels/function_ref.hpp"
#include "kernels/packed_gemm.hpp"
#include "recur/cell.hpp"
#include "recur/rnn.hpp"

namespace recur::cells {

struct StepForward {
  int64_t rows = 0;
  float* gates = nullptr;       // [rows, G*H] in: x W_x^T of this step (no bias); the cell may overwrite it
  float* h = nullptr;           // [rows, H] in h(t-1), out h(t)
  float* c = nullptr;           // [rows, H] in c(t-1), out c(t); lstm family only
  float* saved = nullptr;       // [rows, saved_width()] written for backward; nullptr in inference
  bool saved_streamed = false;  // the whole tape outgrows the caches: saved may bypass them (post_gemm.hpp)
  float* scratch = nullptr;     // [rows, scratch_width()]
  // W_h packed for h W_h^T (PackedWeights::pack_transposed, gate blocks of H), or nullptr.
  const kernels::PackedWeights* w_h = nullptr;
  // [rows, H] a copy of h(t-1) that stays put while h is overwritten (the tape's), or nullptr.
  const float* h_prev = nullptr;
  // Where the driver left the input product to the cell (a stream's one step of a small batch, for
  // cells whose fuses_input_product()): x [rows, ldx] and W_x [G*H, input_size]; gates then holds
  // nothing yet. nullptr: gates holds x W_x^T.
  const float* x = nullptr;
  int64_t ldx = 0, input_size = 0;
  const float* w_x = nullptr;
  // With w_h packed: W_x packed likewise (gate blocks of H columns, depth input_size), which the cell reads
  // instead of w_x.
  const kernels::PackedWeights* w_x_packed = nullptr;
  // Where the step's pass also writes h(t) (the layer's output, the tape's next h(t-1)); see
  // kernels::HiddenCopies.
  kernels::HiddenCopies copies;
};

struct StepBackward {
  int64_t rows = 0;
  const float* saved = nullptr;   // [rows, saved_width()] as forward_step wrote it
  const float* h_prev = nullptr;  // [rows, H] h(t-1)
  float* dh = nullptr;            // [rows, H] in dL/dh(t) (output's share included), out dL/dh(t-1)
  float* dc = nullptr;            // [rows, H] in dL/dc(t), out dL/dc(t-1); lstm family only
  float* dgates_x = nullptr;      // [rows, G*H] out: dL/d(x W_x^T + b_x)
  float* dgates_h = nullptr;   // [rows, G*H] out: dL/d(recurrent part); only if distinct_recurrent_gradient()
  float* dpeephole = nullptr;  // [P*H] accumulated into; peephole cells only
  float* scratch = nullptr;    // [rows, scratch_width()]
  // W_h packed for dg W_h (PackedWeights::pack, depth G*H), or nullptr.
  const kernels::PackedWeights* w_h = nullptr;
  // [rows, ldy] dL/dy(t), the output's share of dL/dh(t), not yet in dh: the element-wise pass adds it
  // as it reads dh. nullptr: dh holds all of dL/dh(t).
  const float* dy = nullptr;
  int64_t ldy = 0;
};

class Cell {
 public:
  Cell(const CellSpec& spec, int64_t hidden, const LayerParameters& weights)
      : spec_(spec), hidden_(hidden), weights_(weights) {}
  virtual ~Cell() = default;

  // Floats per row and step that training keeps for backward_step.
  virtual int64_t saved_width() const = 0;
  // Floats per row of temporary space a step needs (forward or backward).
  virtual int64_t scratch_width() const = 0;
  // True when dL/d(recurrent pre-activation) differs from dL/d(input pre-activation) (GRU, reset after).
  virtual bool distinct_recurrent_gradient() const { return false; }

  // Whether forward_step computes x W_x^T itself for a step of at most 4 rows given StepForward::x: a
  // stream's step then runs its two products and its element-wise pass as one task on recur's threads,
  // each thread reading its own rows of W_x and W_h, instead of two products and a serial pass.
  virtual bool fuses_input_product() const { return false; }
  virtual void forward_step(const StepForward& step) const = 0;
  virtual void backward_step(const StepBackward& step) const = 0;

  // The weight gradients over all `total_rows` rows of all steps (x is [total_rows, input_size]):
  // dW_x += dgates_x^T x, dW_h += dgates_h^T h_prev, db_x += the column sums of dgates_x, db_h of dgates_h.
  // One gradient for both products (dgates_x == dgates_h) is split and packed once for all of them
  // (kernels::weight_gradients). Cells whose recurrent product reads something other than h(t-1) (GRU,
  // reset before: r * h) override it.
  virtual void accumulate_weight_gradients(int64_t total_rows, const float* dgates_x, const float* x,
                                           int64_t input_size, const float* dgates_h, const float* h_prev,
                                           const float* saved, LayerParameters& grads) const;

  int64_t hidden() const { return hidden_; }
  int64_t gate_width() const { return spec_.gate_count() * hidden_; }
  const CellSpec& spec() const { return spec_; }

 protected:
  // db_x += sums and db_h += sums: the biases of a cell whose two products share one gradient.
  static void add_to_both_biases(const std::vector<float>& sums, LayerParameters& grads);
  // C = A W_h[gate blocks [block_begin, block_end)]^T + beta C (beta 0 or 1): the recurrent product of
  // step's rows, C [step.rows, (block_end - block_begin) H]. Through the packed weights when the driver
  // made them (step.w_h), else kernels::recurrent_gemm_nt.
  void recurrent_product(const StepForward& step, const float* a, int64_t lda, int64_t block_begin,
                         int64_t block_end, float beta, float* c, int64_t ldc) const;
  // C = A W_h[rows of gate blocks [block_begin, block_end)] + beta C: the gradient flowing back to
  // h(t-1), C [rows, H], A [rows, (block_end - block_begin) H].
  void recurrent_gradient(const kernels::PackedWeights* w_h, int64_t rows, const float* a, int64_t lda,
                          int64_t block_begin, int64_t block_end, float beta, float* c, int64_t ldc) const;
  // Runs body(row_begin, row_end) over a step's rows: once over all of them, or, where the driver packed
  // W_h (w_h not null) and the batch gives every one of recur's threads at least a micro-kernel's block
  // of rows, once per thread on its share. A share's products and element-wise work then run together,
  // with one wait per step instead of one per product and a serial element-wise pass. (The products
  // inside a share run on their own thread alone: kernels::ThreadPool::run nests so.) Every row's sums
  // are the same however the rows are shared.
  static void for_row_shares(const kernels::PackedWeights* w_h, int64_t rows,
                             kernels::FunctionRef<void(int64_t, int64_t)> body);
  // Whether for_row_shares shares a step of `rows` rows by rows (else its products share by panels).
  static bool steps_shared_by_rows(const kernels::PackedWeights* w_h, int64_t rows);
  // Runs body(panel_begin, panel_end) once per thread of recur's pool on its share of W_h's panels in
  // each gate block (w_h.multiply_units): the same units of every gate, so that a thread's product feeds
  // its own element-wise pass, and its share of W_h stays in its own core's cache from step to step (a
  // 64 x 2048 x 512 product: 514 us on 2 threads shared so, 615 us with each thread reading all of
  // W_h for half of the rows; kernel_bench). Once, over all panels, on one thread.
  static void for_unit_shares(const kernels::PackedWeights& w_h,
                              kernels::FunctionRef<void(int64_t, int64_t)> body);
  // A step of at most 4 rows (no packed weights), shared by units: runs body(unit_begin, unit_end) once
  // per thread of recur's pool on its share of the units, in whole 16-float lines (once over all H on
  // one thread when the step's products, of `depth` multiply-adds per output, are too small to share).
  void for_small_unit_shares(int64_t rows, int64_t depth,
                             kernels::FunctionRef<void(int64_t, int64_t)> body) const;
  // C[:, (g - block_begin) H + u] = A W[g H + u]^T + beta C for the units u in [unit_begin, unit_end) of
  // gate blocks g in [block_begin, block_end): one thread's share of a small batch's product, W [G*H, k]
  // (W_h, or W_x for a stream's step), through the small-batch kernel.
  static void small_product_units(int64_t rows, const float* a, int64_t lda, const float* w, int64_t k,
                                  int64_t hidden, int64_t block_begin, int64_t block_end, int64_t unit_begin,
                                  int64_t unit_end, float beta, float* c, int64_t ldc);
  // h(t-1) [rows, *lda] for the products of a step shared by units, during which one thread writes its
  // units of h while another still reads all of it: the driver's copy (the tape's), or one made in
  // spare ([rows, ld], in the cell's scratch).
  const float* stable_h_prev(const StepForward& step, float* spare, int64_t ld, int64_t* lda) const;
  // Runs body(row_begin, row_end) on even shares of the rows among recur's threads (an element-wise
  // pass after a product shared by panels), or once for fewer than 8 rows.
  static void for_rows(int64_t rows, kernels::FunctionRef<void(int64_t, int64_t)> body);
  // The rows [begin, end) of a step, as a step of their own (every per-row pointer moved to row begin).
  StepForward share(const StepForward& step, int64_t begin, int64_t end) const;
  StepBackward share(const StepBackward& step, int64_t begin, int64_t end) const;

  CellSpec spec_;
  int64_t hidden_;
  const LayerParameters& weights_;
};

std::unique_ptr<Cell> make_cell(const CellSpec& spec, int64_t hidden, const LayerParameters& weights);

// Family constructors, one per file.
std::unique_ptr<Cell> make_rnn_cell(const CellSpec& spec, int64_t hidden, const LayerParameters& weights);
std::unique_ptr<Cell> make_lstm_cell(const CellSpec& spec, int64_t hidden, const LayerParameters& weights);
std::unique_ptr<Cell> make_gru_cell(const CellSpec& spec, int64_t hidden, const LayerParameters& weights);

}  // namespace recur::cells
