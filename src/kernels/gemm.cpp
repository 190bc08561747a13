#include "kernels/gemm.hpp"

#include <cblas.h>

#include <algorithm>

#include "kernels/post_gemm.hpp"
#include "kernels/thread_pool.hpp"

namespace recur::kernels {

void gemm(Transpose transpose_a, Transpose transpose_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {  // BLAS would still scale C by beta; do it here so that k = 0 is well defined
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
    return;
  }
  cblas_sgemm(CblasRowMajor, transpose_a == Transpose::yes ? CblasTrans : CblasNoTrans,
              transpose_b == Transpose::yes ? CblasTrans : CblasNoTrans, static_cast<blasint>(m),
              static_cast<blasint>(n), static_cast<blasint>(k), alpha, a, static_cast<blasint>(lda), b,
              static_cast<blasint>(ldb), beta, c, static_cast<blasint>(ldc));
}

void recurrent_gemm_nt(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* w, int64_t ldw,
                       float beta, float* c, int64_t ldc) {
  if (m > kSmallGemmMaxRows) return gemm_nt(m, n, k, a, lda, w, ldw, beta, c, ldc);
  if (m == 0 || n == 0) return;
  SmallGemmRows rows;
  rows.rows = m;
  rows.k = k;
  rows.a = a;
  rows.lda = lda;
  rows.w = w;
  rows.ldw = ldw;
  rows.beta = beta;
  rows.c = c;
  rows.ldc = ldc;
  const auto& small_gemm = post_gemm().small_gemm_nt;
  // Below ~64k multiply-adds a second thread costs more than it saves.
  if (n * k * m < (1 << 16)) {
    rows.n_begin = 0;
    rows.n_end = n;
    return small_gemm(rows);
  }
  ThreadPool::instance().run([&](int index, int count) {
    // Shares of whole 64-byte lines of C, so that no two threads write the same cache line.
    const int64_t lines = (n + 15) / 16;
    SmallGemmRows share = rows;
    share.n_begin = std::min(n, lines * index / count * 16);
    share.n_end = std::min(n, lines * (index + 1) / count * 16);
    small_gemm(share);
  });
}

}  // namespace recur::kernels
