#pragma once
// Products run with subnormal floats flushed to zero (the MXCSR's FTZ and DAZ bits), as oneDNN's
// kernels may: a subnormal operand sends every multiply-add that touches it through a microcode assist.
// Measured here, OpenBLAS's sgemm of 400x10000x200 took 9.6 ms on normal inputs and 2,811 ms when A was
// subnormal, and a depth-gated LSTM (whose scalar sigmoid underflows to subnormals for pre-activations
// below about -87) trained PTB at half its speed. Flushing changes a result only by terms below 1.2e-38.
//
// The guard sets the bits on the calling thread for its scope and puts the caller's back afterwards, so
// the user's own arithmetic is untouched; recur's pool threads keep them set.
#include <cstdint>

#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#endif

namespace recur::kernels {

class FlushDenormals {
 public:
#if defined(__SSE__) || defined(__x86_64__)
  static constexpr unsigned kBits = 0x8040;  // FTZ (bit 15) | DAZ (bit 6)
  FlushDenormals() : saved_(_mm_getcsr()) {
    if ((saved_ & kBits) != kBits) _mm_setcsr(saved_ | kBits);
  }
  ~FlushDenormals() {
    if ((saved_ & kBits) != kBits) _mm_setcsr(saved_);
  }
#else
  FlushDenormals() : saved_(0) {}
#endif
  FlushDenormals(const FlushDenormals&) = delete;
  FlushDenormals& operator=(const FlushDenormals&) = delete;

 private:
  unsigned saved_;
};

}  // namespace recur::kernels
