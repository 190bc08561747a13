#pragma once
// A small vector type for the element-wise kernels, one definition per instruction set. The kernels in
// post_gemm_impl.hpp are written once against it and compiled three times (post_gemm_avx512.cpp,
// post_gemm_avx2.cpp with the matching -m flags, post_gemm_scalar.cpp); the dispatcher picks one at start.
// Scalar is always defined: kernels use it for the tail of a row that is not a multiple of the width.
//
// Only compiler builtins, no std:: functions: an out-of-line copy of an inline std:: function compiled
// with -mavx512f could be picked by the linker for the portable path (in unoptimised builds).
// exp, sigmoid and tanh are computed the same way at every width (Cephes' polynomials, about 1 ulp for
// exp; tanh absolute error ~1e-7), so that the scalar tail and the vector body agree.
#include <cstdint>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

// Everything here is inline and compiled under different -m flags in different files, so it lives in a
// namespace of each file's own (RECUR_POST_GEMM_NAMESPACE): one definition per instruction set, never mixed
// by the linker.
#ifndef RECUR_POST_GEMM_NAMESPACE
#error "define RECUR_POST_GEMM_NAMESPACE before including simd.hpp"
#endif

namespace recur::kernels::RECUR_POST_GEMM_NAMESPACE::simd {

struct Scalar {
  static constexpr int width = 1;
  float v;
  static Scalar load(const float* p) { return {*p}; }
  static Scalar set(float x) { return {x}; }
  void store(float* p) const { *p = v; }
  void stream(float* p) const { *p = v; }
  float sum() const { return v; }
  // out[i] = v[i].sum() for 8 vectors at once (the vector types share the shuffles among them).
  static void sum8(const Scalar v[8], float out[8]) {
    for (int i = 0; i < 8; ++i) out[i] = v[i].v;
  }
  friend Scalar operator+(Scalar a, Scalar b) { return {a.v + b.v}; }
  friend Scalar operator-(Scalar a, Scalar b) { return {a.v - b.v}; }
  friend Scalar operator*(Scalar a, Scalar b) { return {a.v * b.v}; }
  friend Scalar operator/(Scalar a, Scalar b) { return {a.v / b.v}; }
  friend Scalar fma(Scalar a, Scalar b, Scalar c) { return {__builtin_fmaf(a.v, b.v, c.v)}; }
  friend Scalar min(Scalar a, Scalar b) { return {a.v < b.v ? a.v : b.v}; }
  friend Scalar max(Scalar a, Scalar b) { return {a.v > b.v ? a.v : b.v}; }
  friend Scalar abs(Scalar a) { return {__builtin_fabsf(a.v)}; }
  friend Scalar round_nearest(Scalar a) { return {__builtin_nearbyintf(a.v)}; }
  // 2^n for integral n in [-126, 127].
  friend Scalar pow2(Scalar n) {
    const int32_t exponent = n.v == n.v ? static_cast<int32_t>(n.v) : 0;  // NaN: any value, p is NaN anyway
    const int32_t bits = (exponent + 127) << 23;
    float out;
    __builtin_memcpy(&out, &bits, sizeof out);
    return {out};
  }
  // mask ? a : b, with the masks below.
  friend Scalar select_less(Scalar x, Scalar limit, Scalar a, Scalar b) { return x.v < limit.v ? a : b; }
  friend Scalar select_positive(Scalar x, Scalar a) { return {x.v > 0.0f ? a.v : 0.0f}; }
  friend Scalar copy_sign(Scalar magnitude, Scalar sign) {
    return {__builtin_copysignf(magnitude.v, sign.v)};
  }
};

#if defined(__AVX512F__)
struct Avx512 {
  static constexpr int width = 16;
  __m512 v;
  static Avx512 load(const float* p) { return {_mm512_loadu_ps(p)}; }
  static Avx512 set(float x) { return {_mm512_set1_ps(x)}; }
  void store(float* p) const { _mm512_storeu_ps(p, v); }
  void stream(float* p) const { _mm512_stream_ps(p, v); }  // p on 64 bytes
  float sum() const { return _mm512_reduce_add_ps(v); }
  // Each 512-bit sum folded to 256 bits, then the AVX tree of horizontal adds: 17 instructions for 8
  // sums, against 8 separate reductions of about 8 dependent steps each.
  static void sum8(const Avx512 v[8], float out[8]) {
    __m256 half[8];
    for (int i = 0; i < 8; ++i)
      half[i] = _mm256_add_ps(_mm512_castps512_ps256(v[i].v),
                              _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v[i].v), 1)));
    _mm256_storeu_ps(out, hadd_tree8(half));
  }
  // [sum a0, ..., sum a7] of 8 vectors of 8: hadd pairs within 128-bit lanes, then add the two lanes.
  static __m256 hadd_tree8(const __m256 a[8]) {
    const __m256 a01 = _mm256_hadd_ps(a[0], a[1]), a23 = _mm256_hadd_ps(a[2], a[3]);
    const __m256 a45 = _mm256_hadd_ps(a[4], a[5]), a67 = _mm256_hadd_ps(a[6], a[7]);
    const __m256 a0123 = _mm256_hadd_ps(a01, a23), a4567 = _mm256_hadd_ps(a45, a67);
    return _mm256_add_ps(_mm256_permute2f128_ps(a0123, a4567, 0x20),
                         _mm256_permute2f128_ps(a0123, a4567, 0x31));
  }
  friend Avx512 operator+(Avx512 a, Avx512 b) { return {_mm512_add_ps(a.v, b.v)}; }
  friend Avx512 operator-(Avx512 a, Avx512 b) { return {_mm512_sub_ps(a.v, b.v)}; }
  friend Avx512 operator*(Avx512 a, Avx512 b) { return {_mm512_mul_ps(a.v, b.v)}; }
  friend Avx512 operator/(Avx512 a, Avx512 b) { return {_mm512_div_ps(a.v, b.v)}; }
  friend Avx512 fma(Avx512 a, Avx512 b, Avx512 c) { return {_mm512_fmadd_ps(a.v, b.v, c.v)}; }
  friend Avx512 min(Avx512 a, Avx512 b) { return {_mm512_min_ps(a.v, b.v)}; }
  friend Avx512 max(Avx512 a, Avx512 b) { return {_mm512_max_ps(a.v, b.v)}; }
  friend Avx512 abs(Avx512 a) { return {_mm512_abs_ps(a.v)}; }
  friend Avx512 round_nearest(Avx512 a) { return {_mm512_roundscale_ps(a.v, _MM_FROUND_TO_NEAREST_INT)}; }
  friend Avx512 pow2(Avx512 n) {
    const __m512i bits =
        _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n.v), _mm512_set1_epi32(127)), 23);
    return {_mm512_castsi512_ps(bits)};
  }
  friend Avx512 select_less(Avx512 x, Avx512 limit, Avx512 a, Avx512 b) {
    return {_mm512_mask_blend_ps(_mm512_cmp_ps_mask(x.v, limit.v, _CMP_LT_OQ), b.v, a.v)};
  }
  friend Avx512 select_positive(Avx512 x, Avx512 a) {
    return {_mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x.v, _mm512_setzero_ps(), _CMP_GT_OQ), a.v)};
  }
  friend Avx512 copy_sign(Avx512 magnitude, Avx512 sign) {
    const __m512i sign_bit = _mm512_set1_epi32(int32_t(0x80000000u));
    const __m512i m = _mm512_andnot_si512(sign_bit, _mm512_castps_si512(magnitude.v));
    const __m512i s = _mm512_and_si512(sign_bit, _mm512_castps_si512(sign.v));
    return {_mm512_castsi512_ps(_mm512_or_si512(m, s))};
  }
};
#endif

#if defined(__AVX2__) && defined(__FMA__)
struct Avx2 {
  static constexpr int width = 8;
  __m256 v;
  static Avx2 load(const float* p) { return {_mm256_loadu_ps(p)}; }
  static Avx2 set(float x) { return {_mm256_set1_ps(x)}; }
  void store(float* p) const { _mm256_storeu_ps(p, v); }
  void stream(float* p) const { _mm256_stream_ps(p, v); }  // p on 32 bytes
  float sum() const {
    const __m128 half = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    const __m128 quarter = _mm_add_ps(half, _mm_movehl_ps(half, half));
    return _mm_cvtss_f32(_mm_add_ss(quarter, _mm_shuffle_ps(quarter, quarter, 1)));
  }
  // As Avx512::hadd_tree8: pairs added within 128-bit lanes, then the two lanes.
  static void sum8(const Avx2 v[8], float out[8]) {
    const __m256 a01 = _mm256_hadd_ps(v[0].v, v[1].v), a23 = _mm256_hadd_ps(v[2].v, v[3].v);
    const __m256 a45 = _mm256_hadd_ps(v[4].v, v[5].v), a67 = _mm256_hadd_ps(v[6].v, v[7].v);
    const __m256 a0123 = _mm256_hadd_ps(a01, a23), a4567 = _mm256_hadd_ps(a45, a67);
    _mm256_storeu_ps(out, _mm256_add_ps(_mm256_permute2f128_ps(a0123, a4567, 0x20),
                                        _mm256_permute2f128_ps(a0123, a4567, 0x31)));
  }
  friend Avx2 operator+(Avx2 a, Avx2 b) { return {_mm256_add_ps(a.v, b.v)}; }
  friend Avx2 operator-(Avx2 a, Avx2 b) { return {_mm256_sub_ps(a.v, b.v)}; }
  friend Avx2 operator*(Avx2 a, Avx2 b) { return {_mm256_mul_ps(a.v, b.v)}; }
  friend Avx2 operator/(Avx2 a, Avx2 b) { return {_mm256_div_ps(a.v, b.v)}; }
  friend Avx2 fma(Avx2 a, Avx2 b, Avx2 c) { return {_mm256_fmadd_ps(a.v, b.v, c.v)}; }
  friend Avx2 min(Avx2 a, Avx2 b) { return {_mm256_min_ps(a.v, b.v)}; }
  friend Avx2 max(Avx2 a, Avx2 b) { return {_mm256_max_ps(a.v, b.v)}; }
  friend Avx2 abs(Avx2 a) { return {_mm256_andnot_ps(_mm256_set1_ps(-0.0f), a.v)}; }
  friend Avx2 round_nearest(Avx2 a) {
    return {_mm256_round_ps(a.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)};
  }
  friend Avx2 pow2(Avx2 n) {
    const __m256i bits =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n.v), _mm256_set1_epi32(127)), 23);
    return {_mm256_castsi256_ps(bits)};
  }
  friend Avx2 select_less(Avx2 x, Avx2 limit, Avx2 a, Avx2 b) {
    return {_mm256_blendv_ps(b.v, a.v, _mm256_cmp_ps(x.v, limit.v, _CMP_LT_OQ))};
  }
  friend Avx2 select_positive(Avx2 x, Avx2 a) {
    return {_mm256_and_ps(_mm256_cmp_ps(x.v, _mm256_setzero_ps(), _CMP_GT_OQ), a.v)};
  }
  friend Avx2 copy_sign(Avx2 magnitude, Avx2 sign) {
    const __m256 sign_bit = _mm256_set1_ps(-0.0f);
    return {_mm256_or_ps(_mm256_andnot_ps(sign_bit, magnitude.v), _mm256_and_ps(sign_bit, sign.v))};
  }
};
#endif

// e^x: x = n ln2 + r, |r| <= ln2/2; e^r by Cephes' degree-6 polynomial; 2^n by the exponent bits.
// x is clamped to [-87.3, 88.3] so that 2^n stays a normal float (e^x saturates instead of inf or 0);
// min and max return their second operand when one is NaN, so NaN passes through.
template <class V>
inline V exp(V x) {
  x = min(V::set(88.3f), max(V::set(-87.3f), x));
  const V n = round_nearest(x * V::set(1.44269504088896341f));
  V r = fma(n, V::set(-0.693359375f), x);  // ln 2 in two parts, so that r is exact
  r = fma(n, V::set(2.12194440e-4f), r);
  V p = V::set(1.9875691500e-4f);
  p = fma(p, r, V::set(1.3981999507e-3f));
  p = fma(p, r, V::set(8.3334519073e-3f));
  p = fma(p, r, V::set(4.1665795894e-2f));
  p = fma(p, r, V::set(1.6666665459e-1f));
  p = fma(p, r, V::set(5.0000001201e-1f));
  p = fma(p, r * r, r + V::set(1.0f));
  return p * pow2(n);
}

template <class V>
inline V sigmoid(V x) {
  return V::set(1.0f) / (V::set(1.0f) + exp(V::set(0.0f) - x));
}

// tanh: Cephes' odd polynomial below |x| = 0.625, where 1 - 2 / (e^2|x| + 1) would cancel; that form above,
// with |x| capped at 9.5: from there on the form rounds to 1 anyway, and past |x| = 44 its 2 / (e^2|x| + 1)
// would be subnormal (a microcode assist per vector where subnormals are not flushed: 8x the time).
template <class V>
inline V tanh(V x) {
  const V a = abs(x);
  const V z = x * x;
  V p = V::set(-5.70498872745e-3f);
  p = fma(p, z, V::set(2.06390887954e-2f));
  p = fma(p, z, V::set(-5.37397155531e-2f));
  p = fma(p, z, V::set(1.33314422036e-1f));
  p = fma(p, z, V::set(-3.33332819422e-1f));
  const V small = fma(p * z, x, x);
  const V capped = min(V::set(9.5f), a);  // NaN stays NaN (min returns its second operand)
  const V large = V::set(1.0f) - V::set(2.0f) / (exp(capped + capped) + V::set(1.0f));
  return select_less(a, V::set(0.625f), small, copy_sign(large, x));
}

}  // namespace recur::kernels::RECUR_POST_GEMM_NAMESPACE::simd
