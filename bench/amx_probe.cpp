// amx_probe: the AMX tile unit's own rates on one core, the measurements behind recur's float32 products
// on tiles (kernels/amx_gemm.hpp; docs/performance.md, fifth round). kernel_bench's "merged" lines time
// recur's GEMM itself; this probe times the unit under it.
//
// Lines printed (one thread):
//   peak    tile multiply-adds from registers alone: the unit's bfloat16 ceiling
//   feed    one 1 KB tile load per tile product, from a buffer of L1, L2 or beyond-L2 size
// Usage: amx_probe. Prints one line and exits 0 where the processor or the kernel has no AMX.
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>

#include "kernels/amx_gemm.hpp"
#include "recur/aligned.hpp"

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// GCC's tile intrinsics do not tell the compiler which memory they read: keep the stores before them.
void memory_barrier() { asm volatile("" ::: "memory"); }

void peak() {
  recur::kernels::amx_configure_tiles();
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
  recur::kernels::amx_configure_tiles();
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

}  // namespace

int main() {
  if (!recur::kernels::amx_enabled()) {
    std::printf("amx_probe: no AMX here (the processor or the kernel does not offer it, or RECUR_AMX=0)\n");
    return 0;
  }
  peak();
  feed();
  return 0;
}
