#pragma once
// Process-wide run-time settings of the library.

namespace recur {

// Threads the library may use for one call: recur's own pool, which shares out the GEMMs (BLAS's
// included: recur keeps OpenBLAS itself at one thread) and the steps of small batches. n >= 1; throws
// recur::Error otherwise. Applies to the whole process, so set it once, before work.
void set_num_threads(int n);
// The current setting (by default OpenBLAS's at first use: OPENBLAS_NUM_THREADS, else the cores).
int num_threads();

// Where recur's large float32 products run, in words: "AMX tiles (bf16x3, float32-accurate)" on
// processors with AMX (unless RECUR_AMX=0), else "OpenBLAS and AVX-512 kernels" (or AVX2, portable).
// Benchmarks print it beside their peers' descriptions.
const char* compute_engine();

}  // namespace recur
