#pragma once
// The one place BLAS is called. BLAS runs on one thread; gemm shares large products among recur's
// threads (kernels/thread_pool.hpp). Row-major: C[m, n] = alpha * op(A) op(B) + beta * C, where op(A) is
// [m, k] and op(B) is [k, n]; lda, ldb, ldc are row strides in elements.
#include <cstdint>
#include <span>

namespace recur::kernels {

enum class Transpose { no, yes };

void gemm(Transpose transpose_a, Transpose transpose_b, int64_t m, int64_t n, int64_t k, float alpha,
          const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// Whether gemm runs a product of this shape on the AMX tile unit (kernels/amx_gemm.hpp).
bool gemm_uses_tiles(int64_t m, int64_t n, int64_t k, float alpha, float beta);

// C[m, n] (+)= A[m, k] B[n, k]^T: the shape of every "rows times weights" product (x W^T, h W_h^T).
inline void gemm_nt(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
                    float beta, float* c, int64_t ldc) {
  gemm(Transpose::no, Transpose::yes, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
}
// C[m, n] (+)= A[m, k] B[k, n]: gradients flowing back through weights (dg W).
inline void gemm_nn(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
                    float beta, float* c, int64_t ldc) {
  gemm(Transpose::no, Transpose::no, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
}
// C[m, n] (+)= A[k, m]^T B[k, n]: weight gradients summed over rows (dg^T x).
inline void gemm_tn(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
                    float beta, float* c, int64_t ldc) {
  gemm(Transpose::yes, Transpose::no, m, n, k, 1.0f, a, lda, b, ldb, beta, c, ldc);
}
// A layer's weight gradients from its gate gradients A [k, m] (the k rows of all steps): for each product
// p, C_p[m, n_p] += A^T B_p (B_p [k, n_p]: the input x, h(t-1)); and, where column_sums is not null,
// column_sums[j] += the sum over k of A[k][j] (the bias gradient). On the tile unit A is split and packed
// once for all of them, and summed as it is packed; elsewhere one gemm_tn each and a pass for the sums.
// Either way the sums run in an order that does not depend on the thread count.
struct WeightGradient {
  const float* b;
  int64_t ldb, n;
  float* c;
  int64_t ldc;
};
void weight_gradients(int64_t m, int64_t k, const float* a, int64_t lda,
                      std::span<const WeightGradient> products, float* column_sums);

// The recurrent product of a time step, C[m, n] = A[m, k] W[n, k]^T + beta C (beta 0 or 1). Batches of
// at most 4 rows run on recur's own threads (kernels/thread_pool.hpp), each streaming its own rows of W:
// there the product is bound by reading W, and BLAS's threading costs more than the product itself.
// Larger batches go to gemm (BLAS); the cells' steps use the packed kernel instead
// (kernels/packed_gemm.hpp), for which the driver packs W_h once per sequence.
void recurrent_gemm_nt(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* w,
                       int64_t ldw, float beta, float* c, int64_t ldc);

}  // namespace recur::kernels
