#pragma once
// Float32 GEMMs on the AMX tile unit (Intel Sapphire Rapids and later), as accurate as float32's own.
//
// AMX multiplies bfloat16 pairs into float32 sums, some 15x the rate of float32 FMAs (bench/amx_probe).
// A float32 x splits exactly into three bfloat16 parts, x = x0 + x1 + x2, each holding the next 8 bits
// of its mantissa; x w is then the sum of the nine products xi wj, and the six with i + j <= 2 leave out
// only terms below 2^-24 |x w|, float32's own rounding ("bf16x3", as CUTLASS's 3xTF32). Six tile
// products per pair of blocks, the smallest first, give float32's accuracy (tests/test_amx_gemm.cpp
// measures it against a double-precision sum, beside OpenBLAS's) at 1.3-1.7x OpenBLAS's rate on a
// training step's merged products here (docs/performance.md, fifth round).
//
// Infinities and NaNs stay whole in the first part (the others are zero), so they propagate as in a
// float32 product, except that inf times a weight whose bfloat16 parts include a zero gives NaN, not inf.
// Subnormal parts are flushed, as recur flushes subnormals anyway (kernels/denormals.hpp).
#include <cstdint>

#include "kernels/gemm.hpp"
#include "recur/aligned.hpp"

namespace recur::kernels {

// Whether gemm uses the tile unit: the processor has AMX-BF16, the kernel grants the tile state, and
// the environment does not say RECUR_AMX=0 (for results bit-identical to OpenBLAS's). Decided once.
bool amx_enabled();

// Loads the tile configuration recur uses (palette 1, eight tiles of 16 rows x 64 bytes) on the calling
// thread; _tile_release() ends it. Only where amx_enabled() (bench/amx_probe uses it too).
void amx_configure_tiles();

// C[m, n] = op(A) op(B) + beta C, beta 0 or 1, op as in gemm; shared among recur's threads, each element
// computed by one thread in the same order whatever the thread count. Only where amx_enabled().
void amx_gemm(Transpose transpose_a, Transpose transpose_b, int64_t m, int64_t n, int64_t k, const float* a,
              int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// kernels::weight_gradients on the tile unit: A split and packed once for every product, its column sums
// taken as it is packed (per 32 rows, then over those in order). Only where amx_enabled().
void amx_weight_gradients(int64_t m, int64_t k, const float* a, int64_t lda,
                          std::span<const WeightGradient> products, float* column_sums);

// The step products on weights packed once per pass (kernels/packed_gemm.hpp), on the tile unit.
// Weight tiles: for each of `blocks` column blocks of block_cols columns, 32-column groups (as the packed
// kernel's panels) of [k/32][part][half] tiles over `depth`; op(W)[k][n] = w[(g * block_cols + n) * ldw
// + k] (transposed_layout, W_h [G*H, H] forward) or w[k * ldw + n] (one block, W_h backward).
struct AmxWeights {
  AlignedVector<uint16_t> tiles;
  int64_t blocks = 0, block_cols = 0, depth = 0, groups = 0, k_steps = 0;
};
void amx_pack_weights(const float* w, int64_t ldw, bool transposed_layout, int64_t blocks, int64_t block_cols,
                      int64_t depth, AmxWeights& out);
// C[m, columns of groups [group_begin, group_end) of blocks [block_begin, block_end)] = A[m, k_end - k_begin]
// W[k_begin:k_end, those columns] + beta C, on the calling thread; block g's columns start in C at
// (g - block_begin) * block_cols.
void amx_multiply_weights(const AmxWeights& w, int64_t m, const float* a, int64_t lda, int64_t block_begin,
                          int64_t block_end, int64_t group_begin, int64_t group_end, int64_t k_begin,
                          int64_t k_end, float beta, float* c, int64_t ldc);

// amx_gemm(no, yes, m, w.block_cols, w.depth, a, lda, W, ...) on W's tiles made beforehand by
// amx_pack_weights(W, ldw, true, 1, n, k, w), bit for bit: products with W fixed (an inference's x W_x^T)
// skip splitting and packing it at every call.
void amx_gemm_prepacked(int64_t m, const float* a, int64_t lda, const AmxWeights& w, float beta, float* c,
                        int64_t ldc);

}  // namespace recur::kernels
