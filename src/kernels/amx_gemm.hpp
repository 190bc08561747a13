#pragma once
// Float32 GEMMs on the AMX tile unit (Intel Sapphire Rapids and later), as accurate as float32's own.
//
// AMX multiplies bfloat16 pairs into float32 sums, some 15x the rate of float32 FMAs (bench/amx_probe).
// A float32 x splits exactly into three bfloat16 parts, x = x0 + x1 + x2, each holding the next 8 bits
// of its mantissa; x w is then the sum of the nine products xi wj, and the six with i + j <= 2 leave out
// only terms below 2^-24 |x w|, float32's own rounding ("bf16x3", as CUTLASS's 3xTF32). Six tile
// products per pair of blocks, the smallest first, give float32's accuracy (tests/test_amx_gemm.cpp
// measures it against a double-precision sum, beside OpenBLAS's) at 1.6-2.4x OpenBLAS's rate here
// (docs/performance.md, fifth round).
//
// Infinities and NaNs stay whole in the first part (the others are zero), so they propagate as in a
// float32 product, except that inf times a weight whose bfloat16 parts include a zero gives NaN, not inf.
// Subnormal parts are flushed, as recur flushes subnormals anyway (kernels/denormals.hpp).
#include <cstdint>

#include "kernels/gemm.hpp"

namespace recur::kernels {

// Whether gemm uses the tile unit: the processor has AMX-BF16, the kernel grants the tile state, and
// the environment does not say RECUR_AMX=0 (for results bit-identical to OpenBLAS's). Decided once.
bool amx_enabled();

// C[m, n] = op(A) op(B) + beta C, beta 0 or 1, op as in gemm; shared among recur's threads, each element
// computed by one thread in the same order whatever the thread count. Only where amx_enabled().
void amx_gemm(Transpose transpose_a, Transpose transpose_b, int64_t m, int64_t n, int64_t k, const float* a,
              int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

}  // namespace recur::kernels
