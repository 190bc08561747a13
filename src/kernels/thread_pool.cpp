#include "kernels/thread_pool.hpp"

#include <cblas.h>
#include <immintrin.h>

#include <memory>
#include <mutex>

#include "kernels/denormals.hpp"

namespace recur::kernels {
namespace {

// About a millisecond of pause instructions before a worker goes to sleep.
constexpr int kSpinsBeforeSleep = 20000;
// Pause instructions between two yields of the core while waiting. When the scheduler has put the
// waiting thread and the one it waits for on the same core (on this 2-core VM, in about half of the
// runs), the wait lasts until the next yield: an empty task took 6.7 us with 256 pauses between yields,
// 1.6 us with 32, against 0.5 us when the threads have a core each.
constexpr int kSpinsBeforeYield = 32;

std::mutex pool_mutex;
std::unique_ptr<ThreadPool> pool;

// The first use takes OpenBLAS's own setting (OPENBLAS_NUM_THREADS, else the cores) as the pool's size,
// and from then on keeps OpenBLAS at one thread: recur's pool shares out the products (kernels/gemm.cpp).
void make_pool_locked(int threads) {
  openblas_set_num_threads(1);
  pool = std::make_unique<ThreadPool>(threads);
}

}  // namespace

ThreadPool& ThreadPool::instance() {
  std::lock_guard lock(pool_mutex);
  if (!pool) make_pool_locked(openblas_get_num_threads());
  return *pool;
}

void resize_thread_pool(int threads) {
  std::lock_guard lock(pool_mutex);
  if (!pool || pool->size() != threads) make_pool_locked(threads);
}

ThreadPool::ThreadPool(int threads) {
  for (int index = 1; index < threads; ++index) workers_.emplace_back([this, index] { work(index); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();
  for (std::thread& worker : workers_) worker.join();
}

void ThreadPool::run(const std::function<void(int, int)>& task) {
  // A second caller while a task runs (user threads training side by side, or a task that itself
  // multiplies) does its work alone on its own thread: never waits, never mixes two tasks.
  if (workers_.empty() || busy_.exchange(true, std::memory_order_acquire)) return task(0, 1);
  task_ = &task;
  pending_.store(int(workers_.size()), std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();
  task(0, size());
  // Spin, but yield the core now and then: on a loaded machine the worker we wait for may need it.
  for (int spin = 1; pending_.load(std::memory_order_acquire) != 0; ++spin) {
    if (spin % kSpinsBeforeYield == 0)
      std::this_thread::yield();
    else
      _mm_pause();
  }
  busy_.store(false, std::memory_order_release);
}

void ThreadPool::work(int index) {
  // recur's own threads only ever run recur's products: subnormals flushed for good (denormals.hpp).
  _mm_setcsr(_mm_getcsr() | FlushDenormals::kBits);
  uint64_t seen = 0;
  for (;;) {
    uint64_t now = generation_.load(std::memory_order_acquire);
    for (int spin = 0; now == seen; now = generation_.load(std::memory_order_acquire)) {
      if (++spin < kSpinsBeforeSleep) {
        if (spin % kSpinsBeforeYield == 0)
          std::this_thread::yield();  // as in run(): share a loaded machine
        else
          _mm_pause();
      } else {
        generation_.wait(seen, std::memory_order_acquire);
      }
    }
    seen = now;
    if (stop_.load(std::memory_order_relaxed)) return;
    (*task_)(index, size());
    pending_.fetch_sub(1, std::memory_order_release);
  }
}

}  // namespace recur::kernels
