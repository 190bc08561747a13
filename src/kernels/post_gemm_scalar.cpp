// The portable kernels, and the dispatcher that picks among the three once.
#define RECUR_POST_GEMM_NAMESPACE scalar
#include <cstdlib>
#include <string>

#include "kernels/post_gemm_impl.hpp"
#include "recur/error.hpp"

namespace recur::kernels {

const PostGemmKernels* post_gemm_scalar() { return scalar::kernels<scalar::simd::Scalar>("scalar"); }

namespace {

const PostGemmKernels& choose() {
  __builtin_cpu_init();
  const PostGemmKernels* avx512 = __builtin_cpu_supports("avx512f") ? post_gemm_avx512() : nullptr;
  const PostGemmKernels* avx2 =
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? post_gemm_avx2() : nullptr;
  if (const char* forced = std::getenv("RECUR_ISA")) {
    const std::string name = forced;
    const PostGemmKernels* chosen = name == "avx512"   ? avx512
                                    : name == "avx2"   ? avx2
                                    : name == "scalar" ? post_gemm_scalar()
                                                       : nullptr;
    if (chosen == nullptr)
      throw Error("RECUR_ISA=" + name +
                  ": not one of avx512, avx2, scalar that this processor and build support");
    return *chosen;
  }
  return avx512 ? *avx512 : avx2 ? *avx2 : *post_gemm_scalar();
}

}  // namespace

const PostGemmKernels& post_gemm() {
  static const PostGemmKernels& chosen = choose();
  return chosen;
}

}  // namespace recur::kernels
