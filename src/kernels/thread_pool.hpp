#pragma once
// recur's own threads, for the work inside a time step that is too small for BLAS's threading: a step
// of a batch-1 network is a matrix-vector product of some microseconds, and waking BLAS's threads, or
// sleeping between steps, costs as much. The workers spin between tasks (then sleep after about a
// millisecond idle), so that a step starts on every core at once.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "kernels/function_ref.hpp"

namespace recur::kernels {

class ThreadPool {
 public:
  // The process's pool, sized by recur::num_threads() when first used.
  static ThreadPool& instance();

  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return int(workers_.size()) + 1; }
  // Runs task(index, size()) on every thread, the caller being index 0; returns when all have finished.
  // While one run is in progress, another (from another thread, or from inside the task) runs
  // task(0, 1) on its caller's thread alone.
  void run(FunctionRef<void(int, int)> task);

 private:
  void work(int index);
  // Publishes where thread `index` runs now, and says whether another of the pool's threads was last
  // seen on the same core (then a waiting thread must yield it; see kSpinsBeforeYield).
  bool shares_core(int index);

  std::vector<std::thread> workers_;
  // What the threads hand to each other, a cache line each: a store to a line that another core polls
  // costs a transfer between the cores, and a locked read-modify-write of it waits for that transfer
  // (with all of these on one line, an empty task took 0.55-0.59 us, against 0.47-0.51).
  alignas(64) std::atomic<uint64_t> generation_{0};  // bumped once per task (and to stop), by busy_'s holder
  const FunctionRef<void(int, int)>* task_ = nullptr;  // published with generation_, on its line
  alignas(64) std::atomic<int> pending_{0};            // workers still running the current task
  alignas(64) std::atomic<bool> busy_{false};          // a run is in progress
  std::atomic<bool> stop_{false};
  struct alignas(64) Cpu {
    std::atomic<int> id{-1};
  };
  std::unique_ptr<Cpu[]> cpus_;  // per thread (0: the caller of run), the core it was last seen on
};

// Share `index` of `count` of [0, n) in whole 64-byte lines of floats (16), so that no two threads write
// the same cache line: [begin, end), empty for the last shares of a small n.
struct LineShare {
  int64_t begin, end;
};
inline LineShare line_share(int64_t n, int index, int count) {
  const int64_t lines = (n + 15) / 16;
  const auto at = [&](int64_t share) { return std::min(n, lines * share / count * 16); };
  return {at(index), at(index + 1)};
}

// Resizes the process's pool (recur::set_num_threads calls it).
void resize_thread_pool(int threads);

}  // namespace recur::kernels
