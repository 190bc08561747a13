// recur::set_num_threads: the size of recur's own pool (kernels/thread_pool.hpp), which runs every
// parallel product, BLAS's included; BLAS itself is kept to one thread (kernels/gemm.cpp says why).
#include "recur/runtime.hpp"

#include <string>

#include "kernels/amx_gemm.hpp"
#include "kernels/packed_gemm.hpp"
#include "kernels/thread_pool.hpp"
#include "recur/error.hpp"

namespace recur {

void set_num_threads(int n) {
  if (n < 1) throw Error("set_num_threads: the thread count must be at least 1, got " + std::to_string(n));
  kernels::resize_thread_pool(n);
}

int num_threads() { return kernels::ThreadPool::instance().size(); }

const char* compute_engine() {
  if (kernels::amx_enabled())
    return "large float32 products on AMX tiles as three bfloat16 parts (float32-accurate; RECUR_AMX=0 "
           "for OpenBLAS)";
  return kernels::PackedWeights::available() ? "OpenBLAS and recur's packed SIMD kernels"
                                             : "OpenBLAS (portable build)";
}

}  // namespace recur
