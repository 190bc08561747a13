#include "kernels/thread_pool.hpp"

#include <cblas.h>
#include <immintrin.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>

#include "kernels/denormals.hpp"

namespace recur::kernels {
namespace {

// About a millisecond of pause instructions before a worker goes to sleep.
constexpr int kSpinsBeforeSleep = 20000;
// Pause instructions between two looks at where the waiting thread runs. A thread that waits for one
// on the same core (the scheduler put them there: a loaded machine, more threads than cores) yields the
// core at each look, or the wait lasts until its time slice ends: an empty task took 6.7 us with 256
// pauses between yields, 1.6 us with 32, against 0.5 us with a core each. On a core of its own it
// keeps spinning: a yield there is a system call, and a batch-of-4 RNN step that yielded every 32
// pauses took a tenth longer (c_inf_b4, docs/performance.md).
constexpr int kSpinsBeforeYield = 32;

int current_cpu() { return sched_getcpu(); }

std::mutex pool_mutex;
std::unique_ptr<ThreadPool> pool;
// The pool for instance()'s lock-free path: every product asks for it, a batch-of-one step several times.
std::atomic<ThreadPool*> current_pool{nullptr};

// The first use takes OpenBLAS's own setting (OPENBLAS_NUM_THREADS, else the cores) as the pool's size,
// and from then on keeps OpenBLAS at one thread: recur's pool shares out the products (kernels/gemm.cpp).
void make_pool_locked(int threads) {
  openblas_set_num_threads(1);
  current_pool.store(nullptr, std::memory_order_release);
  pool = std::make_unique<ThreadPool>(threads);
  current_pool.store(pool.get(), std::memory_order_release);
}

}  // namespace

ThreadPool& ThreadPool::instance() {
  if (ThreadPool* made = current_pool.load(std::memory_order_acquire)) return *made;
  std::lock_guard lock(pool_mutex);
  if (!pool) make_pool_locked(openblas_get_num_threads());
  return *pool;
}

void resize_thread_pool(int threads) {
  std::lock_guard lock(pool_mutex);
  if (!pool || pool->size() != threads) make_pool_locked(threads);
}

ThreadPool::ThreadPool(int threads) : cpus_(std::make_unique<Cpu[]>(size_t(std::max(threads, 1)))) {
  for (int index = 1; index < threads; ++index) workers_.emplace_back([this, index] { work(index); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();
  for (std::thread& worker : workers_) worker.join();
}

void ThreadPool::run(FunctionRef<void(int, int)> task) {
  // A second caller while a task runs (user threads training side by side, or a task that itself
  // multiplies) does its work alone on its own thread: never waits, never mixes two tasks.
  if (workers_.empty() || busy_.exchange(true, std::memory_order_acquire)) return task(0, 1);
  task_ = &task;
  cpus_[0].id.store(current_cpu(), std::memory_order_relaxed);
  pending_.store(int(workers_.size()), std::memory_order_relaxed);
  // A plain store, not a locked add: busy_'s holder is the only writer.
  generation_.store(generation_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  generation_.notify_all();
  task(0, size());
  // Spin; yield the core only to a worker we wait for that the scheduler put on it.
  for (int spin = 1; pending_.load(std::memory_order_acquire) != 0; ++spin) {
    if (spin % kSpinsBeforeYield == 0 && shares_core(0))
      std::this_thread::yield();
    else
      _mm_pause();
  }
  busy_.store(false, std::memory_order_release);
}

bool ThreadPool::shares_core(int index) {
  const int cpu = current_cpu();
  cpus_[size_t(index)].id.store(cpu, std::memory_order_relaxed);
  for (int other = 0; other < size(); ++other)
    if (other != index && cpus_[size_t(other)].id.load(std::memory_order_relaxed) == cpu) return true;
  return false;
}

void ThreadPool::work(int index) {
  // recur's own threads only ever run recur's products: subnormals flushed for good (denormals.hpp).
  _mm_setcsr(_mm_getcsr() | FlushDenormals::kBits);
  uint64_t seen = 0;
  for (;;) {
    uint64_t now = generation_.load(std::memory_order_acquire);
    for (int spin = 0; now == seen; now = generation_.load(std::memory_order_acquire)) {
      if (++spin < kSpinsBeforeSleep) {
        if (spin % kSpinsBeforeYield == 0 && shares_core(index))
          std::this_thread::yield();  // as in run(): the caller may be on this core
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
