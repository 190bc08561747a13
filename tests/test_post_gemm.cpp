// The vectorised activations of the post-GEMM kernels, for every instruction set this processor and
// build support, against the C library in double precision; NaN and infinities behave. The GEMM kernels
// of the time steps against plain double-precision products.
#include <gtest/gtest.h>
#include <xmmintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <tuple>
#include <utility>
#include <vector>

#include "cells/cell.hpp"
#include "kernels/gemm.hpp"
#include "kernels/packed_gemm.hpp"
#include "kernels/post_gemm.hpp"
#include "recur/rnn.hpp"
#include "recur/runtime.hpp"

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

namespace {

// C = A B against a double-precision product, where op gives B[k][n] from w.
template <class Op>
double packed_error(int64_t m, int64_t n0, int64_t n1, int64_t k0, int64_t k1, const std::vector<float>& a,
                    int64_t lda, float beta, const std::vector<float>& c0, const std::vector<float>& c,
                    int64_t ldc, Op b) {
  double worst = 0;
  for (int64_t r = 0; r < m; ++r)
    for (int64_t j = n0; j < n1; ++j) {
      double expected = beta * c0[size_t(r * ldc + j - n0)];
      for (int64_t q = k0; q < k1; ++q) expected += double(a[size_t(r * lda + q - k0)]) * b(q, j);
      worst = std::max(worst, std::fabs(expected - c[size_t(r * ldc + j - n0)]));
    }
  return worst;
}

// The packed product of the step GEMMs (kernels/packed_gemm.hpp), both packings, on block and depth
// ranges, with row counts around the micro-kernel's 6 / 12 rows, blocks that end mid-panel, a depth
// beyond one depth block (256), and the same sums at 1 and 2 threads.
TEST(KernelsPackedGemm, MatchesThePlainProductOnRangesAndThreads) {
  if (!recur::kernels::PackedWeights::available())
    GTEST_SKIP() << "no packed kernel for this instruction set";
  std::mt19937 generator(11);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  struct Shape {
    int64_t blocks, block_cols, depth;
  };
  // {3, 64, 192}: whole 32-column groups and a depth range from 64, as the tile unit takes them.
  for (const Shape& s :
       {Shape{4, 70, 37}, Shape{3, 33, 300}, Shape{1, 512, 600}, Shape{2, 1, 5}, Shape{3, 64, 192}}) {
    const int64_t n = s.blocks * s.block_cols;
    std::vector<float> w_nt(size_t(n * s.depth)), w_nn(size_t(s.depth * s.block_cols));
    for (float& v : w_nt) v = uniform(generator);
    for (float& v : w_nn) v = uniform(generator);
    recur::kernels::PackedWeights forward, backward;
    forward.pack_transposed(w_nt.data(), s.depth, s.blocks, s.block_cols, s.depth);
    backward.pack(w_nn.data(), s.block_cols, s.depth, s.block_cols);
    for (int64_t m : {1, 5, 12, 13, 31}) {
      for (float beta : {0.0f, 1.0f}) {
        // Forward: the last blocks only, all of the depth.
        const int64_t b0 = s.blocks > 1 ? 1 : 0, n0 = b0 * s.block_cols, width = n - n0;
        std::vector<float> a(size_t(m * s.depth)), c0(size_t(m * width));
        for (float& v : a) v = uniform(generator);
        for (float& v : c0) v = uniform(generator);
        std::vector<float> c_threads[2];
        for (int threads : {1, 2}) {
          recur::set_num_threads(threads);
          std::vector<float> c = c0;
          forward.multiply(m, a.data(), s.depth, b0, s.blocks, 0, s.depth, beta, c.data(), width);
          const double worst =
              packed_error(m, n0, n, 0, s.depth, a, s.depth, beta, c0, c, width,
                           [&](int64_t q, int64_t j) { return double(w_nt[size_t(j * s.depth + q)]); });
          EXPECT_LT(worst, 1e-4) << "forward m=" << m << " blocks=" << s.blocks << " cols=" << s.block_cols
                                 << " depth=" << s.depth << " threads=" << threads;
          c_threads[threads - 1] = c;
        }
        EXPECT_EQ(c_threads[0], c_threads[1]) << "the thread count changed the sums";
        // Backward: a middle range of the depth.
        const int64_t k0 = s.depth / 3, k1 = s.depth - s.depth / 4;
        std::vector<float> g(size_t(m * (k1 - k0))), d0(size_t(m * s.block_cols));
        for (float& v : g) v = uniform(generator);
        for (float& v : d0) v = uniform(generator);
        std::vector<float> d = d0;
        backward.multiply(m, g.data(), k1 - k0, 0, 1, k0, k1, beta, d.data(), s.block_cols);
        const double worst =
            packed_error(m, 0, s.block_cols, k0, k1, g, k1 - k0, beta, d0, d, s.block_cols,
                         [&](int64_t q, int64_t j) { return double(w_nn[size_t(q * s.block_cols + j)]); });
        EXPECT_LT(worst, 1e-4) << "backward m=" << m << " cols=" << s.block_cols << " depth " << k0 << ".."
                               << k1;
      }
    }
  }
  recur::set_num_threads(1);
}

}  // namespace

namespace {

// kernels::gemm shares a large product among recur's threads (BLAS on one thread each): every
// transpose, split along rows (m >= n) or columns, with strides wider than the matrices, against a
// double-precision product, and bit-identical at 1 and 2 threads.
TEST(KernelsGemm, SharedProductsMatchThePlainProductAtEveryThreadCount) {
  using recur::kernels::Transpose;
  std::mt19937 generator(3);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (auto [m, n, k] : {std::tuple<int64_t, int64_t, int64_t>{301, 97, 130}, {45, 250, 257}}) {
    for (Transpose ta : {Transpose::no, Transpose::yes})
      for (Transpose tb : {Transpose::no, Transpose::yes}) {
        const int64_t lda = (ta == Transpose::yes ? m : k) + 3, ldb = (tb == Transpose::yes ? k : n) + 2,
                      ldc = n + 5;
        std::vector<float> a(size_t((ta == Transpose::yes ? k : m) * lda)),
            b(size_t((tb == Transpose::yes ? n : k) * ldb)), c0(size_t(m * ldc));
        for (float& v : a) v = uniform(generator);
        for (float& v : b) v = uniform(generator);
        for (float& v : c0) v = uniform(generator);
        std::vector<float> results[2];
        for (int threads : {1, 2}) {
          recur::set_num_threads(threads);
          std::vector<float> c = c0;
          recur::kernels::gemm(ta, tb, m, n, k, 0.5f, a.data(), lda, b.data(), ldb, 1.0f, c.data(), ldc);
          double worst = 0;
          for (int64_t r = 0; r < m; ++r)
            for (int64_t j = 0; j < n; ++j) {
              double sum = 0;
              for (int64_t q = 0; q < k; ++q)
                sum += double(ta == Transpose::yes ? a[size_t(q * lda + r)] : a[size_t(r * lda + q)]) *
                       double(tb == Transpose::yes ? b[size_t(j * ldb + q)] : b[size_t(q * ldb + j)]);
              worst =
                  std::max(worst, std::fabs(c0[size_t(r * ldc + j)] + 0.5 * sum - c[size_t(r * ldc + j)]));
            }
          EXPECT_LT(worst, 1e-4) << "m=" << m << " n=" << n << " k=" << k << " threads=" << threads;
          results[threads - 1] = c;
        }
        EXPECT_EQ(results[0], results[1]) << "m=" << m << " n=" << n << " k=" << k;
      }
  }
  recur::set_num_threads(1);
}

}  // namespace

namespace {

std::vector<float> flat(const recur::Tensor& t) { return {t.values().begin(), t.values().end()}; }

// A whole training step (2 layers, bidirectional, unsorted lengths) gives bit-identical outputs and
// gradients at 1 and 2 threads, on batches that take each of the step's paths: the small-batch kernel
// (3 rows), the packed product shared by panels (20), and shared by rows (64).
TEST(KernelsThreads, TrainingStepIsBitIdenticalAtOneAndTwoThreads) {
  using recur::CellSpec;
  for (const CellSpec& cell :
       {CellSpec::lstm(), CellSpec::peephole_lstm(), CellSpec::gru(recur::GruReset::before), CellSpec::gru(),
        CellSpec::rnn_tanh()}) {
    for (int64_t batch : {3, 20, 64}) {
      const int64_t T = 4, I = 24, H = 40;
      recur::RnnConfig config{cell, I, H, 2, true};
      const recur::Rnn rnn(config, 9);
      std::mt19937 generator(13);
      std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
      recur::Tensor x({T, batch, I}), dy({T, batch, 2 * H});
      for (float& v : x.values()) v = uniform(generator);
      for (float& v : dy.values()) v = uniform(generator);
      recur::SequenceOptions options;
      for (int64_t b = 0; b < batch; ++b) options.lengths.push_back(1 + (b * 7) % T);
      std::vector<std::vector<float>> results[2];
      for (int threads : {1, 2}) {
        recur::set_num_threads(threads);
        recur::Tape tape;
        const recur::RnnOutput out = rnn.forward(x, options, tape);
        recur::RnnGradients grads;
        grads.parameters = recur::RnnParameters::zeros(config);
        rnn.backward(tape, dy, {}, grads);
        std::vector<std::vector<float>>& r = results[threads - 1];
        r = {flat(out.y), flat(grads.dx), flat(grads.initial_state.h)};
        for (const recur::LayerParameters& p : grads.parameters.layers)
          for (const recur::Tensor* t : {&p.w_x, &p.w_h, &p.b_x, &p.b_h, &p.peephole}) r.push_back(flat(*t));
      }
      for (size_t k = 0; k < results[0].size(); ++k)
        EXPECT_EQ(results[0][k], results[1][k]) << cell.name() << " B=" << batch << " tensor " << k;
    }
  }
  recur::set_num_threads(1);
}

// Gates driven deep into saturation (biases of -95 and +95, wide weights): sigmoid(-95) and the
// differences from 1 of tanh past |x| = 44 are subnormal. The element-wise passes flush them on every
// thread, the caller's included (kernels/denormals.hpp), so a unit's result does not depend on which
// thread computed it, and no value the passes write is subnormal.
TEST(KernelsThreads, SaturatedGatesGiveTheSameBitsAtOneAndTwoThreadsAndNoSubnormals) {
  using recur::CellSpec;
  for (const CellSpec& cell : {CellSpec::lstm(), CellSpec::gru(), CellSpec::rnn_tanh()}) {
    for (int64_t batch : {4, 20}) {
      const int64_t T = 5, I = 96, H = 128;
      recur::RnnConfig config{cell, I, H, 1, false};
      recur::Rnn rnn(config, 3);
      for (recur::LayerParameters& p : rnn.parameters().layers) {
        for (float& v : p.w_x.values()) v *= 200.0f;
        for (int64_t j = 0; j < p.b_x.size(); ++j) p.b_x[j] = j % 2 == 0 ? -95.0f : 95.0f;
      }
      std::mt19937 generator(5);
      std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
      recur::Tensor x({T, batch, I});
      for (float& v : x.values()) v = uniform(generator);
      std::vector<float> results[2][2];
      for (int threads : {1, 2}) {
        recur::set_num_threads(threads);
        recur::Tape tape;
        results[threads - 1][0] = flat(rnn.forward(x).y);
        results[threads - 1][1] = flat(rnn.forward(x, {}, tape).y);
      }
      for (int training : {0, 1}) {
        const std::string what = cell.name() + " B=" + std::to_string(batch) + (training ? " training" : "");
        EXPECT_EQ(results[0][training], results[1][training]) << what;
        for (int threads : {0, 1})
          EXPECT_EQ(std::count_if(results[threads][training].begin(), results[threads][training].end(),
                                  [](float v) { return std::fpclassify(v) == FP_SUBNORMAL; }),
                    0)
              << what << " at " << threads + 1 << " threads";
      }
    }
  }
  recur::set_num_threads(1);
}

}  // namespace

namespace {

// A training pass writes its tape past the caches when the driver finds it larger than them
// (StepForward::saved_streamed, kernels/post_gemm.hpp): the same values as stored ones, in every cell, at
// unit shares on and off 16-float boundaries (the latter fall back to plain stores).
TEST(KernelsPostGemm, StreamedTapeHoldsWhatStoredTapeHolds) {
  using recur::CellSpec;
  for (const CellSpec& spec : {CellSpec::lstm(), CellSpec::peephole_lstm(), CellSpec::gru(),
                               CellSpec::gru(recur::GruReset::before), CellSpec::rnn_tanh()})
    for (int64_t H : {64, 40}) {
      const recur::RnnConfig config{spec, 24, H};
      const recur::Rnn rnn(config, 5);
      const auto cell = recur::cells::make_cell(spec, H, rnn.parameters().layers[0]);
      const int64_t rows = 5, width = cell->gate_width();
      std::mt19937 generator(17);
      std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
      recur::AlignedVector<float> gates(size_t(rows * width)), h(size_t(rows * H)), c(size_t(rows * H));
      for (auto* values : {&gates, &h, &c})
        for (float& v : *values) v = uniform(generator);
      std::vector<float> results[2];
      for (bool streamed : {false, true}) {
        recur::AlignedVector<float> step_gates = gates, step_h = h, step_c = c, h_prev = h;
        recur::AlignedVector<float> saved(size_t(rows * cell->saved_width()), -7.0f);
        recur::AlignedVector<float> scratch(size_t(rows * cell->scratch_width()));
        recur::cells::StepForward step;
        step.rows = rows;
        step.gates = step_gates.data();
        step.h = step_h.data();
        step.c = step_c.data();
        step.h_prev = h_prev.data();
        step.saved = saved.data();
        step.saved_streamed = streamed;
        step.scratch = scratch.data();
        cell->forward_step(step);
        std::vector<float>& r = results[streamed];
        r.assign(saved.begin(), saved.end());
        r.insert(r.end(), step_h.begin(), step_h.end());
        r.insert(r.end(), step_c.begin(), step_c.end());
      }
      EXPECT_EQ(results[0], results[1]) << spec.name() << " H=" << H;
    }
}

// Products flush subnormal floats (kernels/denormals.hpp): a subnormal operand counts as zero, and the
// caller's floating-point mode is the same after the call as before.
TEST(KernelsGemm, SubnormalOperandsCountAsZeroAndTheCallersModeIsKept) {
  const int64_t m = 3, n = 40, k = 20;
  std::vector<float> a(size_t(m * k), 0.5f), w(size_t(n * k), 0.25f), c(size_t(m * n)),
      expected(size_t(m * n));
  std::fill_n(a.begin(), k, 1e-40f);  // row 0 subnormal: unflushed, its products would sum to 5e-40, not 0
  ASSERT_TRUE(std::fpclassify(a[0]) == FP_SUBNORMAL);
  const unsigned mode = _mm_getcsr();
  recur::kernels::gemm_nt(m, n, k, a.data(), k, w.data(), k, 0.0f, c.data(), n);
  EXPECT_EQ(_mm_getcsr(), mode);
  std::fill_n(a.begin(), k, 0.0f);
  recur::kernels::gemm_nt(m, n, k, a.data(), k, w.data(), k, 0.0f, expected.data(), n);
  EXPECT_EQ(c, expected);
  // The caller's own arithmetic still has subnormals.
  volatile float tiny = 1e-38f;
  EXPECT_TRUE(std::fpclassify(tiny * 0.01f) == FP_SUBNORMAL);
}

}  // namespace
