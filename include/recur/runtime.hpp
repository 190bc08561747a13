#pragma once
// Process-wide run-time settings of the library.

namespace recur {

// Threads the library may use for one call (today: the BLAS GEMMs). n >= 1; throws recur::Error
// otherwise. Applies to the whole process (BLAS keeps one setting), so set it once, before work.
void set_num_threads(int n);
// The current setting (by default BLAS's: OPENBLAS_NUM_THREADS, else the number of cores).
int num_threads();

}  // namespace recur
