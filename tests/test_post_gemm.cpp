// The vectorised activations of the post-GEMM kernels, for every instruction set this processor and
// build support, against the C library in double precision; NaN and infinities behave.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <utility>
#include <vector>

#include "kernels/gemm.hpp"
#include "kernels/post_gemm.hpp"

namespace {

using recur::kernels::PostGemmKernels;

std::vector<const PostGemmKernels*> available() {
  std::vector<const PostGemmKernels*> all;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && recur::kernels::post_gemm_avx512())
    all.push_back(recur::kernels::post_gemm_avx512());
  if (__builtin_cpu_supports("avx2") && recur::kernels::post_gemm_avx2())
    all.push_back(recur::kernels::post_gemm_avx2());
  all.push_back(recur::kernels::post_gemm_scalar());
  return all;
}

// x from -30 to 30 in fine steps, an odd count so that the vector kernels also run their scalar tail.
std::vector<float> sample_points() {
  std::vector<float> x;
  for (int k = -300001; k <= 300001; ++k) x.push_back(float(k) * 1e-4f);
  for (float v : {-100.0f, 100.0f, -88.9f, 88.9f, 1e-30f, -1e-30f}) x.push_back(v);
  return x;
}

std::vector<float> apply_sigmoid(const PostGemmKernels& kernels, std::vector<float> x) {
  const std::vector<float> zeros(x.size(), 0.0f);
  recur::kernels::SigmoidSumRows rows;
  rows.rows = 1;
  rows.width = int64_t(x.size());
  rows.bias = zeros.data();
  rows.b = zeros.data();
  rows.a = x.data();
  kernels.sigmoid_sum(rows);
  return x;
}

std::vector<float> apply_tanh(const PostGemmKernels& kernels, const std::vector<float>& x) {
  const std::vector<float> zeros(x.size(), 0.0f);
  std::vector<float> h(x.size());
  recur::kernels::RnnForwardRows rows;
  rows.rows = 1;
  rows.hidden = int64_t(x.size());
  rows.b_h = zeros.data();
  rows.gates = x.data();
  rows.h = h.data();
  kernels.rnn_forward(rows);
  return h;
}

TEST(KernelsActivations, SigmoidAndTanhAreAccurateEverywhere) {
  const std::vector<float> x = sample_points();
  for (const PostGemmKernels* kernels : available()) {
    const std::vector<float> s = apply_sigmoid(*kernels, x), t = apply_tanh(*kernels, x);
    double worst_sigmoid = 0, worst_tanh = 0;
    for (size_t k = 0; k < x.size(); ++k) {
      worst_sigmoid = std::max(worst_sigmoid, std::fabs(s[k] - 1.0 / (1.0 + std::exp(-double(x[k])))));
      worst_tanh = std::max(worst_tanh, std::fabs(t[k] - std::tanh(double(x[k]))));
    }
    std::printf("[kernels %s] max abs error: sigmoid %.3g, tanh %.3g\n", kernels->instruction_set,
                worst_sigmoid, worst_tanh);
    EXPECT_LT(worst_sigmoid, 2e-7) << kernels->instruction_set;
    EXPECT_LT(worst_tanh, 3e-7) << kernels->instruction_set;
  }
}

TEST(KernelsActivations, NanPropagatesAndInfinitiesSaturate) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  // 17 values: a full AVX-512 vector and a tail element, NaN in both.
  std::vector<float> x(17, 0.5f);
  x[0] = nan, x[1] = inf, x[2] = -inf, x[16] = nan;
  for (const PostGemmKernels* kernels : available()) {
    const std::vector<float> s = apply_sigmoid(*kernels, x), t = apply_tanh(*kernels, x);
    EXPECT_TRUE(std::isnan(s[0]) && std::isnan(s[16])) << kernels->instruction_set;
    EXPECT_TRUE(std::isnan(t[0]) && std::isnan(t[16])) << kernels->instruction_set;
    EXPECT_EQ(s[1], 1.0f);
    EXPECT_LT(s[2], 1e-37f);
    EXPECT_EQ(t[1], 1.0f);
    EXPECT_EQ(t[2], -1.0f);
  }
}

TEST(KernelsActivations, EveryInstructionSetAgreesWithThePortableOne) {
  const std::vector<float> x = sample_points();
  const PostGemmKernels& portable = *recur::kernels::post_gemm_scalar();
  const std::vector<float> s0 = apply_sigmoid(portable, x), t0 = apply_tanh(portable, x);
  for (const PostGemmKernels* kernels : available()) {
    const std::vector<float> s = apply_sigmoid(*kernels, x), t = apply_tanh(*kernels, x);
    for (size_t k = 0; k < x.size(); ++k) {
      ASSERT_NEAR(s[k], s0[k], 1.2e-7) << kernels->instruction_set << " x=" << x[k];
      ASSERT_NEAR(t[k], t0[k], 1.2e-7) << kernels->instruction_set << " x=" << x[k];
    }
  }
}

}  // namespace

namespace {

// The small-batch recurrent product (recur's own kernel, split across recur's threads) against a plain
// double-precision product, on shapes with uneven column shares and a k that is not a vector multiple.
TEST(KernelsRecurrentGemm, SmallBatchesMatchThePlainProduct) {
  std::mt19937 generator(5);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (int64_t m : {1, 2, 3, 4, 5}) {  // 5: the BLAS path
    for (auto [n, k] : {std::pair<int64_t, int64_t>{2048 + 5, 512 + 3}, {12, 7}, {1024, 256}}) {
      for (float beta : {0.0f, 1.0f}) {
        std::vector<float> a(size_t(m * k)), w(size_t(n * k)), c(size_t(m * n));
        for (float& v : a) v = uniform(generator);
        for (float& v : w) v = uniform(generator);
        for (float& v : c) v = uniform(generator);
        const std::vector<float> c0 = c;
        recur::kernels::recurrent_gemm_nt(m, n, k, a.data(), k, w.data(), k, beta, c.data(), n);
        double worst = 0;
        for (int64_t r = 0; r < m; ++r)
          for (int64_t j = 0; j < n; ++j) {
            double expected = beta * c0[size_t(r * n + j)];
            for (int64_t q = 0; q < k; ++q) expected += double(a[size_t(r * k + q)]) * w[size_t(j * k + q)];
            worst = std::max(worst, std::fabs(expected - c[size_t(r * n + j)]));
          }
        EXPECT_LT(worst, 1e-4) << "m=" << m << " n=" << n << " k=" << k << " beta=" << beta;
      }
    }
  }
}

}  // namespace
