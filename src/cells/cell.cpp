#include "cells/cell.hpp"

#include "kernels/gemm.hpp"

namespace recur::cells {

void Cell::accumulate_recurrent_weight_gradient(int64_t total_rows, const float* dgates_h, const float* h_prev,
                                                const float*, float* dw_h) const {
  const int64_t width = gate_width();
  kernels::gemm_tn(width, hidden_, total_rows, dgates_h, width, h_prev, hidden_, 1.0f, dw_h, hidden_);
}

std::unique_ptr<Cell> make_cell(const CellSpec& spec, int64_t hidden, const LayerParameters& weights) {
  switch (spec.family) {
    case CellFamily::rnn:
      return make_rnn_cell(spec, hidden, weights);
    case CellFamily::lstm:
      return make_lstm_cell(spec, hidden, weights);
    case CellFamily::gru:
      return make_gru_cell(spec, hidden, weights);
  }
  return nullptr;
}

}  // namespace recur::cells
