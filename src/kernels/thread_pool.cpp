#include "kernels/thread_pool.hpp"

#include <immintrin.h>

#include <memory>
#include <mutex>

#include "recur/runtime.hpp"

namespace recur::kernels {
namespace {

// About a millisecond of pause instructions before a worker goes to sleep.
constexpr int kSpinsBeforeSleep = 20000;

std::mutex pool_mutex;
std::unique_ptr<ThreadPool> pool;

}  // namespace

ThreadPool& ThreadPool::instance() {
  std::lock_guard lock(pool_mutex);
  if (!pool) pool = std::make_unique<ThreadPool>(num_threads());
  return *pool;
}

void resize_thread_pool(int threads) {
  std::lock_guard lock(pool_mutex);
  if (!pool || pool->size() != threads) pool = std::make_unique<ThreadPool>(threads);
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
  if (workers_.empty()) return task(0, 1);
  task_ = &task;
  pending_.store(int(workers_.size()), std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();
  task(0, size());
  // Spin, but yield the core now and then: on a loaded machine the worker we wait for may need it.
  for (int spin = 1; pending_.load(std::memory_order_acquire) != 0; ++spin) {
    if (spin % 256 == 0) std::this_thread::yield();
    else _mm_pause();
  }
}

void ThreadPool::work(int index) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t now = generation_.load(std::memory_order_acquire);
    for (int spin = 0; now == seen; now = generation_.load(std::memory_order_acquire)) {
      if (++spin < kSpinsBeforeSleep) {
        if (spin % 256 == 0) std::this_thread::yield();  // as in run(): share a loaded machine
        else _mm_pause();
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
