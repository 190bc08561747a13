#include "measure.hpp"

#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <thread>
#include <vector>

namespace recur::bench {

namespace {

double elapsed_ms(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - since).count();
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

}  // namespace

Timing time_unit(const std::function<void()>& unit, int warmup, int repeats, double max_seconds,
                 double units_per_call) {
  for (int k = 0; k < warmup; ++k) unit();
  std::vector<double> times;
  const auto start = std::chrono::steady_clock::now();
  while (int(times.size()) < std::max(repeats, 1)) {
    const auto t0 = std::chrono::steady_clock::now();
    unit();
    times.push_back(elapsed_ms(t0) / units_per_call);
    if (times.size() >= 3 && elapsed_ms(start) > max_seconds * 1e3) break;
  }
  Timing t;
  t.median_ms = median(times);
  t.min_ms = *std::min_element(times.begin(), times.end());
  t.max_ms = *std::max_element(times.begin(), times.end());
  t.repeats = int(times.size());
  return t;
}

double sgemm_peak_gflops(int64_t n, int repeats, int threads) {
  // OpenBLAS's own threading, at the thread count measured; recur keeps OpenBLAS at one thread and runs
  // its own (kernels/gemm.cpp), so the setting is put back afterwards.
  openblas_set_num_threads(threads);
  std::vector<float> a(size_t(n * n), 0.5f), b(size_t(n * n), 0.25f), c(size_t(n * n));
  const auto gemm = [&] {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, blasint(n), blasint(n), blasint(n), 1.0f, a.data(),
                blasint(n), b.data(), blasint(n), 0.0f, c.data(), blasint(n));
  };
  const Timing t = time_unit(gemm, 1, repeats, 1e9);
  openblas_set_num_threads(1);
  return 2.0 * double(n) * double(n) * double(n) / (t.median_ms * 1e6);
}

std::string machine_description() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line, model = "unknown CPU";
  while (std::getline(cpuinfo, line))
    if (line.rfind("model name", 0) == 0) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  return model + ", " + std::to_string(std::thread::hardware_concurrency()) + " hardware threads";
}

std::string openblas_description() { return std::string("OpenBLAS ") + openblas_get_config(); }

void settle(int milliseconds) { std::this_thread::sleep_for(std::chrono::milliseconds(milliseconds)); }

}  // namespace recur::bench
