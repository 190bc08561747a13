// Compiled with -mavx512f -mavx512dq -mfma (CMakeLists.txt); chosen only where the processor has them.
#define RECUR_POST_GEMM_NAMESPACE avx512
#include "kernels/post_gemm_impl.hpp"

namespace recur::kernels {
#if defined(__AVX512F__)
const PostGemmKernels* post_gemm_avx512() { return avx512::kernels<avx512::simd::Avx512>("avx512"); }
#else
const PostGemmKernels* post_gemm_avx512() { return nullptr; }
#endif
}  // namespace recur::kernels
