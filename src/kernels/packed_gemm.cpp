#include "kernels/packed_gemm.hpp"

#include <algorithm>

#include "kernels/denormals.hpp"
#include "kernels/gemm.hpp"
#include "kernels/post_gemm.hpp"
#include "kernels/thread_pool.hpp"

namespace recur::kernels {

bool PackedWeights::available() { return post_gemm().packed_gemm != nullptr; }

int64_t PackedWeights::row_block() { return post_gemm().packed_row_block; }

std::pair<bool, bool> PackedWeights::packings(Rows rows) const {
  const bool tiles = panel_width_ == 32 && rows.most >= kTileRows && amx_enabled();
  return {!tiles || rows.fewest < kTileRows, tiles};
}

void PackedWeights::pack_transposed(const float* w, int64_t ldw, int64_t blocks, int64_t block_cols,
                                    int64_t depth, Rows rows) {
  const int64_t nr = post_gemm().packed_panel_width;
  panel_width_ = nr;
  depth_ = depth;
  blocks_ = blocks;
  block_cols_ = block_cols;
  panels_per_block_ = (block_cols + nr - 1) / nr;
  const auto [panels, tiles] = packings(rows);
  has_tiles_ = tiles;
  if (tiles) amx_pack_weights(w, ldw, true, blocks, block_cols, depth, amx_);
  data_.clear();
  if (!panels) return;
  data_.assign(size_t(blocks * panels_per_block_ * depth * nr), 0.0f);
  for (int64_t g = 0; g < blocks; ++g)
    for (int64_t q = 0; q < panels_per_block_; ++q) {
      float* panel = data_.data() + (g * panels_per_block_ + q) * depth * nr;
      const int64_t columns = std::min(nr, block_cols - q * nr);
      const float* rows = w + (g * block_cols + q * nr) * ldw;
      // k outer: the panel is written in order, and the NR rows of w are read as NR sequential streams
      // (column by column, each written float lands on another line: 2.4x slower at H = 512).
      for (int64_t k = 0; k < depth; ++k)
        for (int64_t j = 0; j < columns; ++j) panel[k * nr + j] = rows[j * ldw + k];
    }
}

void PackedWeights::pack(const float* w, int64_t ldw, int64_t depth, int64_t cols, Rows rows) {
  const int64_t nr = post_gemm().packed_panel_width;
  panel_width_ = nr;
  depth_ = depth;
  blocks_ = 1;
  block_cols_ = cols;
  panels_per_block_ = (cols + nr - 1) / nr;
  const auto [panels, tiles] = packings(rows);
  has_tiles_ = tiles;
  if (tiles) amx_pack_weights(w, ldw, false, 1, cols, depth, amx_);
  data_.clear();
  if (!panels) return;
  data_.assign(size_t(panels_per_block_ * depth * nr), 0.0f);
  for (int64_t q = 0; q < panels_per_block_; ++q) {
    float* panel = data_.data() + q * depth * nr;
    const int64_t columns = std::min(nr, cols - q * nr);
    for (int64_t k = 0; k < depth; ++k) std::copy_n(w + k * ldw + q * nr, columns, panel + k * nr);
  }
}

void PackedWeights::multiply_on_tiles(int64_t m, const float* a, int64_t lda, int64_t block_begin,
                                      int64_t panel_begin, int64_t panel_end, int64_t k_begin, int64_t k_end,
                                      float beta, float* c, int64_t ldc) const {
  // Runs of panels within one block at a time.
  for (int64_t p = panel_begin; p < panel_end;) {
    const int64_t block = p / panels_per_block_, end = std::min(panel_end, (block + 1) * panels_per_block_);
    const int64_t g = block_begin + block;
    amx_multiply_weights(amx_, m, a, lda, g, g + 1, p - block * panels_per_block_,
                         end - block * panels_per_block_, k_begin, k_end, beta, c + block * block_cols_, ldc);
    p = end;
  }
}

PackedGemmPanels PackedWeights::task(int64_t m, const float* a, int64_t lda, int64_t k_begin, int64_t k_end,
                                     float beta, float* c, int64_t ldc) const {
  PackedGemmPanels task;
  task.rows = m;
  task.depth = k_end - k_begin;
  task.a = a;
  task.lda = lda;
  task.panel_stride = depth_ * panel_width_;
  task.panels = data_.data() + k_begin * panel_width_;
  task.block_cols = block_cols_;
  task.panels_per_block = panels_per_block_;
  task.beta = beta;
  task.c = c;
  task.ldc = ldc;
  return task;
}

void PackedWeights::multiply_units(int64_t m, const float* a, int64_t lda, int64_t panel_begin,
                                   int64_t panel_end, float beta, float* c, int64_t ldc) const {
  if (m == 0 || panel_end <= panel_begin) return;
  if (on_tiles(m))  // all blocks in one call: A is split into its tiles once, not once per block
    return amx_multiply_weights(amx_, m, a, lda, 0, blocks_, panel_begin, panel_end, 0, depth_, beta, c, ldc);
  const FlushDenormals flush;
  PackedGemmPanels share = task(m, a, lda, 0, depth_, beta, c, ldc);
  const auto& kernel = post_gemm().packed_gemm;
  for (int64_t block = 0; block < blocks_; ++block) {
    share.panel_begin = block * panels_per_block_ + panel_begin;
    share.panel_end = block * panels_per_block_ + panel_end;
    kernel(share);
  }
}

void PackedWeights::multiply(int64_t m, const float* a, int64_t lda, int64_t block_begin, int64_t block_end,
                             int64_t k_begin, int64_t k_end, float beta, float* c, int64_t ldc) const {
  if (m == 0 || block_end <= block_begin) return;
  const FlushDenormals flush;
  PackedGemmPanels task = this->task(m, a, lda, k_begin, k_end, beta, c, ldc);
  task.panels += block_begin * panels_per_block_ * task.panel_stride;
  const int64_t panels = (block_end - block_begin) * panels_per_block_;
  const auto& kernel = post_gemm().packed_gemm;
  // Below ~1M multiply-adds (a few tens of microseconds) one thread is about as fast as two, unless the
  // product is bound by reading B (a batch of 1 to 4): from 512 KB of B two cores' caches stream it
  // faster (kernel_bench, matvec).
  const int64_t b_floats = panels * panel_width_ * task.depth;
  if (on_tiles(m)) {
    ThreadPool::instance().run([&](int index, int count) {
      multiply_on_tiles(m, a, lda, block_begin, panels * index / count, panels * (index + 1) / count, k_begin,
                        k_end, beta, c, ldc);
    });
    return;
  }
  if (m * b_floats < (int64_t(1) << 20) && b_floats < (int64_t(1) << 17)) {
    task.panel_begin = 0;
    task.panel_end = panels;
    return kernel(task);
  }
  ThreadPool::instance().run([&](int index, int count) {
    PackedGemmPanels share = task;
    share.panel_begin = panels * index / count;
    share.panel_end = panels * (index + 1) / count;
    kernel(share);
  });
}

PrepackedWeights::PrepackedWeights(const float* w, int64_t ldw, int64_t n, int64_t k)
    : w_(w), ldw_(ldw), n_(n), k_(k) {
  // Tiles only for shapes that some row count sends to the tile unit (gemm_uses_tiles at its largest m).
  if (n > 0 && k > 0 && gemm_uses_tiles(int64_t(1) << 30, n, k, 1.0f, 0.0f))
    amx_pack_weights(w, ldw, true, 1, n, k, tiles_);
}

void PrepackedWeights::multiply(int64_t m, const float* a, int64_t lda, float beta, float* c,
                                int64_t ldc) const {
  // The same choice as recurrent_gemm_nt and gemm make, so that the same kernel computes the same sums.
  if (m > kSmallGemmMaxRows && !tiles_.tiles.empty() && gemm_uses_tiles(m, n_, k_, 1.0f, beta)) {
    const FlushDenormals flush;
    return amx_gemm_prepacked(m, a, lda, tiles_, beta, c, ldc);
  }
  recurrent_gemm_nt(m, n_, k_, a, lda, w_, ldw_, beta, c, ldc);
}

}  // namespace recur::kernels
