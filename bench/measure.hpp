#pragma once
// Clocks: medians over repeats after a warm-up, and the machine's own sgemm peak.
#include <cstdint>
#include <functional>
#include <string>

namespace recur::bench {

struct Timing {
  double median_ms = 0, min_ms = 0, max_ms = 0;
  int repeats = 0;
};

// Calls `unit` warmup times untimed, then up to `repeats` times timed (stopping early, after at
// least 3, once max_seconds have passed); times are divided by `units_per_call` (steps per call).
Timing time_unit(const std::function<void()>& unit, int warmup, int repeats, double max_seconds,
                 double units_per_call = 1.0);

// OpenBLAS sgemm on n x n x n at the current thread setting: median GFLOP/s of `repeats` runs.
double sgemm_peak_gflops(int64_t n, int repeats, int threads);

// "Intel(R) Xeon(R) ... , 2 cores" from /proc/cpuinfo, and OpenBLAS's build string.
std::string machine_description();
std::string openblas_description();

// Lets spinning BLAS/OpenMP worker threads of the previous implementation go to sleep, so that they
// do not steal a core from the next one.
void settle(int milliseconds);

}  // namespace recur::bench
