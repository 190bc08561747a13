// recur::set_num_threads: the size of recur's own pool (kernels/thread_pool.hpp), which runs every
// parallel product, BLAS's included; BLAS itself is kept to one thread (kernels/gemm.cpp says why).
#include "recur/runtime.hpp"

#include <string>

#include "kernels/thread_pool.hpp"
#include "recur/error.hpp"

namespace recur {

void set_num_threads(int n) {
  if (n < 1) throw Error("set_num_threads: the thread count must be at least 1, got " + std::to_string(n));
  kernels::resize_thread_pool(n);
}

int num_threads() { return kernels::ThreadPool::instance().size(); }

}  // namespace recur
