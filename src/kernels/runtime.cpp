// recur::set_num_threads: BLAS's threads and recur's own pool (kernels/thread_pool.hpp) alike.
#include "recur/runtime.hpp"

#include <cblas.h>

#include <string>

#include "kernels/thread_pool.hpp"
#include "recur/error.hpp"

namespace recur {

void set_num_threads(int n) {
  if (n < 1) throw Error("set_num_threads: the thread count must be at least 1, got " + std::to_string(n));
  openblas_set_num_threads(n);
  kernels::resize_thread_pool(n);
}

int num_threads() { return openblas_get_num_threads(); }

}  // namespace recur
