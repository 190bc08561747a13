#include "kernels/gemm.hpp"

#include <cblas.h>

#include <algorithm>

#include "kernels/amx_gemm.hpp"
#include "kernels/denormals.hpp"
#include "kernels/post_gemm.hpp"
#include "kernels/thread_pool.hpp"

namespace recur::kernels {
namespace {

// Below ~2M multiply-adds (some 10 us on one core) a second thread costs about what it saves.
constexpr int64_t kParallelGemmMultiplyAdds = int64_t(1) << 21;
// From ~4M multiply-adds, with every side at least a 32 x 32 block, the tile unit's products outweigh
// splitting and packing both operands (kernels/amx_gemm.hpp).
constexpr int64_t kAmxMultiplyAdds = int64_t(1) << 22, kAmxMinSide = 32;

}  // namespace

bool gemm_uses_tiles(int64_t m, int64_t n, int64_t k, float alpha, float beta) {
  return alpha == 1.0f && (beta == 0.0f || beta == 1.0f) && m >= kAmxMinSide && n >= kAmxMinSide &&
         k >= kAmxMinSide && m * n * k >= kAmxMultiplyAdds && amx_enabled();
}

void gemm(Transpose transpose_a, Transpose transpose_b, int64_t m, int64_t n, int64_t k, float alpha,
          const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  const FlushDenormals flush;
  if (k == 0) {  // BLAS would still scale C by beta; do it here so that k = 0 is well defined
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
    return;
  }
  if (gemm_uses_tiles(m, n, k, alpha, beta))
    return amx_gemm(transpose_a, transpose_b, m, n, k, a, lda, b, ldb, beta, c, ldc);
  const auto blas = [&](int64_t row, int64_t rows, int64_t column, int64_t columns) {
    // Row r of op(A) and column j of op(B), wherever the transposes put them.
    const float* a_rows = a + (transpose_a == Transpose::yes ? row : row * lda);
    const float* b_columns = b + (transpose_b == Transpose::yes ? column * ldb : column);
    cblas_sgemm(CblasRowMajor, transpose_a == Transpose::yes ? CblasTrans : CblasNoTrans,
                transpose_b == Transpose::yes ? CblasTrans : CblasNoTrans, static_cast<blasint>(rows),
                static_cast<blasint>(columns), static_cast<blasint>(k), alpha, a_rows,
                static_cast<blasint>(lda), b_columns, static_cast<blasint>(ldb), beta, c + row * ldc + column,
                static_cast<blasint>(ldc));
  };
  ThreadPool& pool = ThreadPool::instance();
  // BLAS runs on one thread (recur::set_num_threads); a large product is cut into one share per thread
  // of recur's pool, along the longer side of C, in whole 16-float lines. BLAS's own threads would
  // wake and sleep around every call, and spin beside recur's threads between calls (15% of a 2-thread
  // char-rnn training step went to sched_yield). Every element is still one BLAS dot product over all
  // of k, so the thread count does not change the sums' order along k.
  if (pool.size() == 1 || m * n * k < kParallelGemmMultiplyAdds) return blas(0, m, 0, n);
  const bool split_rows = m >= n;
  pool.run([&](int index, int count) {
    const auto [begin, end] = line_share(split_rows ? m : n, index, count);
    if (end <= begin) return;
    if (split_rows)
      blas(begin, end - begin, 0, n);
    else
      blas(0, m, begin, end - begin);
  });
}

void weight_gradients(int64_t m, int64_t k, const float* a, int64_t lda,
                      std::span<const WeightGradient> products, float* column_sums) {
  if (m == 0) return;
  // On tiles as one product of all the B_p's columns (A is packed once), when each has a block's width.
  int64_t columns = 0, narrowest = k > 0 ? m : 0;
  for (const WeightGradient& p : products) {
    columns += p.n;
    narrowest = std::min(narrowest, p.n);
  }
  if (!products.empty() && narrowest >= kAmxMinSide && gemm_uses_tiles(m, columns, k, 1.0f, 1.0f)) {
    const FlushDenormals flush;
    return amx_weight_gradients(m, k, a, lda, products, column_sums);
  }
  for (const WeightGradient& p : products) gemm_tn(m, p.n, k, a, lda, p.b, p.ldb, 1.0f, p.c, p.ldc);
  if (column_sums == nullptr) return;
  // Each column in row order, the columns shared among recur's threads in whole 64-byte lines.
  ThreadPool::instance().run([&](int index, int count) {
    const auto [begin, end] = line_share(m, index, count);
    for (int64_t row = 0; row < k; ++row)
      for (int64_t j = begin; j < end; ++j) column_sums[j] += a[row * lda + j];
  });
}

void recurrent_gemm_nt(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* w,
                       int64_t ldw, float beta, float* c, int64_t ldc) {
  if (m > kSmallGemmMaxRows) return gemm_nt(m, n, k, a, lda, w, ldw, beta, c, ldc);
  if (m == 0 || n == 0) return;
  const FlushDenormals flush;
  SmallGemmRows rows = small_gemm_rows(m, k, a, lda, w, ldw, beta, c, ldc);
  const auto& small_gemm = post_gemm().small_gemm_nt;
  // Below ~64k multiply-adds a second thread costs more than it saves.
  if (n * k * m < kParallelSmallGemmMultiplyAdds) {
    rows.n_end = n;
    return small_gemm(rows);
  }
  ThreadPool::instance().run([&](int index, int count) {
    SmallGemmRows share = rows;
    const auto [begin, end] = line_share(n, index, count);
    share.n_begin = begin;
    share.n_end = end;
    small_gemm(share);
  });
}

}  // namespace recur::kernels
