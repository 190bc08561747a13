// Compiled with -mavx2 -mfma (CMakeLists.txt); chosen only where the processor has them.
#define RECUR_POST_GEMM_NAMESPACE avx2
#include "kernels/post_gemm_impl.hpp"

namespace recur::kernels {
#if defined(__AVX2__) && defined(__FMA__)
const PostGemmKernels* post_gemm_avx2() { return avx2::kernels<avx2::simd::Avx2>("avx2"); }
#else
const PostGemmKernels* post_gemm_avx2() { return nullptr; }
#endif
}  // namespace recur::kernels
