#pragma once
// The post-GEMM kernels, written once against simd.hpp's vector type V. Included by post_gemm_<isa>.cpp,
// each compiled with its own instruction-set flags, inside its own namespace.
#include "kernels/packed_gemm_impl.hpp"
#include "kernels/post_gemm.hpp"
#include "kernels/simd.hpp"

#if defined(__SSE__)
#include <immintrin.h>
#endif

namespace recur::kernels::RECUR_POST_GEMM_NAMESPACE {

using simd::Scalar;

// body.operator()<W>(j) for units j..j+W-1: W = V over the full vectors of a row, Scalar for the tail.
template <class V, class Body>
inline void for_each_unit(int64_t count, Body&& body) {
  int64_t j = 0;
  for (; j + V::width <= count; j += V::width) body.template operator()<V>(j);
  for (; j < count; ++j) body.template operator()<Scalar>(j);
}

// h(t)'s value for units j.. of `row`, stored to h and to its copies.
template <class W>
inline void store_hidden(W value, float* h, int64_t j, const HiddenCopies& copies, int64_t row, int64_t H) {
  value.store(h + j);
  if (copies.y != nullptr) value.store(copies.y + row * copies.ldy + j);
  if (copies.next != nullptr && row < copies.next_rows) value.store(copies.next + row * H + j);
}

// dL/dh(t) for units j.. of a row: the gradient from later steps, plus the output's (dy_row, if any).
template <class W>
inline W load_dh(const float* dh_row, const float* dy_row, int64_t j) {
  return dy_row != nullptr ? W::load(dh_row + j) + W::load(dy_row + j) : W::load(dh_row + j);
}

// Whether a forward pass streams its saved values (post_gemm.hpp): asked, and every vector store of them on
// 64 bytes (rows, the gate blocks and the thread's first unit).
inline bool streams_saved(bool asked, const float* saved, int64_t saved_ld, int64_t H, int64_t unit_begin) {
  return asked && saved != nullptr && reinterpret_cast<uintptr_t>(saved) % 64 == 0 && saved_ld % 16 == 0 &&
         H % 16 == 0 && unit_begin % 16 == 0;
}

template <class W>
inline void save(W value, float* p, bool streamed) {
  if (streamed)
    value.stream(p);
  else
    value.store(p);
}

// Streamed stores are ordered with the pool's hand-over only by a fence.
inline void end_streamed_saves(bool streamed) {
#if defined(__SSE__)
  if (streamed) _mm_sfence();
#else
  (void)streamed;
#endif
}

template <class V>
void lstm_forward(const LstmForwardRows& a) {
  const int64_t H = a.hidden, width = (a.coupled ? 3 : 4) * H;
  // Gate block offsets: i, f, g, o, or i, g, o when coupled; peepholes i, f, o or i, o.
  const int64_t gi = 0, gf = H, gg = a.coupled ? H : 2 * H, go = a.coupled ? 2 * H : 3 * H;
  const int64_t po = a.coupled ? H : 2 * H;
  const float *b = a.b_h, *bx = a.b_x;
  const float* p = a.peephole;
  const int64_t u0 = a.unit_begin, u1 = a.unit_end > 0 ? a.unit_end : H;
  const bool streamed = streams_saved(a.saved_streamed, a.saved, a.saved_ld, H, u0);
  for (int64_t row = 0; row < a.rows; ++row) {
    const float* x = a.gates + row * width;
    float* c = a.c + row * H;
    float* h = a.h + row * H;
    float* saved = a.saved != nullptr ? a.saved + row * a.saved_ld : nullptr;
    for_each_unit<V>(u1 - u0, [&]<class W>(int64_t unit) {
      const int64_t j = u0 + unit;
      const W one = W::set(1.0f);
      const W c_prev = W::load(c + j);
      // The pre-activation of gate block k: products + (b_x + b_h).
      const auto pre = [&](int64_t k) {
        return W::load(x + k + j) + (bx ? W::load(bx + k + j) + W::load(b + k + j) : W::load(b + k + j));
      };
      W ai = pre(gi);
      if (p) ai = fma(W::load(p + j), c_prev, ai);
      const W i = simd::sigmoid(ai);
      W f = one - i;
      if (!a.coupled) {
        W af = pre(gf);
        if (p) af = fma(W::load(p + H + j), c_prev, af);
        f = simd::sigmoid(af);
      }
      const W g = simd::tanh(pre(gg));
      const W c_new = fma(f, c_prev, i * g);
      W ao = pre(go);
      if (p) ao = fma(W::load(p + po + j), c_new, ao);
      const W o = simd::sigmoid(ao);
      const W tanh_c = simd::tanh(c_new);
      c_new.store(c + j);
      store_hidden(o * tanh_c, h, j, a.copies, row, H);
      if (saved) {
        save(i, saved + gi + j, streamed);
        if (!a.coupled) save(f, saved + gf + j, streamed);
        save(g, saved + gg + j, streamed);
        save(o, saved + go + j, streamed);
        save(c_prev, saved + width + j, streamed);
        save(c_new, saved + width + H + j, streamed);
        save(tanh_c, saved + width + 2 * H + j, streamed);
      }
    });
  }
  end_streamed_saves(streamed);
}

template <class V>
void lstm_backward(const LstmBackwardRows& a) {
  const int64_t H = a.hidden, width = (a.coupled ? 3 : 4) * H;
  const int64_t gi = 0, gf = H, gg = a.coupled ? H : 2 * H, go = a.coupled ? 2 * H : 3 * H;
  const int64_t po = a.coupled ? H : 2 * H;
  const float* p = a.peephole;
  float* dp = a.dpeephole;
  for (int64_t row = 0; row < a.rows; ++row) {
    const float* saved = a.saved + row * a.saved_ld;
    const float* dh = a.dh + row * H;
    const float* dy = a.dy != nullptr ? a.dy + row * a.ldy : nullptr;
    float* dc = a.dc + row * H;
    float* da = a.dgates + row * width;
    for_each_unit<V>(H, [&]<class W>(int64_t j) {
      const W one = W::set(1.0f);
      const W i = W::load(saved + gi + j), g = W::load(saved + gg + j), o = W::load(saved + go + j);
      const W f = a.coupled ? one - i : W::load(saved + gf + j);
      const W c_prev = W::load(saved + width + j), c_new = W::load(saved + width + H + j);
      const W tanh_c = W::load(saved + width + 2 * H + j);
      const W dh_j = load_dh<W>(dh, dy, j);
      const W da_o = dh_j * tanh_c * o * (one - o);
      W dc_total = fma(dh_j * o, one - tanh_c * tanh_c, W::load(dc + j));
      if (p) dc_total = fma(da_o, W::load(p + po + j), dc_total);
      const W da_g = dc_total * i * (one - g * g);
      const W df = dc_total * c_prev;
      const W di = a.coupled ? dc_total * g - df : dc_total * g;
      const W da_i = di * i * (one - i);
      W dc_prev = dc_total * f;
      if (!a.coupled) {
        const W da_f = df * f * (one - f);
        da_f.store(da + gf + j);
        if (p) {
          dc_prev = fma(da_f, W::load(p + H + j), dc_prev);
          fma(da_f, c_prev, W::load(dp + H + j)).store(dp + H + j);
        }
      }
      if (p) {
        dc_prev = fma(da_i, W::load(p + j), dc_prev);
        fma(da_i, c_prev, W::load(dp + j)).store(dp + j);
        fma(da_o, c_new, W::load(dp + po + j)).store(dp + po + j);
      }
      dc_prev.store(dc + j);
      da_i.store(da + gi + j);
      da_g.store(da + gg + j);
      da_o.store(da + go + j);
    });
  }
}

template <class V>
void sigmoid_sum(const SigmoidSumRows& a) {
  for (int64_t row = 0; row < a.rows; ++row) {
    float* x = a.a + row * a.lda;
    const float* y = a.b + row * a.ldb;
    for_each_unit<V>(a.width, [&]<class W>(int64_t j) {
      const W bias = a.bias_x ? W::load(a.bias_x + j) + W::load(a.bias + j) : W::load(a.bias + j);
      simd::sigmoid(W::load(x + j) + W::load(y + j) + bias).store(x + j);
    });
  }
}

template <class V>
void gru_output(const GruOutputRows& a) {
  const int64_t H = a.hidden;
  const int64_t u0 = a.unit_begin, u1 = a.unit_end > 0 ? a.unit_end : H;
  const bool streamed = streams_saved(a.saved_streamed, a.saved, 4 * H, H, u0);
  for (int64_t row = 0; row < a.rows; ++row) {
    const float* x = a.gates + row * 3 * H;
    const float* ah_n = a.ah_n + row * a.ld_ah;
    float* h = a.h + row * H;
    float* saved = a.saved != nullptr ? a.saved + row * 4 * H : nullptr;
    for_each_unit<V>(u1 - u0, [&]<class W>(int64_t unit) {
      const int64_t j = u0 + unit;
      const W r = W::load(x + j), z = W::load(x + H + j),
              ax_n = a.b_xn ? W::load(x + 2 * H + j) + W::load(a.b_xn + j) : W::load(x + 2 * H + j);
      const W ah = W::load(ah_n + j) + W::load(a.b_hn + j);
      const W n = simd::tanh(a.reset_after ? fma(r, ah, ax_n) : ax_n + ah);
      const W h_prev = W::load(h + j);
      store_hidden(fma(z, h_prev - n, n), h, j, a.copies, row, H);  // (1 - z) n + z h(t-1)
      if (saved) {
        save(r, saved + j, streamed);
        save(z, saved + H + j, streamed);
        save(n, saved + 2 * H + j, streamed);
        save(a.reset_after ? ah : W::load(a.rh + row * a.ld_ah + j), saved + 3 * H + j, streamed);
      }
    });
  }
  end_streamed_saves(streamed);
}

template <class V>
void gru_backward(const GruBackwardRows& a) {
  const int64_t H = a.hidden;
  for (int64_t row = 0; row < a.rows; ++row) {
    const float* saved = a.saved + row * 4 * H;
    const float* h_prev = a.h_prev + row * H;
    float* dh = a.dh + row * H;
    const float* dy = a.dy != nullptr ? a.dy + row * a.ldy : nullptr;
    float* dgx = a.dgates_x + row * 3 * H;
    float* dgh = a.reset_after ? a.dgates_h + row * 3 * H : nullptr;
    for_each_unit<V>(H, [&]<class W>(int64_t j) {
      const W one = W::set(1.0f);
      const W r = W::load(saved + j), z = W::load(saved + H + j), n = W::load(saved + 2 * H + j);
      const W d = load_dh<W>(dh, dy, j);
      const W da_n = d * (one - z) * (one - n * n);
      const W da_z = d * (W::load(h_prev + j) - n) * (z * (one - z));
      da_z.store(dgx + H + j);
      da_n.store(dgx + 2 * H + j);
      if (dgh != nullptr) {
        const W da_r = da_n * W::load(saved + 3 * H + j) * (r * (one - r));
        da_r.store(dgx + j);
        da_r.store(dgh + j);
        da_z.store(dgh + H + j);
        (da_n * r).store(dgh + 2 * H + j);
      }
      (d * z).store(dh + j);  // the direct path h(t-1) -> h(t)
    });
  }
}

template <class V>
void rnn_backward(const RnnBackwardRows& a) {
  const int64_t H = a.hidden;
  for (int64_t row = 0; row < a.rows; ++row) {
    const float* h = a.saved + row * H;
    const float* dh = a.dh + row * H;
    const float* dy = a.dy != nullptr ? a.dy + row * a.ldy : nullptr;
    float* da = a.dgates + row * H;
    for_each_unit<V>(H, [&]<class W>(int64_t j) {
      const W out = W::load(h + j), d = load_dh<W>(dh, dy, j);
      // relu: 1 where h > 0, else 0; tanh: 1 - h^2.
      (a.relu ? select_positive(out, d) : d * (W::set(1.0f) - out * out)).store(da + j);
    });
  }
}

template <class V>
void rnn_forward(const RnnForwardRows& a) {
  const int64_t H = a.hidden;
  const int64_t u0 = a.unit_begin, u1 = a.unit_end > 0 ? a.unit_end : H;
  const bool streamed = streams_saved(a.saved_streamed, a.saved, H, H, u0);
  for (int64_t row = 0; row < a.rows; ++row) {
    const float* x = a.gates + row * H;
    float* h = a.h + row * H;
    for_each_unit<V>(u1 - u0, [&]<class W>(int64_t unit) {
      const int64_t j = u0 + unit;
      const W pre = W::load(x + j) + (a.b_x ? W::load(a.b_x + j) + W::load(a.b_h + j) : W::load(a.b_h + j));
      const W out = a.relu ? select_positive(pre, pre) : simd::tanh(pre);
      store_hidden(out, h, j, a.copies, row, H);
      if (a.saved) save(out, a.saved + row * H + j, streamed);
    });
  }
  end_streamed_saves(streamed);
}

// Rows of W in blocks of WB (8 for 1-2 rows of A, 4 for 3-4, to stay within the registers), each
// streamed once; ROWS (1..4) rows of A; WB x ROWS vector accumulators, summed 8 at a time (V::sum8: at
// H = 256 a row of W is only 16 vectors, and one reduction per row cost as much as its products).
template <class V, int ROWS>
void small_gemm_block(const SmallGemmRows& a) {
  constexpr int WB = ROWS <= 2 ? 8 : 4;
  const int64_t K = a.k, k_vector = K - K % V::width;
  const auto finish = [&](int64_t n, int r, float total) {
    for (int64_t k = k_vector; k < K; ++k) total += a.w[n * a.ldw + k] * a.a[r * a.lda + k];
    float& out = a.c[r * a.ldc + n];
    out = a.beta == 0.0f ? total : out + total;
  };
  int64_t n = a.n_begin;
  for (; n + WB <= a.n_end; n += WB) {
    V acc[ROWS][WB];
    for (auto& per_row : acc)
      for (V& v : per_row) v = V::set(0.0f);
    for (int64_t k = 0; k < k_vector; k += V::width) {
      V x[ROWS];
      for (int r = 0; r < ROWS; ++r) x[r] = V::load(a.a + r * a.lda + k);
      for (int i = 0; i < WB; ++i) {
        const V w = V::load(a.w + (n + i) * a.ldw + k);
        for (int r = 0; r < ROWS; ++r) acc[r][i] = fma(w, x[r], acc[r][i]);
        // The next block's rows, a line at a time: at H = 256 a row is only 16 lines, too short a
        // stream for the hardware prefetcher to catch up (78 GB/s from L2 without, against 139 at H = 512).
        __builtin_prefetch(a.w + (n + WB + i) * a.ldw + k);
      }
    }
    if constexpr (WB == 8) {
      for (int r = 0; r < ROWS; ++r) {
        float totals[8];
        V::sum8(acc[r], totals);
        for (int i = 0; i < WB; ++i) finish(n + i, r, totals[i]);
      }
    } else {  // two rows of A per reduction of 8: the epilogue was a third of a block's time at B = 4
      for (int r = 0; r < ROWS; r += 2) {
        V pair[8];
        for (int i = 0; i < WB; ++i) {
          pair[i] = acc[r][i];
          pair[WB + i] = r + 1 < ROWS ? acc[r + 1][i] : V::set(0.0f);
        }
        float totals[8];
        V::sum8(pair, totals);
        for (int i = 0; i < WB; ++i) {
          finish(n + i, r, totals[i]);
          if (r + 1 < ROWS) finish(n + i, r + 1, totals[WB + i]);
        }
      }
    }
  }
  for (; n < a.n_end; ++n)  // the last rows of W of an uneven share
    for (int r = 0; r < ROWS; ++r) {
      V acc = V::set(0.0f);
      for (int64_t k = 0; k < k_vector; k += V::width)
        acc = fma(V::load(a.w + n * a.ldw + k), V::load(a.a + r * a.lda + k), acc);
      finish(n, r, acc.sum());
    }
}

template <class V>
void small_gemm_nt(const SmallGemmRows& a) {
  switch (a.rows) {
    case 1:
      return small_gemm_block<V, 1>(a);
    case 2:
      return small_gemm_block<V, 2>(a);
    case 3:
      return small_gemm_block<V, 3>(a);
    case 4:
      return small_gemm_block<V, 4>(a);
    default:
      return;
  }
}

template <class V>
const PostGemmKernels* kernels(const char* name) {
  // The portable build has no packed micro-kernel: with one float per "vector" it would lose to BLAS.
  constexpr bool packed = V::width > 1;
  static const PostGemmKernels table{name,
                                     lstm_forward<V>,
                                     lstm_backward<V>,
                                     sigmoid_sum<V>,
                                     gru_output<V>,
                                     gru_backward<V>,
                                     rnn_backward<V>,
                                     rnn_forward<V>,
                                     small_gemm_nt<V>,
                                     packed ? PackedShape<V>::nr : 0,
                                     packed ? PackedShape<V>::mr : 0,
                                     packed ? packed_gemm<V> : nullptr};
  return &table;
}

}  // namespace recur::kernels::RECUR_POST_GEMM_NAMESPACE
