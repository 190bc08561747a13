#pragma once
// The recurrent products of a time step with a batch of more than 4 rows, on weights packed once per
// sequence. Through BLAS, every step would copy W_h (4 MB for an LSTM at H = 512) into BLAS's panel
// layout again, and wake and put to sleep BLAS's threads; here the copy is made once, before the time
// loop, and each of recur's threads (kernels/thread_pool.hpp) sweeps its own panels of it.
//
// Layout: B (the [depth, columns] right-hand operand of C = A B) in panels of NR columns (32 with
// AVX-512, 16 with AVX2), each panel [depth][NR] contiguous. The columns come in blocks (an LSTM's four
// gate blocks of H units); each block is padded to whole panels, so that a product may use any range of
// blocks (a GRU's r and z without n) and any range of depth (a GRU's n rows only, backward).
#include <cstdint>
#include <utility>

#include "kernels/amx_gemm.hpp"
#include "kernels/post_gemm.hpp"
#include "recur/aligned.hpp"

namespace recur::kernels {

// The row counts a packed W's products will have, which decide the packings made where the processor
// has AMX (kernels/amx_gemm.hpp): products of PackedWeights::kTileRows rows or more run on the tile unit,
// smaller ones on the float32 panels (at 8 rows the tiles' 32-row blocks made an LSTM training step 30%
// slower, at 16 the two were level, at 32 and 64 the tiles were 15% faster).
struct PackedRows {
  int64_t fewest = 1, most = int64_t(1) << 40;
};

class PackedWeights {
 public:
  // False where the processor has no packed micro-kernel (the portable build): use BLAS then.
  static bool available();
  // Rows of C that the micro-kernel computes at once (12 with AVX-512, 6 with AVX2).
  static int64_t row_block();

  using Rows = PackedRows;
  static constexpr int64_t kTileRows = 16;

  // B[k][n] = w[n * ldw + k]: w holds blocks * block_cols rows of depth floats, as W_h [G*H, H] does
  // in the forward product h W_h^T.
  void pack_transposed(const float* w, int64_t ldw, int64_t blocks, int64_t block_cols, int64_t depth,
                       Rows rows = {});
  // B[k][n] = w[k * ldw + n]: w is [depth, cols], one block, as W_h in the backward product dg W_h.
  void pack(const float* w, int64_t ldw, int64_t depth, int64_t cols, Rows rows = {});

  bool empty() const { return data_.empty() && !has_tiles_; }
  // The bytes of the weights' tiles a product of m rows reads, or 0 where it runs on float32 panels.
  int64_t tile_bytes(int64_t m) const {
    return on_tiles(m) ? blocks_ * amx_.groups * amx_.k_steps * int64_t(6 * 1024) : 0;  // 6 tiles of 1 KB
  }
  int64_t depth() const { return depth_; }
  int64_t blocks() const { return blocks_; }
  int64_t block_cols() const { return block_cols_; }

  // C[m, columns of blocks [block_begin, block_end)] = A[m, k_end - k_begin] B[k_begin:k_end, those
  // columns] + beta C (beta 0 or 1). Block g's columns start in C at (g - block_begin) * block_cols.
  // Large products are shared among recur's threads by panels; the sums do not depend on the thread
  // count (each element is computed by one thread, in the same order).
  void multiply(int64_t m, const float* a, int64_t lda, int64_t block_begin, int64_t block_end,
                int64_t k_begin, int64_t k_end, float beta, float* c, int64_t ldc) const;
  // One thread's share of C = A B + beta C over all k, by columns: panels [panel_begin, panel_end) of
  // every block, i.e. the same units of every gate (columns q*NR.. of each block, C laid out as in
  // multiply). Runs on the calling thread only.
  void multiply_units(int64_t m, const float* a, int64_t lda, int64_t panel_begin, int64_t panel_end,
                      float beta, float* c, int64_t ldc) const;
  int64_t panel_width() const { return panel_width_; }
  int64_t panels_per_block() const { return panels_per_block_; }

 private:
  // The micro-kernels' description of C = A B[k_begin:k_end] + beta C from panel 0 on; no panel range yet.
  PackedGemmPanels task(int64_t m, const float* a, int64_t lda, int64_t k_begin, int64_t k_end, float beta,
                        float* c, int64_t ldc) const;

  // Panels [panel_begin, panel_end) of the blocks' concatenation, on the tile unit.
  void multiply_on_tiles(int64_t m, const float* a, int64_t lda, int64_t block_begin, int64_t panel_begin,
                         int64_t panel_end, int64_t k_begin, int64_t k_end, float beta, float* c,
                         int64_t ldc) const;
  // Whether a product of m rows runs on the tile unit.
  bool on_tiles(int64_t m) const { return has_tiles_ && (m >= kTileRows || data_.empty()); }
  // Which packings to make (float32 panels, tiles) for products of these row counts.
  std::pair<bool, bool> packings(Rows rows) const;

  int64_t panel_width_ = 0, depth_ = 0, blocks_ = 0, block_cols_ = 0, panels_per_block_ = 0;
  AlignedVector<float> data_;  // every panel starts on a cache line (its size is a multiple of 64 bytes)
  // Where the processor has AMX (kernels/amx_gemm.hpp): the same weights as tiles of their three
  // bfloat16 parts, in 32-column groups that are the panels above (32 wide with AVX-512). Its storage
  // is kept from pass to pass (has_tiles_ says whether this packing made tiles).
  AmxWeights amx_;
  bool has_tiles_ = false;
};

// W [n, k] prepared once for products C = A W^T + beta C of many rows with W fixed: an inference's
// x W_x^T over all its steps (oneDNN likewise takes weights reordered once, outside its primitives).
// Where those products run on the tile unit, W is split and packed into tiles once, here, instead of at
// every product (a GRU's x W_x^T at H = 512 and 100 rows: 0.19-0.26 ms of 0.53-0.81). Keeps a pointer
// to w, which must stay unchanged while this lives.
class PrepackedWeights {
 public:
  PrepackedWeights() = default;
  PrepackedWeights(const float* w, int64_t ldw, int64_t n, int64_t k);
  // recurrent_gemm_nt(m, n, k, a, lda, w, ldw, beta, c, ldc), bit for bit.
  void multiply(int64_t m, const float* a, int64_t lda, float beta, float* c, int64_t ldc) const;

 private:
  const float* w_ = nullptr;
  int64_t ldw_ = 0, n_ = 0, k_ = 0;
  AmxWeights tiles_;  // one transposed-layout block; empty where the tile unit is not used
};

}  // namespace recur::kernels
