#pragma once
// The shared schedule of one recurrent layer in one direction (oneDNN's RNN driver, Marian's split):
//   gates = x W_x^T                  one GEMM over all T*B rows, before the time loop (biases: in the cells)
//   for t in time order (or reverse): cell.forward_step (recurrent GEMM + fused post-GEMM)
// backward, steps in the opposite order: cell.backward_step, then once over all steps:
//   dW_x += dG^T x,  dW_h += dG_h^T h_prev,  db_x += sum dG,  db_h += sum dG_h,  dx += dG W_x
#include <cstdint>
#include <vector>

#include "cells/cell.hpp"
#include "kernels/packed_gemm.hpp"

namespace recur::driver {

// What a layer pass reuses from call to call: the gate buffers, and W_h packed for the step products
// (kernels/packed_gemm.hpp), made once per pass when some step has more than 4 live rows.
struct LayerScratch {
  AlignedVector<float> buffer;  // gates (the packed kernel's C) on cache lines
  kernels::PackedWeights w_h;
};

// The batch sorted by length, longest first, so that the live rows of every step are a prefix.
struct SequenceLayout {
  int64_t steps = 0;
  int64_t batch = 0;
  std::vector<int64_t> order;      // order[k]: the caller's index of sorted row k
  std::vector<int64_t> live_rows;  // live_rows[t]: sequences longer than t
  std::vector<int64_t> lengths;    // sorted, longest first

  // lengths empty: all of length `steps`. Lengths are checked by the caller.
  static SequenceLayout make(int64_t steps, int64_t batch, const std::vector<int64_t>& lengths);
  // Whether sorted row k is the caller's row k for every k (no lengths given, or already longest first):
  // a time-major tensor is then in the sorted layout as it is.
  bool in_caller_order() const;
};

// What training keeps of one layer in one direction, indexed by time step like x: rows t*B .. t*B+B-1.
struct LayerTape {
  AlignedVector<float> h_prev;  // [T*B, H] h(t-1) of every live row, zero elsewhere
  AlignedVector<float> saved;   // [T*B, saved_width] the cell's own
};

struct LayerForward {
  const cells::Cell* cell = nullptr;
  const LayerParameters* weights = nullptr;
  const SequenceLayout* layout = nullptr;
  bool reverse = false;
  const float* x = nullptr;  // [T*B, I] in sorted time-major order
  int64_t input_size = 0;
  float* y = nullptr;  // [T*B, ldy] output columns of this direction; rows must be zero on entry
  int64_t ldy = 0;
  float* h = nullptr;         // [B, H] in: h0, out: final h
  float* c = nullptr;         // [B, H] likewise; lstm family only
  LayerTape* tape = nullptr;  // nullptr: inference
  // Weights packed once for many passes (FrozenRnn, and streams of one); what is null is packed, where it
  // is, by each pass.
  struct Packed {
    const kernels::PrepackedWeights* w_x = nullptr;  // x W_x^T over all of a pass's rows
    const kernels::PackedWeights* w_h = nullptr;     // the steps' h W_h^T, for any batch
    // A stream's one-step x W_x^T, taken with its recurrent product (Cell::fuses_input_product) where
    // w_h is given too; as w_h, gate blocks of H columns.
    const kernels::PackedWeights* w_x_steps = nullptr;
  } packed;
  // A stream's h(t-1) from one of its one-step passes to the next (RnnStream): the two [B, H] buffers of
  // the ring that inference's steps write and read in turn, kept by the caller; `filled`: whether
  // buffers[phase] holds h(t-1) already (not after the state was set from outside). Else nullptr.
  struct CarriedRing {
    float* buffers = nullptr;
    int phase = 0;
    bool filled = false;
  }* carried_ring = nullptr;
};
void layer_forward(const LayerForward& args, LayerScratch& scratch);

struct LayerBackward {
  const cells::Cell* cell = nullptr;
  const LayerParameters* weights = nullptr;
  const SequenceLayout* layout = nullptr;
  bool reverse = false;
  const float* x = nullptr;  // [T*B, I] as forward saw it
  int64_t input_size = 0;
  const LayerTape* tape = nullptr;
  const float* dy = nullptr;  // [T*B, ldy] dL/dy of this direction's columns
  int64_t ldy = 0;
  float* dh = nullptr;               // [B, H] in: dL/d final h, out: dL/dh0
  float* dc = nullptr;               // likewise for c
  LayerParameters* grads = nullptr;  // accumulated into
  float* dx = nullptr;               // [T*B, I]
  bool accumulate_dx = true;         // add to dx (the second direction), else overwrite it
};
void layer_backward(const LayerBackward& args, LayerScratch& scratch);

}  // namespace recur::driver
