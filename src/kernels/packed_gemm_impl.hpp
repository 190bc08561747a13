#pragma once
// The packed GEMM's micro-kernels (kernels/packed_gemm.hpp), written once against simd.hpp's V and
// included by post_gemm_impl.hpp, so compiled once per instruction set.
//
// C[MR rows, NR = 2 V columns] is held in 2*MR vector registers while k runs over the panel: per k, two
// vector loads of the panel and MR broadcasts of A feed 2*MR fused multiply-adds. MR = 12 with AVX-512
// (24 accumulators of 32 registers), 6 with AVX2 (12 of 16). The panel, [depth][NR], is read in order.
// k is cut into blocks of kDepthBlock so that a block of A rows (12 x 256 floats = 12 KB) and of the
// panel (32 KB) stay in the 48 KB L1 cache while the rows of A are swept.
#include <utility>

#include "kernels/post_gemm.hpp"
#include "kernels/simd.hpp"

namespace recur::kernels::RECUR_POST_GEMM_NAMESPACE {

template <class V>
struct PackedShape {
  static constexpr int nr = 2 * V::width;
  static constexpr int mr = V::width >= 16 ? 12 : 6;
};
constexpr int64_t kDepthBlock = 256;
constexpr int64_t kPanelPrefetch = 512;  // floats

// C[ROWS, columns] (+)= A[ROWS, depth] panel[depth, NR]; accumulate: add to C, else overwrite it.
// KU > 1: k unrolled KU times into separate sums, added at the end in order. A product of 4 rows or fewer
// (a small batch's step on weights packed once) would otherwise leave its 2*ROWS chains of multiply-adds
// waiting on each other's latency (packed_gemm).
template <class V, int ROWS, int KU = 1>
inline void packed_micro_kernel(int64_t depth, const float* a, int64_t lda, const float* panel, float* c,
                                int64_t ldc, int64_t columns, bool accumulate) {
  constexpr int nr = PackedShape<V>::nr;
  V acc0[KU][ROWS], acc1[KU][ROWS];
  for (int u = 0; u < KU; ++u)
    for (int r = 0; r < ROWS; ++r) acc0[u][r] = acc1[u][r] = V::set(0.0f);
  const auto multiply_add = [&](int u, int64_t k) {
    V b0 = V::load(panel + k * nr), b1 = V::load(panel + k * nr + V::width);
    // Held in registers: GCC 12 would fold the loads into every row's multiply-add, loading the panel
    // ROWS times (at 2 rows, 7 loads per k for 4 multiply-adds instead of 4).
    asm("" : "+x"(b0.v), "+x"(b1.v));
    for (int r = 0; r < ROWS; ++r) {
      const V x = V::set(a[r * lda + k]);
      acc0[u][r] = fma(x, b0, acc0[u][r]);
      acc1[u][r] = fma(x, b1, acc1[u][r]);
    }
  };
  int64_t k = 0;
  for (; k + KU <= depth; k += KU) {
    // 16 k ahead (2 KB with AVX-512): the first row block of a panel reads it from L3 or memory, and the
    // hardware prefetcher alone left a tenth of the speed there (a 64 x 2048 x 512 step product).
    // u as a constant in each unrolled step, so that the sums stay in registers.
    [&]<int... U>(std::integer_sequence<int, U...>) {
      ((__builtin_prefetch(panel + (k + U) * nr + kPanelPrefetch), multiply_add(U, k + U)), ...);
    }
    (std::make_integer_sequence<int, KU>{});
  }
  for (; k < depth; ++k) multiply_add(0, k);
  for (int u = 1; u < KU; ++u)
    for (int r = 0; r < ROWS; ++r) {
      acc0[0][r] = acc0[0][r] + acc0[u][r];
      acc1[0][r] = acc1[0][r] + acc1[u][r];
    }
  V* const sum0 = acc0[0];
  V* const sum1 = acc1[0];
  if (columns == nr) {
    for (int r = 0; r < ROWS; ++r) {
      float* row = c + r * ldc;
      if (accumulate) {
        (V::load(row) + sum0[r]).store(row);
        (V::load(row + V::width) + sum1[r]).store(row + V::width);
      } else {
        sum0[r].store(row);
        sum1[r].store(row + V::width);
      }
    }
    return;
  }
  // The last panel of a block that is not a multiple of NR wide: only `columns` of C exist.
  float tile[nr];
  for (int r = 0; r < ROWS; ++r) {
    sum0[r].store(tile);
    sum1[r].store(tile + V::width);
    float* row = c + r * ldc;
    for (int64_t j = 0; j < columns; ++j) row[j] = accumulate ? row[j] + tile[j] : tile[j];
  }
}

template <class V, int ROWS = PackedShape<V>::mr>
inline void packed_rows(int64_t rows, int64_t depth, const float* a, int64_t lda, const float* panel,
                        float* c, int64_t ldc, int64_t columns, bool accumulate) {
  if constexpr (ROWS > 0) {
    if (rows == ROWS) return packed_micro_kernel<V, ROWS>(depth, a, lda, panel, c, ldc, columns, accumulate);
    return packed_rows<V, ROWS - 1>(rows, depth, a, lda, panel, c, ldc, columns, accumulate);
  }
}

// A product of at most 4 rows: k unrolled (KU sums) for its 1-4 rows, else as packed_rows. Only the whole
// product's row count decides, so that a row's sums never depend on how the threads split the rows.
// 768 KB of panels (a stream's GRU step at H = 256), one thread: 1 row 5.3 us against 6.3 with one sum;
// 2 rows 6.2 against 8.2 (with the panel held in registers); 4 rows 9.1 against 9.8.
template <class V>
inline void packed_small_rows(int64_t rows, int64_t depth, const float* a, int64_t lda, const float* panel,
                              float* c, int64_t ldc, int64_t columns, bool accumulate) {
  switch (rows) {
    case 1:
      return packed_micro_kernel<V, 1, 4>(depth, a, lda, panel, c, ldc, columns, accumulate);
    case 2:
      return packed_micro_kernel<V, 2, 2>(depth, a, lda, panel, c, ldc, columns, accumulate);
    case 3:
      return packed_micro_kernel<V, 3, 2>(depth, a, lda, panel, c, ldc, columns, accumulate);
    default:
      return packed_micro_kernel<V, 4, 2>(depth, a, lda, panel, c, ldc, columns, accumulate);
  }
}

template <class V>
void packed_gemm(const PackedGemmPanels& g) {
  constexpr int nr = PackedShape<V>::nr, mr = PackedShape<V>::mr;
  for (int64_t k0 = 0; k0 < g.depth; k0 += kDepthBlock) {
    const int64_t depth = k0 + kDepthBlock < g.depth ? kDepthBlock : g.depth - k0;
    const bool accumulate = k0 > 0 || g.beta != 0.0f;
    for (int64_t p = g.panel_begin; p < g.panel_end; ++p) {
      const int64_t block = p / g.panels_per_block, q = p % g.panels_per_block;
      const int64_t column = block * g.block_cols + q * nr;
      const int64_t columns = g.block_cols - q * nr < nr ? g.block_cols - q * nr : nr;
      const float* panel = g.panels + p * g.panel_stride + k0 * nr;
      for (int64_t r = 0; r < g.rows; r += mr) {
        const int64_t rows = g.rows - r < mr ? g.rows - r : mr;
        (g.rows <= 4 ? packed_small_rows<V> : packed_rows<V>)(rows, depth, g.a + r * g.lda + k0, g.lda, panel,
                                                              g.c + r * g.ldc + column, g.ldc, columns,
                                                              accumulate);
      }
    }
  }
}

}  // namespace recur::kernels::RECUR_POST_GEMM_NAMESPACE
