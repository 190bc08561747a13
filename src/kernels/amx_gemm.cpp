// kernels/amx_gemm.hpp: bf16x3 GEMMs on AMX tiles. Compiled with -mamx-tile -mamx-bf16 -mavx512f
// -mavx512bw -mavx512bf16 (CMakeLists.txt); runs only where amx_enabled() says so.
//
// Layout. Both operands are split into their three bfloat16 parts and packed into 1 KB tiles, padded
// with zeros to whole 32 x 32 blocks:
//   A: [m/32][k/32][part][half: rows 0-15 | 16-31][16 rows][32 k]
//   B: [n/32][k/32][part][half: columns 0-15 | 16-31][16 k-pairs][16 columns][2]  (AMX's pair layout)
// A 32 x 32 block of C lives in four tiles (0-3) while k runs; tiles 4-5 hold a part of A's two row
// halves, 6-7 a part of B's two column halves. Per 32 of k, the six products reuse one operand of the
// pair before: 14 tile loads for 24 tile products. Rows of A are taken in chunks whose tiles fit in
// 768 KB of L2 (256 rows at k = 512) while B's 32-column panels pass.
#include "kernels/amx_gemm.hpp"

#if defined(__AMX_TILE__) && defined(__AMX_BF16__) && defined(__AVX512BF16__) && defined(__AVX512BW__)

#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels/denormals.hpp"
#include "kernels/thread_pool.hpp"
#include "recur/aligned.hpp"

namespace recur::kernels {
namespace {

constexpr int kArchReqXcompPerm = 0x1023;  // arch_prctl: ask for an extended state component
constexpr int kXfeatureTileData = 18;      // AMX's tile data
constexpr int64_t kBlock = 32;             // C blocks, and k steps
constexpr int64_t kTileHalves = 3 * 2;     // parts x halves: the tiles of one block per k step
constexpr int64_t kTileElements = 512;     // bfloat16s in a 1 KB tile
constexpr int64_t kTilesInL2 = 768;        // A's tiles (KB) swept per pass over B's panels
constexpr int64_t kChunkSteps = 32;        // k steps per pass (1024 of k): 16, 24 and 64 measured slower
constexpr int64_t kStreamedOutputBytes = int64_t(8) << 20;  // C at least this large bypasses the caches

// LDTILECFG's operand: palette 1, the eight tiles 16 rows of 64 bytes.
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t bytes_per_row[16] = {};
  uint8_t rows[16] = {};
};

// GCC's tile intrinsics are asm statements that do not name the memory they read: this barrier keeps
// the compiler from dropping or delaying the stores they depend on (the config, the packed tiles).
inline void memory_barrier() { asm volatile("" ::: "memory"); }

void configure_tiles() {
  TileConfig config;
  for (int t = 0; t < 8; ++t) {
    config.rows[t] = 16;
    config.bytes_per_row[t] = 64;
  }
  memory_barrier();
  _tile_loadconfig(&config);
}

bool processor_and_kernel_allow() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  const bool amx_bf16 = (edx & (1u << 22)) != 0, amx_tile = (edx & (1u << 24)) != 0;
  unsigned eax1 = 0, ebx1 = 0, ecx1 = 0, edx1 = 0;
  const bool avx512_bf16 = __get_cpuid_count(7, 1, &eax1, &ebx1, &ecx1, &edx1) && (eax1 & (1u << 5)) != 0;
  if (!amx_bf16 || !amx_tile || !avx512_bf16 || !__builtin_cpu_supports("avx512bw")) return false;
  // Linux grants the tile data state per process, on request (5.16 and later).
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureTileData) == 0;
}

// 16 floats -> their three bfloat16 parts (rounded to nearest even; exact for normal numbers).
struct Parts {
  __m256i part[3];
};

inline __m512 widen(__m256i bf16) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bf16), 16));
}

inline Parts split(__m512 x) {
  Parts out;
  // x - x is 0 for finite x, NaN for inf and NaN: those stay whole in part 0.
  const __mmask16 finite = _mm512_cmp_ps_mask(_mm512_sub_ps(x, x), _mm512_setzero_ps(), _CMP_EQ_OQ);
  out.part[0] = (__m256i)_mm512_cvtneps_pbh(x);
  const __m512 rest = _mm512_maskz_sub_ps(finite, x, widen(out.part[0]));
  out.part[1] = (__m256i)_mm512_cvtneps_pbh(rest);
  out.part[2] = (__m256i)_mm512_cvtneps_pbh(_mm512_sub_ps(rest, widen(out.part[1])));
  return out;
}

// In-register transpose of 16 rows of 16 floats.
inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  const auto pd = [](__m512 v) { return _mm512_castps_pd(v); };
  for (int i = 0; i < 4; ++i) {
    r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(t[4 * i]), pd(t[4 * i + 2])));
    r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(t[4 * i]), pd(t[4 * i + 2])));
    r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(t[4 * i + 1]), pd(t[4 * i + 3])));
    r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(t[4 * i + 1]), pd(t[4 * i + 3])));
  }
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xdd);
    t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xdd);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
    r[i + 4] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0x88);
    r[i + 12] = _mm512_shuffle_f32x4(t[i + 4], t[i + 12], 0xdd);
  }
}

// The first `count` lanes of 16 (none for count <= 0).
inline __mmask16 first(int64_t count) {
  return count >= 16 ? __mmask16(0xffff) : count <= 0 ? __mmask16(0) : __mmask16((1u << count) - 1);
}

// op(X)[row][col] for rows [row0, row0 + 32) and cols [col0, col0 + 32), zero past rows_limit and
// cols_limit, and in the columns before cols_skipped (not read; not transposed only): the float block a k
// step's tiles are made from. `transposed`: op(X)[r][c] = X[c * ld + r],
// read as X's rows and turned in registers, 16 x 16 at a time.
void gather(const float* x, int64_t ld, bool transposed, int64_t row0, int64_t rows_limit, int64_t col0,
            int64_t cols_limit, float (&block)[kBlock][kBlock], int64_t cols_skipped = 0) {
  const int64_t rows = std::clamp<int64_t>(rows_limit - row0, 0, kBlock);
  const int64_t cols = std::clamp<int64_t>(cols_limit - col0, 0, kBlock);
  if (!transposed) {
    for (int64_t r = 0; r < kBlock; ++r)
      for (int64_t half = 0; half < 2; ++half) {
        const __mmask16 mask =
            r < rows ? __mmask16(first(cols - 16 * half) & ~first(cols_skipped - col0 - 16 * half))
                     : __mmask16(0);
        _mm512_store_ps(block[r] + 16 * half,
                        _mm512_maskz_loadu_ps(mask, x + (row0 + r) * ld + col0 + 16 * half));
      }
    return;
  }
  for (int64_t col_half = 0; col_half < 2; ++col_half)
    for (int64_t row_half = 0; row_half < 2; ++row_half) {
      __m512 lines[16];  // X's row col0 + 16 col_half + i, from column row0 + 16 row_half
      const __mmask16 mask = first(rows - 16 * row_half);
      for (int64_t i = 0; i < 16; ++i) {
        const int64_t c = 16 * col_half + i;
        lines[i] = c < cols ? _mm512_maskz_loadu_ps(mask, x + (col0 + c) * ld + row0 + 16 * row_half)
                            : _mm512_setzero_ps();
      }
      transpose16(lines);
      for (int64_t j = 0; j < 16; ++j) _mm512_store_ps(block[16 * row_half + j] + 16 * col_half, lines[j]);
    }
}

// One 64-byte line of a tile; `streamed`: straight to memory (operands larger than the caches, which
// would otherwise be read in before being overwritten: packing a training step's dG took twice as long).
inline void store_tile_line(uint16_t* line, __m512i value, bool streamed) {
  if (streamed)
    _mm512_stream_si512(reinterpret_cast<__m512i*>(line), value);
  else
    _mm512_store_si512(line, value);
}

// A's tiles for row block `mb` and k step `kb`: 16 rows of 32 k per half, row by row.
// The 32 x 32 float block a k step's tiles are made from, as rows: where op(X) is X itself and the block
// lies whole inside it, X's own rows (`stride` apart; copying them first cost a tenth of the packing);
// otherwise gathered into `block`.
const float* block_rows(const float* x, int64_t ld, bool transposed, int64_t row0, int64_t rows_limit,
                        int64_t col0, int64_t cols_limit, float (&block)[kBlock][kBlock], int64_t* stride,
                        int64_t cols_skipped = 0) {
  if (!transposed && cols_skipped == 0 && row0 + kBlock <= rows_limit && col0 + kBlock <= cols_limit) {
    *stride = ld;
    return x + row0 * ld + col0;
  }
  gather(x, ld, transposed, row0, rows_limit, col0, cols_limit, block, cols_skipped);
  *stride = kBlock;
  return &block[0][0];
}

// A's tiles for row block `mb` and k step `kb`: 16 rows of 32 k per half, row by row.
void pack_a(const float* a, int64_t lda, bool transposed, int64_t m, int64_t k, int64_t mb, int64_t kb,
            uint16_t* tiles, int64_t k_skipped = 0, bool streamed = false) {
  alignas(64) float block[kBlock][kBlock];  // [row][k]
  int64_t stride = 0;
  const float* rows =
      block_rows(a, lda, transposed, mb * kBlock, m, kb * kBlock, k, block, &stride, k_skipped);
  for (int64_t r = 0; r < kBlock; ++r) {
    const Parts low = split(_mm512_loadu_ps(rows + r * stride)),
                high = split(_mm512_loadu_ps(rows + r * stride + 16));
    for (int p = 0; p < 3; ++p)
      store_tile_line(tiles + (p * 2 + r / 16) * kTileElements + (r % 16) * kBlock,
                      _mm512_inserti64x4(_mm512_castsi256_si512(low.part[p]), high.part[p], 1), streamed);
  }
}

// B's tiles for column block `nb` and k step `kb`: row q of a half holds k = 2q, 2q + 1 of its 16
// columns, interleaved.
// column_sums, if not null: the block's 32 column sums over its 32 k, in order.
void pack_b(const float* b, int64_t ldb, bool transposed, int64_t n, int64_t k, int64_t nb, int64_t kb,
            uint16_t* tiles, bool streamed = false, float* column_sums = nullptr) {
  alignas(64) float block[kBlock][kBlock];  // [k][column]
  // op(B)[k][col] = B[k * ldb + col], or B[col * ldb + k] transposed: the block's rows are k here.
  int64_t stride = 0;
  const float* rows = block_rows(b, ldb, transposed, kb * kBlock, k, nb * kBlock, n, block, &stride);
  const auto row = [&](int64_t r, int half) { return _mm512_loadu_ps(rows + r * stride + 16 * half); };
  if (column_sums != nullptr)
    for (int half = 0; half < 2; ++half) {
      __m512 sum = row(0, half);
      for (int64_t r = 1; r < kBlock; ++r) sum = _mm512_add_ps(sum, row(r, half));
      _mm512_storeu_ps(column_sums + 16 * half, sum);
    }
  for (int64_t q = 0; q < kBlock / 2; ++q)
    for (int half = 0; half < 2; ++half) {
      const Parts even = split(row(2 * q, half)), odd = split(row(2 * q + 1, half));
      for (int p = 0; p < 3; ++p) {
        const __m512i pairs = _mm512_or_si512(_mm512_cvtepu16_epi32(even.part[p]),
                                              _mm512_slli_epi32(_mm512_cvtepu16_epi32(odd.part[p]), 16));
        store_tile_line(tiles + (p * 2 + half) * kTileElements + q * kBlock, pairs, streamed);
      }
    }
}

// How a block of C is written.
enum class BlockOutput {
  cached,    // through the cache (C is read again soon, or is small)
  streamed,  // beta = 0 only: full 64-byte lines straight to memory, past the caches (C larger than L2)
};

// C block (mb, nb) = A's row block times B's column block, over all k steps, then into C.
void multiply_block(const uint16_t* a_tiles, const uint16_t* b_tiles, int64_t k_steps, int64_t m, int64_t n,
                    int64_t mb, int64_t nb, float beta, float* c, int64_t ldc, bool transposed_c = false,
                    BlockOutput output = BlockOutput::cached) {
  // a_tiles, b_tiles: the block's tiles from the first k step of this call on
  int64_t row0 = mb * kBlock, col0 = nb * kBlock;
  int64_t rows = std::min(kBlock, m - row0), cols = std::min(kBlock, n - col0);
  float* corner = c + row0 * ldc + col0;
  // The accumulators start from C's block when it is added to (beta = 1; C^T's is added at the end
  // instead, turned back), and from zero otherwise: the sums run in the same order whatever the block's
  // shape, so that a split of the rows among threads does not change them. A whole block moves between C
  // and the tiles directly; edges and C^T go through `block`, zero past C's edge.
  const bool whole = !transposed_c && rows == kBlock && cols == kBlock;
  const bool streamed = whole && output == BlockOutput::streamed && beta == 0.0f;
  const bool in_place = whole && !streamed;
  const bool add_at_end = transposed_c && beta != 0.0f;
  const int64_t stride = ldc * int64_t(sizeof(float));
  alignas(64) float block[kBlock][kBlock];
  if (beta == 0.0f || add_at_end) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
  } else if (in_place) {
    _tile_loadd(0, corner, stride);
    _tile_loadd(1, corner + 16, stride);
    _tile_loadd(2, corner + 16 * ldc, stride);
    _tile_loadd(3, corner + 16 * ldc + 16, stride);
  } else {
    gather(c, ldc, false, row0, m, col0, n, block);
    memory_barrier();
    _tile_loadd(0, &block[0][0], kBlock * 4);
    _tile_loadd(1, &block[0][16], kBlock * 4);
    _tile_loadd(2, &block[16][0], kBlock * 4);
    _tile_loadd(3, &block[16][16], kBlock * 4);
  }
  for (int64_t kb = 0; kb < k_steps; ++kb) {
    const uint16_t* at = a_tiles + kb * kTileHalves * kTileElements;
    const uint16_t* bt = b_tiles + kb * kTileHalves * kTileElements;
    // Parts a_p into tiles 4-5, b_q into 6-7; the smallest products first.
#define RECUR_LOAD_A(p)                           \
  _tile_loadd(4, at + (p)*2 * kTileElements, 64); \
  _tile_loadd(5, at + ((p)*2 + 1) * kTileElements, 64);
#define RECUR_LOAD_B(q)                           \
  _tile_loadd(6, bt + (q)*2 * kTileElements, 64); \
  _tile_loadd(7, bt + ((q)*2 + 1) * kTileElements, 64);
#define RECUR_PRODUCTS     \
  _tile_dpbf16ps(0, 4, 6); \
  _tile_dpbf16ps(1, 4, 7); \
  _tile_dpbf16ps(2, 5, 6); \
  _tile_dpbf16ps(3, 5, 7);
    // clang-format off
    RECUR_LOAD_A(2) RECUR_LOAD_B(0) RECUR_PRODUCTS  // a2 b0
    RECUR_LOAD_A(1) RECUR_PRODUCTS                  // a1 b0
    RECUR_LOAD_B(1) RECUR_PRODUCTS                  // a1 b1
    RECUR_LOAD_A(0) RECUR_PRODUCTS                  // a0 b1
    RECUR_LOAD_B(2) RECUR_PRODUCTS                  // a0 b2
    RECUR_LOAD_B(0) RECUR_PRODUCTS                  // a0 b0
    // clang-format on
#undef RECUR_LOAD_A
#undef RECUR_LOAD_B
#undef RECUR_PRODUCTS
  }
  if (in_place) {
    _tile_stored(0, corner, stride);
    _tile_stored(1, corner + 16, stride);
    _tile_stored(2, corner + 16 * ldc, stride);
    _tile_stored(3, corner + 16 * ldc + 16, stride);
    return;
  }
  _tile_stored(0, &block[0][0], kBlock * 4);
  _tile_stored(1, &block[0][16], kBlock * 4);
  _tile_stored(2, &block[16][0], kBlock * 4);
  _tile_stored(3, &block[16][16], kBlock * 4);
  memory_barrier();
  if (streamed) {  // whole, aligned lines (amx_gemm_core checks the alignment)
    for (int64_t r = 0; r < kBlock; ++r) {
      _mm512_stream_ps(corner + r * ldc, _mm512_load_ps(block[r]));
      _mm512_stream_ps(corner + r * ldc + 16, _mm512_load_ps(block[r] + 16));
    }
    return;
  }
  if (transposed_c) {  // this block of C^T goes to C: turn it, 16 x 16 at a time
    alignas(64) float turned[kBlock][kBlock];
    for (int qr = 0; qr < 2; ++qr)
      for (int qc = 0; qc < 2; ++qc) {
        __m512 lines[16];
        for (int i = 0; i < 16; ++i) lines[i] = _mm512_load_ps(block[16 * qr + i] + 16 * qc);
        transpose16(lines);
        for (int j = 0; j < 16; ++j) _mm512_store_ps(turned[16 * qc + j] + 16 * qr, lines[j]);
      }
    std::memcpy(block, turned, sizeof block);
    std::swap(row0, col0);
    std::swap(rows, cols);
  }
  for (int64_t r = 0; r < rows; ++r) {
    float* out = c + (row0 + r) * ldc + col0;
    for (int half = 0; half < 2 && 16 * half < cols; ++half) {
      const __mmask16 mask = first(cols - 16 * half);
      __m512 sum = _mm512_load_ps(block[r] + 16 * half);
      if (add_at_end) sum = _mm512_add_ps(sum, _mm512_maskz_loadu_ps(mask, out + 16 * half));
      _mm512_mask_storeu_ps(out + 16 * half, mask, sum);
    }
  }
}

// The packed operands of the call in progress, kept by the calling thread from call to call.
struct PackedOperands {
  AlignedVector<uint16_t> a, b;
  AlignedVector<float> partial_sums;  // B's column sums per k step, where asked
};

}  // namespace

void amx_configure_tiles() { configure_tiles(); }

bool amx_enabled() {
  static const bool enabled = [] {
    const char* setting = std::getenv("RECUR_AMX");
    if (setting != nullptr && std::strcmp(setting, "0") == 0) return false;
    return processor_and_kernel_allow();
  }();
  return enabled;
}

namespace {

// The rows of op(A) (the tiles' A) in up to two stacked parts, each with its own C: the paired weight
// gradients share one packed dG (amx_gemm_tn_pair). Each part starts on a whole block.
struct RowPart {
  const float* a;
  int64_t lda, m;
  float* c;
  int64_t ldc;
};

// C_p = op(A_p) op(B) + beta C_p for every part p, as amx_gemm says; transposed_c: C_p^T instead, its
// element (i, j) at c[j * ldc + i].
void amx_gemm_core(Transpose transpose_a, Transpose transpose_b, const std::vector<RowPart>& parts, int64_t n,
                   int64_t k, const float* b, int64_t ldb, float beta, bool transposed_c,
                   float* b_column_sums = nullptr, const uint16_t* prepacked_b = nullptr) {
  // Part p's row blocks are [first_block[p], first_block[p + 1]) of the packed A.
  std::vector<int64_t> first_block{0};
  for (const RowPart& part : parts)
    first_block.push_back(first_block.back() + (part.m + kBlock - 1) / kBlock);
  const auto part_of = [&](int64_t block) {
    size_t p = 0;
    while (block >= first_block[p + 1]) ++p;
    return p;
  };
  const int64_t m_blocks = first_block.back(), n_blocks = (n + kBlock - 1) / kBlock;
  const int64_t k_steps = (k + kBlock - 1) / kBlock;
  const int64_t block_tiles = k_steps * kTileHalves * kTileElements;  // bfloat16s per row or column block
  thread_local PackedOperands packed;
  uint16_t* a_tiles = scratch_of_size(packed.a, size_t(m_blocks * block_tiles));
  // B's tiles: made here, or once beforehand (amx_gemm_prepacked), laid out as pack_b makes them below.
  uint16_t* b_packing =
      prepacked_b == nullptr ? scratch_of_size(packed.b, size_t(n_blocks * block_tiles)) : nullptr;
  const uint16_t* b_tiles = prepacked_b != nullptr ? prepacked_b : b_packing;
  // b_column_sums: op(B)'s column sums over each k step's 32 rows as B is packed, then over the k steps in
  // order (below): the same order at any thread count.
  float* partial_sums = b_column_sums != nullptr
                            ? scratch_of_size(packed.partial_sums, size_t(k_steps * n_blocks * kBlock))
                            : nullptr;
  ThreadPool& pool = ThreadPool::instance();
  // Packing, shared among the threads along the operand's own rows, so that each reads whole rows in
  // order (a transposed A, and B not transposed, lie k-major: k steps outer; the others blocks outer;
  // a 26 MB dG packed column strip by column strip took 1.7x as long). Operands larger than the caches
  // are written past them.
  const bool a_k_major = transpose_a == Transpose::yes, b_k_major = transpose_b == Transpose::no;
  const bool stream_a = m_blocks * block_tiles * 2 >= kStreamedOutputBytes;
  const bool stream_b = prepacked_b == nullptr && n_blocks * block_tiles * 2 >= kStreamedOutputBytes;
  pool.run([&](int index, int count) {
    const FlushDenormals flush;
    const auto pack_all = [&](int64_t blocks, bool k_major, auto&& pack_one) {
      const int64_t outer = k_major ? k_steps : blocks, inner = k_major ? blocks : k_steps;
      for (int64_t i = outer * index / count; i < outer * (index + 1) / count; ++i)
        for (int64_t j = 0; j < inner; ++j) k_major ? pack_one(j, i) : pack_one(i, j);
    };
    pack_all(m_blocks, a_k_major, [&](int64_t q, int64_t kb) {
      const RowPart& part = parts[part_of(q)];
      pack_a(part.a, part.lda, a_k_major, part.m, k, q - first_block[part_of(q)], kb,
             a_tiles + q * block_tiles + kb * kTileHalves * kTileElements, 0, stream_a);
    });
    if (prepacked_b == nullptr)
      pack_all(n_blocks, b_k_major, [&](int64_t q, int64_t kb) {
        pack_b(b, ldb, !b_k_major, n, k, q, kb,
               b_packing + q * block_tiles + kb * kTileHalves * kTileElements, stream_b,
               partial_sums != nullptr ? partial_sums + (kb * n_blocks + q) * kBlock : nullptr);
      });
    if (stream_a || stream_b) _mm_sfence();
  });
  // Threads share C's row blocks or its column blocks, whichever reads fewer tiles per thread: by rows,
  // each thread sweeps all of B once per chunk of its row blocks; by columns, half of B once per chunk of
  // all row blocks, and all of A. An inference's x W_x^T (100 or 400 rows, 2048 columns) reads half as
  // much by columns: 30% faster at 100 rows, 8% at 400 (2 threads).
  const int64_t threads = pool.size();
  const int64_t rows_per_pass =
      std::max<int64_t>(1, kTilesInL2 / (std::min(kChunkSteps, k_steps) * kTileHalves));
  const auto passes = [&](int64_t row_blocks) { return (row_blocks + rows_per_pass - 1) / rows_per_pass; };
  const int64_t read_by_rows = m_blocks / threads + n_blocks * passes((m_blocks + threads - 1) / threads);
  const int64_t read_by_columns = m_blocks + n_blocks / threads * passes(m_blocks);
  const bool by_rows = read_by_rows <= read_by_columns;
  // A C larger than the two L2 caches, written once (one pass over k, beta = 0), is not read back by
  // this product: its lines go straight to memory instead of being read in first (a training step's
  // 26 MB of gates x W_x^T: 10% faster). Rows must start on cache lines.
  const auto output_of = [&](const RowPart& part) {
    const bool streamed = k_steps <= kChunkSteps && beta == 0.0f && !transposed_c &&
                          part.m * n * int64_t(sizeof(float)) >= kStreamedOutputBytes && part.ldc % 16 == 0 &&
                          reinterpret_cast<uintptr_t>(part.c) % 64 == 0;
    return streamed ? BlockOutput::streamed : BlockOutput::cached;
  };
  pool.run([&](int index, int count) {
    if (b_column_sums != nullptr) {
      const auto [begin, end] = line_share(n, index, count);
      for (int64_t j = begin; j < end; ++j) {
        float sum = 0.0f;
        for (int64_t kb = 0; kb < k_steps; ++kb) sum += partial_sums[kb * n_blocks * kBlock + j];
        b_column_sums[j] += sum;
      }
    }
    const int64_t shared = by_rows ? m_blocks : n_blocks;
    const int64_t begin = shared * index / count, end = shared * (index + 1) / count;
    if (end <= begin) return;
    const int64_t mb0 = by_rows ? begin : 0, mb1 = by_rows ? end : m_blocks;
    const int64_t nb0 = by_rows ? 0 : begin, nb1 = by_rows ? n_blocks : end;
    configure_tiles();
    memory_barrier();
    bool streamed = false;
    // k in chunks of at most kChunkSteps (C's blocks summed in memory across them); per chunk, row blocks
    // whose A tiles fit in about 768 KB of L2 (256 rows at k = 512) per pass over B's panels.
    for (int64_t kb0 = 0; kb0 < k_steps; kb0 += kChunkSteps) {
      const int64_t steps = std::min(kChunkSteps, k_steps - kb0);
      const int64_t offset = kb0 * kTileHalves * kTileElements;
      const int64_t chunk = std::max<int64_t>(1, kTilesInL2 / (steps * kTileHalves));
      for (int64_t row_chunk = mb0; row_chunk < mb1; row_chunk += chunk)
        for (int64_t nb = nb0; nb < nb1; ++nb)
          for (int64_t mb = row_chunk; mb < std::min(mb1, row_chunk + chunk); ++mb) {
            const size_t p = part_of(mb);
            const RowPart& part = parts[p];
            const BlockOutput output = output_of(part);
            streamed = streamed || output == BlockOutput::streamed;
            multiply_block(a_tiles + mb * block_tiles + offset, b_tiles + nb * block_tiles + offset, steps,
                           part.m, n, mb - first_block[p], nb, kb0 == 0 ? beta : 1.0f, part.c, part.ldc,
                           transposed_c, output);
          }
    }
    if (streamed) _mm_sfence();  // the streamed lines, before the pool's barrier
    _tile_release();
  });
}

}  // namespace

void amx_gemm(Transpose transpose_a, Transpose transpose_b, int64_t m, int64_t n, int64_t k, const float* a,
              int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  // A^T B (the weight gradients dG^T x): both operands lie k-major, and the tile unit's A operand must
  // be turned as it is packed. Turn the smaller one: C^T = B^T A, with B as the tiles' A.
  if (transpose_a == Transpose::yes && transpose_b == Transpose::no && n < m)
    return amx_gemm_core(Transpose::yes, Transpose::no, {{b, ldb, n, c, ldc}}, m, k, a, lda, beta, true);
  amx_gemm_core(transpose_a, transpose_b, {{a, lda, m, c, ldc}}, n, k, b, ldb, beta, false);
}

void amx_gemm_prepacked(int64_t m, const float* a, int64_t lda, const AmxWeights& w, float beta, float* c,
                        int64_t ldc) {
  // One block of transposed-layout weights: its groups are amx_gemm's packed B of op(B) = W^T, in order.
  amx_gemm_core(Transpose::no, Transpose::yes, {{a, lda, m, c, ldc}}, w.block_cols, w.depth, nullptr, 0, beta,
                false, nullptr, w.tiles.data());
}

void amx_weight_gradients(int64_t m, int64_t k, const float* a, int64_t lda,
                          std::span<const WeightGradient> products, float* column_sums) {
  // C_p^T = B_p^T A, turned as amx_gemm turns one such product: the B_p stacked as the tiles' A, A packed
  // once as their B.
  std::vector<RowPart> parts;
  for (const WeightGradient& p : products) parts.push_back({p.b, p.ldb, p.n, p.c, p.ldc});
  amx_gemm_core(Transpose::yes, Transpose::no, parts, m, k, a, lda, 1.0f, true, column_sums);
}

void amx_pack_weights(const float* w, int64_t ldw, bool transposed_layout, int64_t blocks, int64_t block_cols,
                      int64_t depth, AmxWeights& out) {
  out.blocks = blocks;
  out.block_cols = block_cols;
  out.depth = depth;
  out.groups = (block_cols + kBlock - 1) / kBlock;
  out.k_steps = (depth + kBlock - 1) / kBlock;
  const int64_t group_tiles = out.k_steps * kTileHalves * kTileElements;
  uint16_t* tiles = scratch_of_size(out.tiles, size_t(blocks * out.groups * group_tiles));
  ThreadPool::instance().run([&](int index, int count) {
    const int64_t total = blocks * out.groups;
    for (int64_t q = total * index / count; q < total * (index + 1) / count; ++q) {
      const int64_t g = q / out.groups, group = q % out.groups;
      // op(W) of block g: [depth][block_cols]
      const float* block = transposed_layout ? w + g * block_cols * ldw : w + g * block_cols;
      for (int64_t kb = 0; kb < out.k_steps; ++kb)
        pack_b(block, ldw, transposed_layout, block_cols, depth, group, kb,
               tiles + q * group_tiles + kb * kTileHalves * kTileElements);
    }
  });
}

void amx_multiply_weights(const AmxWeights& w, int64_t m, const float* a, int64_t lda, int64_t block_begin,
                          int64_t block_end, int64_t group_begin, int64_t group_end, int64_t k_begin,
                          int64_t k_end, float beta, float* c, int64_t ldc) {
  if (m <= 0 || group_end <= group_begin || block_end <= block_begin) return;
  // The weights' k steps start at multiples of 32: A's columns are placed `shift` into the first one,
  // after zeros.
  const int64_t shift = k_begin % kBlock, kb0 = k_begin / kBlock;
  const int64_t k_steps = (shift + k_end - k_begin + kBlock - 1) / kBlock;
  const int64_t m_blocks = (m + kBlock - 1) / kBlock;
  const int64_t a_block_tiles = k_steps * kTileHalves * kTileElements;
  // A's rows split on this thread (each thread of a step splits the rows it needs).
  thread_local AlignedVector<uint16_t> a_tiles;
  scratch_of_size(a_tiles, size_t(m_blocks * a_block_tiles));
  const FlushDenormals flush;
  for (int64_t mb = 0; mb < m_blocks; ++mb)
    for (int64_t kb = 0; kb < k_steps; ++kb)
      pack_a(a - shift, lda, false, m, shift + k_end - k_begin, mb, kb,
             a_tiles.data() + mb * a_block_tiles + kb * kTileHalves * kTileElements, shift);
  const int64_t group_tiles = w.k_steps * kTileHalves * kTileElements;
  configure_tiles();
  memory_barrier();
  for (int64_t g = block_begin; g < block_end; ++g)
    for (int64_t group = group_begin; group < group_end; ++group) {
      const uint16_t* b_tiles =
          w.tiles.data() + (g * w.groups + group) * group_tiles + kb0 * kTileHalves * kTileElements;
      // C's columns of this group, as a 32-wide block at column 0 of `out`.
      float* out = c + (g - block_begin) * w.block_cols + group * kBlock;
      const int64_t cols = std::min(kBlock, w.block_cols - group * kBlock);
      for (int64_t mb = 0; mb < m_blocks; ++mb)
        multiply_block(a_tiles.data() + mb * a_block_tiles, b_tiles, k_steps, m, cols, mb, 0, beta, out, ldc);
    }
  _tile_release();
}
}  // namespace recur::kernels

#else  // a compiler without the AMX flags: amx_enabled() is false, and nothing else is ever called

#include <cstdlib>

namespace recur::kernels {

bool amx_enabled() { return false; }

void amx_configure_tiles() { std::abort(); }

void amx_gemm(Transpose, Transpose, int64_t, int64_t, int64_t, const float*, int64_t, const float*, int64_t,
              float, float*, int64_t) {
  std::abort();
}

void amx_gemm_prepacked(int64_t, const float*, int64_t, const AmxWeights&, float, float*, int64_t) {
  std::abort();
}

void amx_weight_gradients(int64_t, int64_t, const float*, int64_t, std::span<const WeightGradient>, float*) {
  std::abort();
}

void amx_pack_weights(const float*, int64_t, bool, int64_t, int64_t, int64_t, AmxWeights&) { std::abort(); }

void amx_multiply_weights(const AmxWeights&, int64_t, const float*, int64_t, int64_t, int64_t, int64_t,
                          int64_t, int64_t, int64_t, float, float*, int64_t) {
  std::abort();
}

}  // namespace recur::kernels

#endif
