#pragma once
// The agreement check that precedes every timing: a benchmark of a wrong answer is worthless.
#include <string>
#include <vector>

#include "problem.hpp"

namespace recur::bench {

struct TensorAgreement {
  std::string name;         // y, h_n, c_n, dx, dh0, dc0, dW_x, dW_h, db_x, db_h
  double max_abs_diff = 0;  // max |recur - peer|
  double relative = 0;      // max_abs_diff / max(1, max |peer|)
};

struct Agreement {
  std::vector<TensorAgreement> tensors;
  double worst_relative = 0;
  bool ok = true;  // worst_relative <= tolerance
};

// Compares every output (and, for train, every gradient) of two runs of the same problem.
Agreement compare(const Computed& recur, const Computed& peer, double tolerance);

// "y 1.2e-07, h_n 9.5e-08, ..." (max abs diffs).
std::string describe(const Agreement& agreement);

}  // namespace recur::bench
