#include "cells/cell.hpp"

#include <algorithm>

#include "kernels/denormals.hpp"
#include "kernels/gemm.hpp"
#include "kernels/post_gemm.hpp"
#include "kernels/thread_pool.hpp"

namespace recur::cells {

void Cell::add_to_both_biases(const std::vector<float>& sums, LayerParameters& grads) {
  for (size_t j = 0; j < sums.size(); ++j) {
    grads.b_x.data()[j] += sums[j];
    grads.b_h.data()[j] += sums[j];
  }
}

void Cell::accumulate_weight_gradients(int64_t total_rows, const float* dgates_x, const float* x,
                                       int64_t input_size, const float* dgates_h, const float* h_prev,
                                       const float*, LayerParameters& grads) const {
  const int64_t width = gate_width(), I = input_size, H = hidden_;
  const kernels::WeightGradient input{x, I, I, grads.w_x.data(), I},
      recurrent{h_prev, H, H, grads.w_h.data(), H};
  if (dgates_x != dgates_h) {
    kernels::weight_gradients(width, total_rows, dgates_x, width, {&input, 1}, grads.b_x.data());
    kernels::weight_gradients(width, total_rows, dgates_h, width, {&recurrent, 1}, grads.b_h.data());
    return;
  }
  // One gradient: one packing for both products, and one sum for both biases.
  std::vector<float> sums(size_t(width), 0.0f);
  const kernels::WeightGradient both[] = {input, recurrent};
  kernels::weight_gradients(width, total_rows, dgates_x, width, both, sums.data());
  add_to_both_biases(sums, grads);
}

void Cell::recurrent_product(const StepForward& step, const float* a, int64_t lda, int64_t block_begin,
                             int64_t block_end, float beta, float* c, int64_t ldc) const {
  const int64_t H = hidden_;
  if (step.w_h != nullptr)
    return step.w_h->multiply(step.rows, a, lda, block_begin, block_end, 0, H, beta, c, ldc);
  kernels::recurrent_gemm_nt(step.rows, (block_end - block_begin) * H, H, a, lda,
                             weights_.w_h.data() + block_begin * H * H, H, beta, c, ldc);
}

void Cell::recurrent_gradient(const kernels::PackedWeights* w_h, int64_t rows, const float* a, int64_t lda,
                              int64_t block_begin, int64_t block_end, float beta, float* c,
                              int64_t ldc) const {
  const int64_t H = hidden_;
  if (w_h != nullptr) return w_h->multiply(rows, a, lda, 0, 1, block_begin * H, block_end * H, beta, c, ldc);
  kernels::gemm_nn(rows, H, (block_end - block_begin) * H, a, lda, weights_.w_h.data() + block_begin * H * H,
                   H, beta, c, ldc);
}

void Cell::for_row_shares(const kernels::PackedWeights* w_h, int64_t rows,
                          kernels::FunctionRef<void(int64_t, int64_t)> body) {
  if (!steps_shared_by_rows(w_h, rows)) return body(0, rows);
  // Even shares: 64 rows as 32 + 32 (blocks 12, 12, 8 each) beat 36 + 28 in whole blocks.
  for_rows(rows, body);
}

bool Cell::steps_shared_by_rows(const kernels::PackedWeights* w_h, int64_t rows) {
  const int threads = kernels::ThreadPool::instance().size();
  // Shared by rows, every thread reads all of W_h at every step; by units, its share. On the tile unit
  // the step products are bound by reading W_h's tiles (six bytes per weight): past 1 MB (half a
  // core's L2) shares by units are faster (b_db512's backward, 6 MB of tiles: LSTM and GRU 3-5% faster
  // training steps, four alternating pairs).
  constexpr int64_t kRowSharedTileBytes = int64_t(1) << 20;
  return w_h != nullptr && threads > 1 && rows >= 2 * kernels::PackedWeights::row_block() * threads &&
         w_h->tile_bytes(rows / threads) <= kRowSharedTileBytes;
}

void Cell::for_unit_shares(const kernels::PackedWeights& w_h,
                           kernels::FunctionRef<void(int64_t, int64_t)> body) {
  kernels::ThreadPool& pool = kernels::ThreadPool::instance();
  const int64_t panels = w_h.panels_per_block();
  if (pool.size() == 1 || panels == 1) return body(0, panels);
  pool.run([&](int index, int count) {
    const int64_t begin = panels * index / count, end = panels * (index + 1) / count;
    if (end > begin) body(begin, end);
  });
}

const float* Cell::stable_h_prev(const StepForward& step, float* spare, int64_t ld, int64_t* lda) const {
  if (step.h_prev != nullptr) {
    *lda = hidden_;
    return step.h_prev;
  }
  for (int64_t row = 0; row < step.rows; ++row)
    std::copy_n(step.h + row * hidden_, hidden_, spare + row * ld);
  *lda = ld;
  return spare;
}

void Cell::for_small_unit_shares(int64_t rows, int64_t depth,
                                 kernels::FunctionRef<void(int64_t, int64_t)> body) const {
  kernels::ThreadPool& pool = kernels::ThreadPool::instance();
  if (pool.size() == 1 || rows * gate_width() * depth < kernels::kParallelSmallGemmMultiplyAdds)
    return body(0, hidden_);
  pool.run([&](int index, int count) {
    const auto [begin, end] = kernels::line_share(hidden_, index, count);
    if (end > begin) body(begin, end);
  });
}

void Cell::small_product_units(int64_t rows, const float* a, int64_t lda, const float* w, int64_t k,
                               int64_t hidden, int64_t block_begin, int64_t block_end, int64_t unit_begin,
                               int64_t unit_end, float beta, float* c, int64_t ldc) {
  const kernels::FlushDenormals flush;
  for (int64_t g = block_begin; g < block_end; ++g) {
    kernels::SmallGemmRows product = kernels::small_gemm_rows(rows, k, a, lda, w + g * hidden * k, k, beta,
                                                              c + (g - block_begin) * hidden, ldc);
    product.n_begin = unit_begin;
    product.n_end = unit_end;
    kernels::post_gemm().small_gemm_nt(product);
  }
}

void Cell::for_rows(int64_t rows, kernels::FunctionRef<void(int64_t, int64_t)> body) {
  kernels::ThreadPool& pool = kernels::ThreadPool::instance();
  if (pool.size() == 1 || rows < 8) return body(0, rows);
  pool.run([&](int index, int count) {
    const int64_t begin = rows * index / count, end = rows * (index + 1) / count;
    if (end > begin) body(begin, end);
  });
}

namespace {
template <class T>
T* rows_from(T* p, int64_t row, int64_t width) {
  return p != nullptr ? p + row * width : nullptr;
}
}  // namespace

StepForward Cell::share(const StepForward& step, int64_t begin, int64_t end) const {
  StepForward part = step;
  part.rows = end - begin;
  part.gates = rows_from(step.gates, begin, gate_width());
  part.h = rows_from(step.h, begin, hidden_);
  part.c = rows_from(step.c, begin, hidden_);
  part.saved = rows_from(step.saved, begin, saved_width());
  part.scratch = rows_from(step.scratch, begin, scratch_width());
  part.h_prev = rows_from(step.h_prev, begin, hidden_);
  part.x = rows_from(step.x, begin, step.ldx);
  part.copies.y = rows_from(step.copies.y, begin, step.copies.ldy);
  part.copies.next = rows_from(step.copies.next, begin, hidden_);
  part.copies.next_rows = std::max<int64_t>(0, step.copies.next_rows - begin);
  return part;
}

StepBackward Cell::share(const StepBackward& step, int64_t begin, int64_t end) const {
  StepBackward part = step;
  part.rows = end - begin;
  part.saved = rows_from(step.saved, begin, saved_width());
  part.h_prev = rows_from(step.h_prev, begin, hidden_);
  part.dh = rows_from(step.dh, begin, hidden_);
  part.dc = rows_from(step.dc, begin, hidden_);
  part.dgates_x = rows_from(step.dgates_x, begin, gate_width());
  part.dgates_h = rows_from(step.dgates_h, begin, gate_width());
  part.scratch = rows_from(step.scratch, begin, scratch_width());
  part.dy = rows_from(step.dy, begin, step.ldy);
  return part;
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
