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

#include "recur/cell.hpp"
#include "recur/rnn.hpp"

namespace recur::cells {

struct StepForward {
  int64_t rows = 0;
  float* gates = nullptr;    // [rows, G*H] in: x W_x^T + b_x of this step; the cell may overwrite it
  float* h = nullptr;        // [rows, H] in h(t-1), out h(t)
  float* c = nullptr;        // [rows, H] in c(t-1), out c(t); lstm family only
  float* saved = nullptr;    // [rows, saved_width()] written for backward; nullptr in inference
  float* scratch = nullptr;  // [rows, scratch_width()]
};

struct StepBackward {
  int64_t rows = 0;
  const float* saved = nullptr;   // [rows, saved_width()] as forward_step wrote it
  const float* h_prev = nullptr;  // [rows, H] h(t-1)
  float* dh = nullptr;            // [rows, H] in dL/dh(t) (output's share included), out dL/dh(t-1)
  float* dc = nullptr;            // [rows, H] in dL/dc(t), out dL/dc(t-1); lstm family only
  float* dgates_x = nullptr;      // [rows, G*H] out: dL/d(x W_x^T + b_x)
  float* dgates_h = nullptr;      // [rows, G*H] out: dL/d(recurrent part); only if distinct_recurrent_gradient()
  float* dpeephole = nullptr;     // [P*H] accumulated into; peephole cells only
  float* scratch = nullptr;       // [rows, scratch_width()]
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

  virtual void forward_step(const StepForward& step) const = 0;
  virtual void backward_step(const StepBackward& step) const = 0;

  // dW_h += dgates_h^T h_prev over all `total_rows` rows of all steps (one GEMM). Cells whose recurrent
  // product reads something other than h(t-1) (GRU, reset before: r * h) override it.
  virtual void accumulate_recurrent_weight_gradient(int64_t total_rows, const float* dgates_h, const float* h_prev,
                                                    const float* saved, float* dw_h) const;

  int64_t hidden() const { return hidden_; }
  int64_t gate_width() const { return spec_.gate_count() * hidden_; }
  const CellSpec& spec() const { return spec_; }

 protected:
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
