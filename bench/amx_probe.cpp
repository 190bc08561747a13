// amx_probe: could recur's float32 GEMMs run on the AMX tile unit (Sapphire Rapids and later) and stay
// float32-accurate? A probe for docs/performance.md ("AMX: the lever left"), not recur's engine.
//
// AMX multiplies bfloat16 (8-bit mantissa) pairs into float32 accumulators, some 15x the float32 FMA
// rate. A float32 x splits exactly into three bfloat16 parts, x = x0 + x1 + x2 (each holds the next 8
// bits). A product x w then is the sum of the nine products xi wj; the six with i + j <= 2 leave out
// terms under 2^-24 |x w|, float32's own rounding ("bf16x3"; CUTLASS's 3xTF32 is the same idea). So a
// GEMM in six tile products is as accurate as float32's and, if the tile unit is fed, faster.
//
// Lines printed (one thread):
//   peak    tile multiply-adds from registers alone: the unit's bfloat16 ceiling
//   feed    one 1 KB tile load per tile product, from a buffer of L1, L2 or beyond-L2 size
//   gemm    C[m, n] = A[m, k] B[k, n] in bf16x3 on operands split and packed beforehand (32 x 32 blocks
//           of C in four tiles, 14 tile loads per 24 products), against OpenBLAS's sgemm on the same
//           float32 data; both errors against a double-precision sum
// Usage: amx_probe. Prints one line and exits 0 where the processor or the kernel has no AMX.
#include <cblas.h>
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <vector>

#include "recur/aligned.hpp"

namespace {

constexpr int kArchReqXcompPerm = 0x1023;  // arch_prctl: ask for an extended state component
constexpr int kXfeatureTileData = 18;      // AMX's tile data

// LDTILECFG's 64-byte operand: palette 1, every tile 16 rows of 64 bytes.
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t bytes_per_row[16] = {};
  uint8_t rows[16] = {};
};

void configure_tiles() {
  TileConfig config;
  for (int t = 0; t < 8; ++t) {
    config.rows[t] = 16;
    config.bytes_per_row[t] = 64;
  }
  // GCC's tile intrinsics are asm statements that do not tell the compiler which memory they read:
  // without this barrier it drops the stores above, and LDTILECFG faults on an unwritten config.
  asm volatile("" ::: "memory");
  _tile_loadconfig(&config);
}

// Likewise before the tile loads of data written just before them.
void memory_barrier() { asm volatile("" ::: "memory"); }

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Round to nearest even; finite inputs only (the splits below keep inf and NaN in part 0).
uint16_t to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return uint16_t((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

float from_bf16(uint16_t h) {
  const uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// x = parts[0] + parts[1] + parts[2] exactly, for normal x.
void split3(float x, uint16_t parts[3]) {
  for (int p = 0; p < 3; ++p) {
    parts[p] = to_bf16(x);
    x -= from_bf16(parts[p]);
  }
}

void peak() {
  configure_tiles();
  alignas(64) static uint16_t ones[16 * 32];
  std::fill(std::begin(ones), std::end(ones), uint16_t(0x3f80));
  memory_barrier();
  _tile_loadd(4, ones, 64);  // tile numbers are part of the instruction: no loop
  _tile_loadd(5, ones, 64);
  _tile_loadd(6, ones, 64);
  _tile_loadd(7, ones, 64);
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  constexpr long kIterations = 2000000;
  const auto start = std::chrono::steady_clock::now();
  for (long i = 0; i < kIterations; ++i) {
    _tile_dpbf16ps(0, 4, 5);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 6, 5);
    _tile_dpbf16ps(3, 6, 7);
  }
  const double s = seconds_since(start);
  std::printf("peak    bf16 tile products from registers: %.0f GFLOP/s\n",
              kIterations * 4.0 * 16384 / s / 1e9);
  _tile_release();
}

void feed() {
  configure_tiles();
  recur::AlignedVector<uint16_t> buffer(size_t(4) << 20, uint16_t(0x3f80));  // 8 MB
  memory_barrier();
  std::printf("feed    one tile load per product, buffer of");
  for (const size_t span : {size_t(16) << 10, size_t(512) << 10, size_t(8) << 20}) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    const size_t tiles = span / 1024;
    constexpr long kIterations = 1000000;
    size_t at = 0;
    const auto start = std::chrono::steady_clock::now();
    for (long i = 0; i < kIterations; ++i) {
      const uint16_t* p = buffer.data() + at * 512;
      at = at + 4 + 4 > tiles ? 0 : at + 4;
      _tile_loadd(4, p, 64);
      _tile_loadd(5, p + 512, 64);
      _tile_loadd(6, p + 1024, 64);
      _tile_loadd(7, p + 1536, 64);
      _tile_dpbf16ps(0, 4, 6);
      _tile_dpbf16ps(1, 4, 7);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    }
    const double s = seconds_since(start);
    std::printf(" %zu KB: %.0f GFLOP/s%s", span >> 10, kIterations * 4.0 * 16384 / s / 1e9,
                span == (size_t(8) << 20) ? "\n" : ",");
  }
  _tile_release();
}

// A packed as tiles [m/32][k/32][part][half: rows 0-15, 16-31][16 rows][32 k]; B as tiles
// [n/32][k/32][part][half: columns 0-15, 16-31][16 k-pairs][16 columns][2] (the pairs AMX multiplies).
void gemm(int m, int n, int k) {
  std::mt19937 generator(1);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> a(size_t(m) * k), b(size_t(k) * n), c(size_t(m) * n), c_blas(size_t(m) * n);
  for (float& v : a) v = uniform(generator);
  for (float& v : b) v = 0.05f * uniform(generator);
  const int kb_count = k / 32;
  recur::AlignedVector<uint16_t> a_tiles(size_t(m) * k * 3), b_tiles(size_t(k) * n * 3);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < k; ++j) {
      uint16_t parts[3];
      split3(a[size_t(i) * k + j], parts);
      for (int p = 0; p < 3; ++p)
        a_tiles[((((size_t(i / 32) * kb_count + j / 32) * 3 + p) * 2 + (i % 32) / 16) * 16 + i % 16) * 32 +
                j % 32] = parts[p];
    }
  for (int j = 0; j < k; ++j)
    for (int i = 0; i < n; ++i) {
      uint16_t parts[3];
      split3(b[size_t(j) * n + i], parts);
      for (int p = 0; p < 3; ++p)
        b_tiles[((((size_t(i / 32) * kb_count + j / 32) * 3 + p) * 2 + (i % 32) / 16) * 16 + (j % 32) / 2) *
                    32 +
                (i % 16) * 2 + j % 2] = parts[p];
    }
  configure_tiles();
  memory_barrier();
  const int block_rows = std::min(m, 256);  // A's rows kept in L2 while B's 32-column panels pass
  const auto amx = [&] {
    for (int m0 = 0; m0 < m; m0 += block_rows)
      for (int nb = 0; nb < n / 32; ++nb)
        for (int mb = m0 / 32; mb < std::min(m, m0 + block_rows) / 32; ++mb) {
          _tile_zero(0);
          _tile_zero(1);
          _tile_zero(2);
          _tile_zero(3);
          for (int kb = 0; kb < kb_count; ++kb) {
            const uint16_t* at = a_tiles.data() + (size_t(mb) * kb_count + kb) * 3072;
            const uint16_t* bt = b_tiles.data() + (size_t(nb) * kb_count + kb) * 3072;
            // Parts a_p into tiles 4, 5 (two row halves), b_q into 6, 7 (two column halves); the
            // smallest products first, each pair reusing one operand of the pair before.
            const auto load_a = [&](int p) {
              _tile_loadd(4, at + p * 1024, 64);
              _tile_loadd(5, at + p * 1024 + 512, 64);
            };
            const auto load_b = [&](int q) {
              _tile_loadd(6, bt + q * 1024, 64);
              _tile_loadd(7, bt + q * 1024 + 512, 64);
            };
            const auto products = [] {
              _tile_dpbf16ps(0, 4, 6);
              _tile_dpbf16ps(1, 4, 7);
              _tile_dpbf16ps(2, 5, 6);
              _tile_dpbf16ps(3, 5, 7);
            };
            load_a(2), load_b(0), products();  // a2 b0
            load_a(1), products();             // a1 b0
            load_b(1), products();             // a1 b1
            load_a(0), products();             // a0 b1
            load_b(2), products();             // a0 b2
            load_b(0), products();             // a0 b0
          }
          float* out = c.data() + size_t(mb) * 32 * n + nb * 32;
          _tile_stored(0, out, n * 4);
          _tile_stored(1, out + 16, n * 4);
          _tile_stored(2, out + 16 * n, n * 4);
          _tile_stored(3, out + 16 * n + 16, n * 4);
        }
  };
  const auto blas = [&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f,
                c_blas.data(), n);
  };
  const auto median_seconds = [](const std::function<void()>& f, int repeats) {
    f();
    std::vector<double> times;
    for (int r = 0; r < repeats; ++r) {
      const auto start = std::chrono::steady_clock::now();
      f();
      times.push_back(seconds_since(start));
    }
    std::nth_element(times.begin(), times.begin() + repeats / 2, times.end());
    return times[size_t(repeats / 2)];
  };
  const int repeats = m >= 1024 ? 7 : 51;
  const double flops = 2.0 * m * n * k, amx_s = median_seconds(amx, repeats),
               blas_s = median_seconds(blas, repeats);
  double amx_error = 0, blas_error = 0;
  for (int i = 0; i < m; i += 7)
    for (int j = 0; j < n; j += 5) {
      double exact = 0;
      for (int q = 0; q < k; ++q) exact += double(a[size_t(i) * k + q]) * b[size_t(q) * n + j];
      amx_error = std::max(amx_error, std::fabs(c[size_t(i) * n + j] - exact));
      blas_error = std::max(blas_error, std::fabs(c_blas[size_t(i) * n + j] - exact));
    }
  std::printf(
      "gemm    %dx%dx%d: bf16x3 on AMX %.0f GFLOP/s, OpenBLAS sgemm %.0f; max |error| %.1e and %.1e\n", m, n,
      k, flops / amx_s / 1e9, flops / blas_s / 1e9, amx_error, blas_error);
  _tile_release();
}

}  // namespace

// CPUID leaf 7: AMX-BF16 (EDX bit 22) and AMX-TILE (bit 24); then the kernel's permission to use them.
bool amx_usable() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  if ((edx & (1u << 22)) == 0 || (edx & (1u << 24)) == 0) return false;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureTileData) == 0;
}

int main() {
  if (!amx_usable()) {
    std::printf("amx_probe: no AMX here (the processor or the kernel does not offer its tile data)\n");
    return 0;
  }
  openblas_set_num_threads(1);
  peak();
  feed();
  gemm(64, 1024, 512);    // one thread's half of an LSTM step's product, H = 512, B = 64
  gemm(3200, 2048, 512);  // b_db512's input product x W^T (as x times W^T laid out [k, n])
  gemm(3200, 512, 512);   // the RNN's
  return 0;
}
