#pragma once
// The fused element-wise ("post-GEMM") kernels of the cells: everything of a step that is not a GEMM and
// touches transcendental functions. One implementation (post_gemm_impl.hpp) compiled for AVX-512, AVX2
// and plain C++; post_gemm() returns the best the processor supports, chosen once.
// Rows are consecutive; a row of gates holds the G gate blocks of H units each.
#include <cstdint>

namespace recur::kernels {

// Where a step's forward pass also writes h(t), as it computes it: the layer's output rows y, and the
// tape's h(t-1) of the next step for its first next_rows rows (those still live then). Either may be
// null. Rows are those of the pass (row r of h goes to y + r ldy and, if r < next_rows, next + r H).
struct HiddenCopies {
  float* y = nullptr;
  int64_t ldy = 0;
  float* next = nullptr;
  int64_t next_rows = 0;
};

// The tape's saved values are written by a training pass's forward steps and read only by backward, after
// every step. Where the driver finds the tape larger than the caches (saved_streamed), the forward passes
// write them past the caches, if every vector of them starts on 64 bytes: they would otherwise be read in
// from memory before being overwritten (b_db512's LSTM: 458 KB per step and thread, 20-25% of a step).

// LSTM family forward, per unit j (cells/lstm_cell.cpp has the equations):
// gates (x W_x^T + h W_h^T, without biases) in; c, h updated; saved = [i, (f), g, o | c(t-1) | c(t) | tanh
// c(t)] when not null.
struct LstmForwardRows {
  int64_t rows = 0, hidden = 0;
  bool coupled = false;
  const float* b_x = nullptr;       // [G*H] or nullptr (none)
  const float* b_h = nullptr;       // [G*H]
  const float* peephole = nullptr;  // [P*H] or nullptr
  const float* gates = nullptr;     // [rows, G*H]
  float* c = nullptr;               // [rows, H]
  float* h = nullptr;               // [rows, H]
  float* saved = nullptr;           // [rows, saved_ld] or nullptr
  int64_t saved_ld = 0;
  bool saved_streamed = false;  // see below
  // Only units [unit_begin, unit_end) of every row (one thread's share); unit_end 0: all H.
  int64_t unit_begin = 0, unit_end = 0;
  HiddenCopies copies = {};
};

struct LstmBackwardRows {
  int64_t rows = 0, hidden = 0;
  bool coupled = false;
  const float* peephole = nullptr;  // [P*H] or nullptr
  float* dpeephole = nullptr;       // [P*H] accumulated into, row by row (fixed order)
  const float* saved = nullptr;     // [rows, saved_ld] as forward wrote it
  int64_t saved_ld = 0;
  const float* dh = nullptr;  // [rows, H]
  float* dc = nullptr;        // [rows, H] dL/dc(t) in, dL/dc(t-1) out
  float* dgates = nullptr;    // [rows, G*H] out
  const float* dy = nullptr;  // [rows, ldy] dL/dy(t), added to dh as it is read, or nullptr
  int64_t ldy = 0;
};

// out[k] = sigmoid(a[k] + b[k] + (bias_x[k] + bias[k])) for k < width, per row (GRU's r and z).
struct SigmoidSumRows {
  int64_t rows = 0, width = 0;
  const float* bias = nullptr;  // [width]
  const float* b = nullptr;     // [rows, ldb]
  int64_t ldb = 0;
  float* a = nullptr;  // [rows, lda] in place
  int64_t lda = 0;
  const float* bias_x = nullptr;  // [width] or nullptr (none)
};

// GRU's output: n = tanh(ax_n + b_xn + (after ? r * (ah_n + b_hn) : ah_n + b_hn)); h = (1 - z) n + z h.
// saved = [r, z, n, after ? ah_n + b_hn : r * h(t-1)] when not null (r * h(t-1) is read from rh).
struct GruOutputRows {
  int64_t rows = 0, hidden = 0;
  bool reset_after = true;
  const float* b_xn = nullptr;   // [H] or nullptr (none)
  const float* b_hn = nullptr;   // [H]
  const float* gates = nullptr;  // [rows, 3H]: r, z, ax_n (without b_xn)
  const float* ah_n = nullptr;   // [rows, ld_ah] without b_hn
  const float* rh = nullptr;     // [rows, ld_ah] reset before only
  int64_t ld_ah = 0;
  float* h = nullptr;                    // [rows, H]
  float* saved = nullptr;                // [rows, 4H] or nullptr
  bool saved_streamed = false;           // as in LstmForwardRows
  int64_t unit_begin = 0, unit_end = 0;  // as in LstmForwardRows
  HiddenCopies copies = {};
};

// GRU backward through the gates, per unit (cells/gru_cell.cpp has the equations), from saved = [r, z, n,
// ah_n + b_hn (after) | r h(t-1) (before)]: dgates_x's z and n blocks, and for reset after its r block
// and all of dgates_h; dh becomes its direct share dh z. (Reset before: r's gradient needs the product
// d(rh) = da_n W_hn first, so the cell finishes it.)
struct GruBackwardRows {
  int64_t rows = 0, hidden = 0;
  bool reset_after = true;
  const float* saved = nullptr;   // [rows, 4H]
  const float* h_prev = nullptr;  // [rows, H]
  float* dh = nullptr;            // [rows, H] in dL/dh(t), out dL/dh(t) z
  float* dgates_x = nullptr;      // [rows, 3H]
  float* dgates_h = nullptr;      // [rows, 3H], reset after only
  const float* dy = nullptr;      // as in LstmBackwardRows
  int64_t ldy = 0;
};

// Elman RNN: h = act(a + (b_x + b_h)); relu or tanh; saved = h when not null.
struct RnnForwardRows {
  int64_t rows = 0, hidden = 0;
  bool relu = false;
  const float* b_h = nullptr;
  const float* gates = nullptr;  // [rows, H]
  float* h = nullptr;
  float* saved = nullptr;
  bool saved_streamed = false;           // as in LstmForwardRows
  int64_t unit_begin = 0, unit_end = 0;  // as in LstmForwardRows
  const float* b_x = nullptr;            // or nullptr (none)
  HiddenCopies copies = {};
};

// Elman RNN backward through the activation: dgates = dh act'(h), from h = saved.
struct RnnBackwardRows {
  int64_t rows = 0, hidden = 0;
  bool relu = false;
  const float* saved = nullptr;  // [rows, H] h(t)
  const float* dh = nullptr;     // [rows, H]
  float* dgates = nullptr;       // [rows, H]
  const float* dy = nullptr;     // as in LstmBackwardRows
  int64_t ldy = 0;
};

// The recurrent product of a small batch, for output columns [n_begin, n_end) only (one thread's share):
// C[r, n] = beta C[r, n] + sum_k A[r, k] W[n, k]. Each row of W is read once for all rows of A.
struct SmallGemmRows {
  int64_t rows = 0, k = 0;  // rows <= kSmallGemmMaxRows
  int64_t n_begin = 0, n_end = 0;
  const float* a = nullptr;  // [rows, lda]
  int64_t lda = 0;
  const float* w = nullptr;  // [N, ldw]
  int64_t ldw = 0;
  float beta = 1.0f;   // 0 or 1
  float* c = nullptr;  // [rows, ldc]
  int64_t ldc = 0;
};
constexpr int64_t kSmallGemmMaxRows = 4;
// Below this many multiply-adds a small-batch product runs on one thread: a second costs more than it saves.
constexpr int64_t kParallelSmallGemmMultiplyAdds = int64_t(1) << 16;
// C[m, n] = A[m, k] W[n, k]^T + beta C as SmallGemmRows, over no columns yet (n_begin = n_end = 0).
inline SmallGemmRows small_gemm_rows(int64_t m, int64_t k, const float* a, int64_t lda, const float* w,
                                     int64_t ldw, float beta, float* c, int64_t ldc) {
  return {.rows = m, .k = k, .a = a, .lda = lda, .w = w, .ldw = ldw, .beta = beta, .c = c, .ldc = ldc};
}

// One thread's share of C (+)= A B with B packed in column panels (kernels/packed_gemm.hpp has the
// layout): panels [panel_begin, panel_end), counted from the first used block. Panel p holds the
// columns q*NR .. q*NR+NR-1 of block g = p / panels_per_block (q = p % panels_per_block) as
// [depth][NR] floats, zero beyond the block's last column; its columns in C start at g*block_cols + q*NR.
struct PackedGemmPanels {
  int64_t rows = 0, depth = 0;  // m, and the k that A and the panels share
  const float* a = nullptr;     // [rows, lda]
  int64_t lda = 0;
  const float* panels = nullptr;  // the first used k of panel 0
  int64_t panel_stride = 0;       // floats from one panel to the next
  int64_t block_cols = 0, panels_per_block = 0;
  int64_t panel_begin = 0, panel_end = 0;
  float beta = 0.0f;   // 0 or 1
  float* c = nullptr;  // [rows, ldc]
  int64_t ldc = 0;
};

struct PostGemmKernels {
  const char* instruction_set;
  void (*lstm_forward)(const LstmForwardRows&);
  void (*lstm_backward)(const LstmBackwardRows&);
  void (*sigmoid_sum)(const SigmoidSumRows&);
  void (*gru_output)(const GruOutputRows&);
  void (*gru_backward)(const GruBackwardRows&);
  void (*rnn_backward)(const RnnBackwardRows&);
  void (*rnn_forward)(const RnnForwardRows&);
  void (*small_gemm_nt)(const SmallGemmRows&);
  // The packed GEMM's micro-kernels, and their panel width NR (0 and nullptr in the portable build,
  // which leaves those products to BLAS).
  int64_t packed_panel_width, packed_row_block;
  void (*packed_gemm)(const PackedGemmPanels&);
};

// The kernels for this processor: AVX-512 if it has AVX512F, else AVX2 with FMA, else plain C++.
// RECUR_ISA=avx512|avx2|scalar in the environment forces a (supported) choice, for tests and benchmarks.
const PostGemmKernels& post_gemm();

// Each compiled for its instruction set; nullptr from those the build could not compile.
const PostGemmKernels* post_gemm_avx512();
const PostGemmKernels* post_gemm_avx2();
const PostGemmKernels* post_gemm_scalar();

}  // namespace recur::kernels
