// recur::set_num_threads: today only BLAS threads; recur's own pool, when it comes, reads it too.
#include "recur/runtime.hpp"

#include <cblas.h>

#include <string>

#include "recur/error.hpp"

namespace recur {

void set_num_threads(int n) {
  if (n < 1) throw Error("set_num_threads: the thread count must be at least 1, got " + std::to_string(n));
  openblas_set_num_threads(n);
}

int num_threads() { return openblas_get_num_threads(); }

}  // namespace recur
