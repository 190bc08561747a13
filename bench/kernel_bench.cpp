// kernel_bench: the probes behind docs/performance.md's gap analysis, one level below rnn_bench. Each
// line is one measurement, the median of repeated calls on the same (cache-warm) data:
//   step      one time step's product through OpenBLAS and through recur's packed kernel
//             (kernels/packed_gemm.hpp), forward h W_h^T and backward dG W_h, LSTM H = 512; and the
//             forward product shared among the threads by rows of h instead of by units (panels)
//   matvec    a batch of 1 or 4 rows: the small-batch kernel (kernels::recurrent_gemm_nt) against the
//             packed one, and the bytes of W each streams
//   merged    a merged GEMM over all T*B rows: recur's shares of single-threaded BLAS calls against
//             OpenBLAS's own threads, and against the packed kernel on W packed once (in chunks of rows);
//             and the three merged products of an LSTM training step through kernels::gemm
//   pool      an empty task on recur's thread pool
//   ceiling   the cores' FMA peak (a loop of register-only AVX-512 multiply-adds, every thread at once);
//             the packed micro-kernel, one thread, with its operands in L1, L2 or L3; and the merged
//             input product on the packed kernel in blocks of panels kept in L2, against OpenBLAS
//   subnormal OpenBLAS sgemm with normal and with subnormal operands (kernels/denormals.hpp says why)
// Usage: kernel_bench [threads ...]   (default: 1 2)
#include <cblas.h>
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#include "kernels/gemm.hpp"
#include "kernels/packed_gemm.hpp"
#include "kernels/thread_pool.hpp"
#include "recur/runtime.hpp"

namespace {

using recur::kernels::Transpose;
// The operands as recur's own buffers hold them: on cache lines, large ones on huge pages (aligned.hpp).
using Floats = recur::AlignedVector<float>;

// Median microseconds of f over `repeats` calls, after two untimed ones.
double median_us(const std::function<void()>& f, int repeats) {
  f(), f();
  std::vector<double> times;
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    f();
    times.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
  }
  std::nth_element(times.begin(), times.begin() + long(times.size() / 2), times.end());
  return times[times.size() / 2];
}

Floats filled(int64_t n, float scale) {
  Floats v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = float(i % 7 - 3) * scale;
  return v;
}

void step_products(int threads) {
  const int64_t H = 512, G = 4;
  const Floats w = filled(G * H * H, 0.01f);
  recur::kernels::PackedWeights forward, backward;
  forward.pack_transposed(w.data(), H, G, H, H);
  backward.pack(w.data(), H, G * H, H);
  for (int64_t m : {8, 32, 64}) {
    const Floats h = filled(m * G * H, 0.1f);
    Floats c(size_t(m * G * H));
    const double flops = 2.0 * double(m * G * H * H);
    const double blas_fwd = median_us(
        [&] {
          recur::kernels::gemm(Transpose::no, Transpose::yes, m, G * H, H, 1.0f, h.data(), H, w.data(), H,
                               0.0f, c.data(), G * H);
        },
        30);
    const double packed_fwd =
        median_us([&] { forward.multiply(m, h.data(), H, 0, G, 0, H, 0.0f, c.data(), G * H); }, 30);
    const double blas_bwd = median_us(
        [&] {
          recur::kernels::gemm(Transpose::no, Transpose::no, m, H, G * H, 1.0f, h.data(), G * H, w.data(), H,
                               0.0f, c.data(), H);
        },
        30);
    const double packed_bwd =
        median_us([&] { backward.multiply(m, h.data(), G * H, 0, 1, 0, G * H, 0.0f, c.data(), H); }, 30);
    // The forward product shared by rows (each thread all of W_h, as a step shared by rows runs it)
    // and by units (each thread its units' panels of all four gate blocks).
    recur::kernels::ThreadPool& pool = recur::kernels::ThreadPool::instance();
    const double by_rows = median_us(
        [&] {
          pool.run([&](int index, int count) {
            const int64_t r0 = m * index / count, r1 = m * (index + 1) / count;
            forward.multiply(r1 - r0, h.data() + r0 * H, H, 0, G, 0, H, 0.0f, c.data() + r0 * G * H, G * H);
          });
        },
        30);
    std::printf("step      threads %d  B=%-3lld forward shared by rows: %7.1f us (%3.0f GFLOP/s)\n", threads,
                (long long)m, by_rows, flops / by_rows / 1e3);
    std::printf(
        "step      threads %d  B=%-3lld forward: BLAS %7.1f us  packed %7.1f us (%3.0f GFLOP/s)   "
        "backward: BLAS %7.1f us  packed %7.1f us (%3.0f GFLOP/s)\n",
        threads, (long long)m, blas_fwd, packed_fwd, flops / packed_fwd / 1e3, blas_bwd, packed_bwd,
        flops / packed_bwd / 1e3);
  }
  const double pack_us = median_us([&] { forward.pack_transposed(w.data(), H, G, H, H); }, 5);
  std::printf("step      threads %d  packing W_h (4 MB) once per pass: %.0f us\n", threads, pack_us);
}

// The products of a batch of 1 or 4 rows: the small-batch kernel on W's rows (recurrent_gemm_nt, what a
// stream and a short sequence use) against the packed micro-kernel on W packed once (a long sequence).
void matvec(int threads) {
  for (int64_t H : {256, 512})
    for (int64_t G : {1, 3, 4})
      for (int64_t rows : {1, 4}) {
        const Floats w = filled(G * H * H, 0.01f), x = filled(rows * H, 0.5f);
        Floats c(size_t(rows * G * H));
        recur::kernels::PackedWeights panels;
        panels.pack_transposed(w.data(), H, G, H, H);
        const double plain = median_us(
            [&] {
              recur::kernels::recurrent_gemm_nt(rows, G * H, H, x.data(), H, w.data(), H, 0.0f, c.data(),
                                                G * H);
            },
            2000);
        const double packed =
            median_us([&] { panels.multiply(rows, x.data(), H, 0, G, 0, H, 0.0f, c.data(), G * H); }, 2000);
        const double bytes = double(G * H * H * 4);
        std::printf(
            "matvec    threads %d  B=%lld  W %4lld x %3lld (%4.0f KB): rows %6.2f us, %4.0f GB/s;"
            "  packed %6.2f us, %4.0f GB/s\n",
            threads, (long long)rows, (long long)(G * H), (long long)H, bytes / 1024, plain,
            bytes / plain / 1e3, packed, bytes / packed / 1e3);
      }
}

void merged(int threads) {
  const int64_t m = 3200, n = 2048, k = 512;
  const Floats a = filled(m * k, 0.1f), b = filled(n * k, 0.01f);
  Floats c(size_t(m * n));
  const double ours = median_us(
      [&] {
        recur::kernels::gemm(Transpose::no, Transpose::yes, m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f,
                             c.data(), n);
      },
      5);
  // The same product on W packed once (as W_h is for the steps), rows in chunks whose A stays in L2.
  recur::kernels::PackedWeights packed;
  packed.pack_transposed(b.data(), k, 4, n / 4, k);
  for (int64_t chunk : {96, 192, 384}) {
    const double us = median_us(
        [&] {
          recur::kernels::ThreadPool::instance().run([&](int index, int count) {
            const int64_t chunks = (m + chunk - 1) / chunk;
            for (int64_t q = chunks * index / count; q < chunks * (index + 1) / count; ++q) {
              const int64_t r0 = q * chunk, rows = std::min(chunk, m - r0);
              packed.multiply(rows, a.data() + r0 * k, k, 0, 4, 0, k, 0.0f, c.data() + r0 * n, n);
            }
          });
        },
        5);
    std::printf("merged    threads %d  3200x2048x512 packed, row chunks of %lld: %.0f GFLOP/s\n", threads,
                (long long)chunk, 2.0 * double(m * n * k) / us / 1e3);
  }
  // The four merged products of a training step (LSTM, I = H = 512, T*B = 3200), through kernels::gemm.
  {
    const int64_t rows = 3200, width = 2048, in = 512;
    const Floats x = filled(rows * in, 0.1f), dg = filled(rows * width, 0.01f),
                 wx = filled(width * in, 0.01f);
    Floats dw(size_t(width * in)), y(size_t(rows * width)), dx(size_t(rows * in));
    const double flops = 2.0 * double(rows * width * in);
    const auto rate = [&](const std::function<void()>& f) { return flops / median_us(f, 5) / 1e3; };
    const double forward = rate([&] {
      recur::kernels::gemm_nt(rows, width, in, x.data(), in, wx.data(), in, 0.0f, y.data(), width);
    });
    const double weights = rate([&] {
      recur::kernels::gemm_tn(width, in, rows, dg.data(), width, x.data(), in, 1.0f, dw.data(), in);
    });
    const double inputs = rate([&] {
      recur::kernels::gemm_nn(rows, in, width, dg.data(), width, wx.data(), in, 1.0f, dx.data(), in);
    });
    std::printf("merged    threads %d  LSTM 512, T*B = 3200: x W^T %.0f, dG^T x %.0f, dG W %.0f GFLOP/s\n",
                threads, forward, weights, inputs);
  }
  openblas_set_num_threads(threads);
  const double theirs = median_us(
      [&] {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, blasint(m), blasint(n), blasint(k), 1.0f,
                    a.data(), blasint(k), b.data(), blasint(k), 0.0f, c.data(), blasint(n));
      },
      5);
  openblas_set_num_threads(1);
  const double flops = 2.0 * double(m * n * k);
  std::printf(
      "merged    threads %d  3200x2048x512: recur's shares %.0f GFLOP/s, OpenBLAS's threads %.0f GFLOP/s\n",
      threads, flops / ours / 1e3, flops / theirs / 1e3);
}

// Multiply-adds per second of a register-only loop: 12 independent accumulators (more than the FMA
// latency times the ports), nothing loaded. The ceiling of any GEMM on this core.
__attribute__((target("avx512f"))) double fma_gflops_one_thread() {
  __m512 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(float(i) * 0.001f);
  const __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(0.0001f);
  constexpr int64_t kIterations = 20000000;
  const auto start = std::chrono::steady_clock::now();
  for (int64_t k = 0; k < kIterations; ++k)
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  float sink = 0.0f, lanes[16];
  for (const __m512& v : acc) {
    _mm512_storeu_ps(lanes, v);
    for (float lane : lanes) sink += lane;
  }
  if (sink == 12345.0f) std::printf(" ");  // keeps the loop
  return double(kIterations) * 12 * 32 / seconds / 1e9;
}

void ceiling(int threads) {
  if (!__builtin_cpu_supports("avx512f")) {
    std::printf("ceiling   threads %d  no AVX-512 on this processor: not measured\n", threads);
    return;
  }
  std::vector<double> per_thread(static_cast<size_t>(threads));
  recur::kernels::ThreadPool::instance().run(
      [&](int index, int) { per_thread[size_t(index)] = fma_gflops_one_thread(); });
  double total = 0.0;
  for (double g : per_thread) total += g;
  std::printf("ceiling   threads %d  FMA peak (registers only): %.0f GFLOP/s (%.0f per thread)\n", threads,
              total, total / threads);
  if (threads == 1 && recur::kernels::PackedWeights::available()) {
    // C[m, n] += A[m, k] B[k, n], B packed, one thread, over and over on the same data: where each
    // operand lives decides the rate.
    const auto micro = [](int64_t m, int64_t n, int64_t k) {
      const Floats w = filled(n * k, 0.01f), a = filled(m * k, 0.1f);
      Floats c(size_t(m * n));
      recur::kernels::PackedWeights packed;
      packed.pack_transposed(w.data(), k, 1, n, k);
      const int repeats = int(std::max<int64_t>(50, 400000000 / (m * n * k)));
      const double us = median_us(
          [&] { packed.multiply_units(m, a.data(), k, 0, packed.panels_per_block(), 1.0f, c.data(), n); },
          repeats);
      return 2.0 * double(m * n * k) / us / 1e3;
    };
    std::printf(
        "ceiling   threads 1  packed micro-kernel, A 12x256 and B 256x32 in L1: %.0f, B 1 MB in L2: %.0f, "
        "B 4 MB beyond L2: %.0f GFLOP/s\n",
        micro(12, 32, 256), micro(12, 1024, 256), micro(12, 4096, 256));
  }
  if (!recur::kernels::PackedWeights::available()) return;
  // x W^T for an LSTM at H = 512 over T*B = 3200 rows: each thread its half of W's panels, in groups
  // kept in L2 while every 12-row block of x sweeps them; against the same product through OpenBLAS.
  const int64_t m = 3200, n = 2048, k = 512;
  const Floats a = filled(m * k, 0.1f), w = filled(n * k, 0.01f);
  Floats c(size_t(m * n));
  recur::kernels::PackedWeights packed;
  packed.pack_transposed(w.data(), k, 1, n, k);
  const double flops = 2.0 * double(m * n * k);
  const double blas =
      median_us([&] { recur::kernels::gemm_nt(m, n, k, a.data(), k, w.data(), k, 0.0f, c.data(), n); }, 5);
  std::printf("ceiling   threads %d  3200x2048x512 x W^T: OpenBLAS in recur's shares %.0f GFLOP/s;", threads,
              flops / blas / 1e3);
  const int64_t panels = packed.panels_per_block();
  for (int64_t group : {8, 16}) {
    const double us = median_us(
        [&] {
          recur::kernels::ThreadPool::instance().run([&](int index, int count) {
            const int64_t begin = panels * index / count, end = panels * (index + 1) / count;
            for (int64_t g0 = begin; g0 < end; g0 += group)
              for (int64_t r = 0; r < m; r += 12)
                packed.multiply_units(std::min<int64_t>(12, m - r), a.data() + r * k, k, g0,
                                      std::min(end, g0 + group), 0.0f, c.data() + r * n, n);
          });
        },
        5);
    std::printf("%s packed in blocks of %lld panels (%lld KB) %.0f", group == 8 ? "" : ",", (long long)group,
                (long long)(group * packed.panel_width() * k * 4 / 1024), flops / us / 1e3);
  }
  std::printf("\n");
}

void pool(int threads) {
  volatile int sink = 0;
  const double us =
      median_us([&] { recur::kernels::ThreadPool::instance().run([&](int i, int) { sink = i; }); }, 20000);
  std::printf("pool      threads %d  empty task: %.2f us\n", threads, us);
}

void subnormal() {
  const int m = 100, n = 10000, k = 200;
  for (float scale : {1.0f, 1e-39f}) {
    const Floats a = filled(int64_t(m) * k, 0.1f * scale), b = filled(int64_t(n) * k, 0.01f);
    Floats c(size_t(m) * n);
    const double us = median_us(
        [&] {
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f,
                      c.data(), n);
        },
        1);
    std::printf("subnormal OpenBLAS sgemm 100x10000x200, A %s: %.1f ms\n",
                scale == 1.0f ? "normal   " : "subnormal", us / 1e3);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> thread_counts;
  for (int i = 1; i < argc; ++i) thread_counts.push_back(std::atoi(argv[i]));
  if (thread_counts.empty()) thread_counts = {1, 2};
  for (int threads : thread_counts) {
    if (threads < 1) {
      std::fprintf(stderr, "kernel_bench: thread counts must be positive, got %d\n", threads);
      return 1;
    }
    recur::set_num_threads(threads);
    step_products(threads);
    matvec(threads);
    merged(threads);
    pool(threads);
    ceiling(threads);
  }
  recur::set_num_threads(1);
  subnormal();
  return 0;
}
