#pragma once
// Process-wide run-time settings of the library.

namespace recur {

// Threads the library may use for one call: recur's own pool, which shares out the GEMMs (BLAS's
// included: recur keeps OpenBLAS itself at one thread) and the steps of small batches. n >= 1; throws
// recur::Error otherwise. Applies to the whole process, so set it once, before work.
void set_num_threads(int n);
// The current setting (by default OpenBLAS's at first use: OPENBLAS_NUM_THREADS, else the cores).
int num_threads();

}  // namespace recur
