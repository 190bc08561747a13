// The AMX GEMM (kernels/amx_gemm.hpp): float32 products as three bfloat16 parts on the tile unit. It must
// be as accurate as float32's own GEMM (OpenBLAS's sgemm, measured on the same operands against a
// double-precision sum), on every transpose, edge and stride; the same at any thread count; and carry
// infinities and NaNs. Skipped where the processor or the kernel offers no AMX.
#include <cblas.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <tuple>
#include <vector>

#include "kernels/amx_gemm.hpp"
#include "kernels/gemm.hpp"
#include "kernels/packed_gemm.hpp"
#include "recur/runtime.hpp"

namespace {

using recur::kernels::Transpose;

struct Problem {
  int64_t m, n, k;
  Transpose ta, tb;
  int64_t lda, ldb, ldc;
  std::vector<float> a, b, c;

  Problem(int64_t m_, int64_t n_, int64_t k_, Transpose ta_, Transpose tb_, uint32_t seed)
      : m(m_), n(n_), k(k_), ta(ta_), tb(tb_) {
    // Strides wider than the matrices, so that reading past a row would show.
    lda = (ta == Transpose::yes ? m : k) + 3;
    ldb = (tb == Transpose::yes ? k : n) + 5;
    ldc = n + 7;
    std::mt19937 generator(seed);
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    a.resize(size_t((ta == Transpose::yes ? k : m) * lda));
    b.resize(size_t((tb == Transpose::yes ? n : k) * ldb));
    c.resize(size_t(m * ldc));
    for (float& v : a) v = uniform(generator);
    for (float& v : b) v = 0.1f * uniform(generator);
    for (float& v : c) v = uniform(generator);
  }
  float op_a(int64_t r, int64_t q) const {
    return ta == Transpose::yes ? a[size_t(q * lda + r)] : a[size_t(r * lda + q)];
  }
  float op_b(int64_t q, int64_t j) const {
    return tb == Transpose::yes ? b[size_t(j * ldb + q)] : b[size_t(q * ldb + j)];
  }
  std::vector<float> amx(float beta) const {
    std::vector<float> out = c;
    recur::kernels::amx_gemm(ta, tb, m, n, k, a.data(), lda, b.data(), ldb, beta, out.data(), ldc);
    return out;
  }
  std::vector<float> blas(float beta) const {
    std::vector<float> out = c;
    cblas_sgemm(CblasRowMajor, ta == Transpose::yes ? CblasTrans : CblasNoTrans,
                tb == Transpose::yes ? CblasTrans : CblasNoTrans, int(m), int(n), int(k), 1.0f, a.data(),
                int(lda), b.data(), int(ldb), beta, out.data(), int(ldc));
    return out;
  }
  // Largest |result - exact| over C, and whether the columns past n were left alone.
  double worst_error(const std::vector<float>& result, float beta, bool* padding_kept) const {
    double worst = 0;
    *padding_kept = true;
    for (int64_t r = 0; r < m; ++r) {
      for (int64_t j = 0; j < n; ++j) {
        double exact = beta * double(c[size_t(r * ldc + j)]);
        for (int64_t q = 0; q < k; ++q) exact += double(op_a(r, q)) * double(op_b(q, j));
        worst = std::max(worst, std::fabs(exact - result[size_t(r * ldc + j)]));
      }
      for (int64_t j = n; j < ldc; ++j)
        *padding_kept &= result[size_t(r * ldc + j)] == c[size_t(r * ldc + j)];
    }
    return worst;
  }
};

TEST(AmxGemm, AsAccurateAsFloat32sOwnGemmOnEveryTransposeAndEdge) {
  if (!recur::kernels::amx_enabled()) GTEST_SKIP() << "no AMX here";
  recur::set_num_threads(2);
  uint32_t seed = 1;
  for (auto [m, n, k] : {std::tuple<int64_t, int64_t, int64_t>{32, 32, 32},
                         {1, 5, 3},
                         {33, 47, 65},
                         {301, 97, 130},
                         {64, 300, 1100},
                         {70, 64, 512}})
    for (Transpose ta : {Transpose::no, Transpose::yes})
      for (Transpose tb : {Transpose::no, Transpose::yes})
        for (float beta : {0.0f, 1.0f}) {
          const Problem p(m, n, k, ta, tb, seed++);
          bool amx_padding = true, blas_padding = true;
          const double amx = p.worst_error(p.amx(beta), beta, &amx_padding);
          const double blas = p.worst_error(p.blas(beta), beta, &blas_padding);
          const std::string what = "m=" + std::to_string(m) + " n=" + std::to_string(n) +
                                   " k=" + std::to_string(k) + " ta=" + std::to_string(int(ta)) +
                                   " tb=" + std::to_string(int(tb)) + " beta=" + std::to_string(beta);
          // float32's own rounding, with room: the sums here are of up to 1100 products of size 0.1.
          EXPECT_LE(amx, std::max(2.0 * blas, 1e-6)) << what << " (OpenBLAS " << blas << ")";
          EXPECT_TRUE(amx_padding) << what;
        }
  recur::set_num_threads(1);
}

TEST(AmxGemm, SameBitsAtOneAndTwoThreadsAndThroughKernelsGemm) {
  if (!recur::kernels::amx_enabled()) GTEST_SKIP() << "no AMX here";
  const Problem p(200, 160, 640, Transpose::no, Transpose::yes, 7);
  recur::set_num_threads(1);
  const std::vector<float> one = p.amx(1.0f);
  recur::set_num_threads(2);
  const std::vector<float> two = p.amx(1.0f);
  EXPECT_EQ(one, two);
  // kernels::gemm sends a product this large to the tile unit.
  std::vector<float> routed = p.c;
  recur::kernels::gemm_nt(p.m, p.n, p.k, p.a.data(), p.lda, p.b.data(), p.ldb, 1.0f, routed.data(), p.ldc);
  EXPECT_EQ(routed, two);
  recur::set_num_threads(1);
}

TEST(AmxGemm, PrepackedWeightsGiveRecurrentGemmsBits) {
  // Not skipped without AMX: PrepackedWeights must then pass every product to recurrent_gemm_nt.
  uint32_t seed = 11;
  for (auto [m, n, k] : {std::tuple<int64_t, int64_t, int64_t>{3, 200, 96},
                         {40, 200, 96},
                         {100, 1536, 512},
                         {400, 520, 70},
                         {3000, 64, 48}}) {
    const Problem p(m, n, k, Transpose::no, Transpose::yes, seed++);
    const recur::kernels::PrepackedWeights prepacked(p.b.data(), p.ldb, n, k);
    for (float beta : {0.0f, 1.0f})
      for (int threads : {1, 2}) {
        recur::set_num_threads(threads);
        std::vector<float> direct = p.c, through = p.c;
        recur::kernels::recurrent_gemm_nt(m, n, k, p.a.data(), p.lda, p.b.data(), p.ldb, beta, direct.data(),
                                          p.ldc);
        prepacked.multiply(m, p.a.data(), p.lda, beta, through.data(), p.ldc);
        EXPECT_EQ(direct, through) << "m=" << m << " n=" << n << " k=" << k << " beta=" << beta
                                   << " threads=" << threads;
      }
  }
  recur::set_num_threads(1);
}

TEST(AmxGemm, WeightGradientsShareOnePackingAndSumTheColumns) {
  if (!recur::kernels::amx_enabled()) GTEST_SKIP() << "no AMX here";
  // C_p += A^T B_p with one A (dG) for both, A [k, m], B_1 [k, 40], B_2 [k, 70], and A's column sums.
  // Widths that are not whole 32-column blocks, so that the second part's first block starts after the
  // first's padding; large enough (150 x 110 x 300) for kernels::weight_gradients to use the tiles.
  const Problem p1(150, 40, 300, Transpose::yes, Transpose::no, 21);
  Problem p2(150, 70, 300, Transpose::yes, Transpose::no, 22);
  p2.a = p1.a;
  p2.lda = p1.lda;
  std::vector<float> results[2];
  for (int threads : {1, 2}) {
    recur::set_num_threads(threads);
    std::vector<float> c1 = p1.c, c2 = p2.c, sums(size_t(p1.m), 0.5f);
    const recur::kernels::WeightGradient products[] = {{p1.b.data(), p1.ldb, p1.n, c1.data(), p1.ldc},
                                                       {p2.b.data(), p2.ldb, p2.n, c2.data(), p2.ldc}};
    recur::kernels::weight_gradients(p1.m, p1.k, p1.a.data(), p1.lda, products, sums.data());
    for (const auto& [p, c] : {std::pair<const Problem*, std::vector<float>*>{&p1, &c1}, {&p2, &c2}}) {
      bool amx_padding = true, blas_padding = true;
      const double amx = p->worst_error(*c, 1.0f, &amx_padding);
      const double blas = p->worst_error(p->blas(1.0f), 1.0f, &blas_padding);
      EXPECT_LE(amx, std::max(2.0 * blas, 1e-6)) << "n=" << p->n << " (OpenBLAS " << blas << ")";
      EXPECT_TRUE(amx_padding) << "n=" << p->n;
      // The same sums as the product alone (turned too, since n < m).
      EXPECT_EQ(*c, p->amx(1.0f)) << "n=" << p->n;
    }
    for (int64_t j = 0; j < p1.m; ++j) {
      double exact = 0.5;
      for (int64_t q = 0; q < p1.k; ++q) exact += double(p1.op_a(j, q));
      EXPECT_NEAR(sums[size_t(j)], exact, 1e-4) << "column " << j;
    }
    results[threads - 1] = c1;
    results[threads - 1].insert(results[threads - 1].end(), c2.begin(), c2.end());
    results[threads - 1].insert(results[threads - 1].end(), sums.begin(), sums.end());
  }
  EXPECT_EQ(results[0], results[1]);
  recur::set_num_threads(1);
}

TEST(AmxGemm, InfinitiesAndNansReachTheirRowsOnly) {
  if (!recur::kernels::amx_enabled()) GTEST_SKIP() << "no AMX here";
  Problem p(40, 36, 70, Transpose::no, Transpose::no, 11);
  p.a[size_t(3 * p.lda + 5)] = std::numeric_limits<float>::infinity();
  p.a[size_t(7 * p.lda + 9)] = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> out = p.amx(0.0f);
  for (int64_t r = 0; r < p.m; ++r)
    for (int64_t j = 0; j < p.n; ++j) {
      const float v = out[size_t(r * p.ldc + j)];
      if (r == 7) {
        EXPECT_TRUE(std::isnan(v)) << r << "," << j;
      } else if (r == 3) {
        EXPECT_FALSE(std::isfinite(v)) << r << "," << j;
      } else {
        EXPECT_TRUE(std::isfinite(v)) << r << "," << j;
      }
    }
}

}  // namespace
