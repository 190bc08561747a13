#pragma once
// Storage aligned to the 64-byte cache line: Tensor's values, and the buffers recur's kernels stream
// with full-vector loads. An AVX-512 load from an address 16 bytes off a line touches two lines, and
// glibc's malloc aligns to 16 bytes only, so a std::vector's buffer lands on any of four offsets from
// run to run: a batch-of-one product over a 512 x 512 W ran at 59-92 GB/s on the unlucky ones against
// 108-122 on aligned ones (kernel_bench matvec, one core).
#include <cstddef>
#include <new>
#include <utility>
#include <vector>

namespace recur {

constexpr std::size_t kCacheLine = 64;

// Blocks of 2 MiB or more start on a 2 MiB boundary and are offered to the kernel's transparent huge
// pages (madvise MADV_HUGEPAGE; Debian's default is to give them only where asked): the GEMMs and the
// passes stream tens of megabytes, and with 4 KiB pages the TLB misses cost OpenBLAS 3-10% on the merged
// products and 10-15% on a step's (docs/performance.md, fifth round). Smaller blocks: on cache lines.
constexpr std::size_t kHugePage = std::size_t(2) << 20;
void* allocate_aligned(std::size_t bytes);
void free_aligned(void* block, std::size_t bytes);  // `bytes` as allocated

template <class T>
struct CacheLineAllocator {
  using value_type = T;
  CacheLineAllocator() = default;
  template <class U>
  CacheLineAllocator(const CacheLineAllocator<U>&) {}
  T* allocate(std::size_t n) { return static_cast<T*>(allocate_aligned(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) { free_aligned(p, n * sizeof(T)); }
  template <class U>
  bool operator==(const CacheLineAllocator<U>&) const {
    return true;
  }
};

template <class T>
using AlignedVector = std::vector<T, CacheLineAllocator<T>>;

// A scratch buffer of at least n elements, whose contents the caller overwrites: it grows and never
// shrinks. resize() would value-initialize what it adds back, so a buffer shared by calls of
// different sizes was zeroed again at every call that followed a smaller one (the AMX packing of a
// training step's dG: 40 MB of memset, 3-4 ms per step).
template <class T>
T* scratch_of_size(AlignedVector<T>& buffer, std::size_t n) {
  if (buffer.size() < n) buffer.resize(n);
  return buffer.data();
}

// Large blocks for Tensor storage, on cache lines. A block of 1 MiB or more that is freed stays with the
// freeing thread (at most 4 blocks, 64 MiB in all; the oldest goes back first) for the next request of
// the same size: a training loop allocates the same outputs at every call, and glibc hands such blocks
// back to the kernel, so that each call page-faulted its 6.5 MB outputs in again (1,900-2,500 faults per
// b_db512 RNN training step, 5-9% of it). Off under AddressSanitizer, which must see every free.
void* allocate_tensor_block(std::size_t bytes);
void release_tensor_block(void* block, std::size_t bytes);

// As CacheLineAllocator, but a vector grown without a value (resize(n), vector(n)) leaves the new
// elements as they come from memory instead of zeroing them: for storage that is written whole before
// it is read (Tensor::uninitialized), where zeroing 6.5 MB of output first cost 1-2% of a training step.
// Its blocks come from allocate_tensor_block.
template <class T>
struct CacheLineAllocatorNoInit : CacheLineAllocator<T> {
  template <class U>
  struct rebind {
    using other = CacheLineAllocatorNoInit<U>;
  };
  CacheLineAllocatorNoInit() = default;
  template <class U>
  CacheLineAllocatorNoInit(const CacheLineAllocatorNoInit<U>&) {}
  T* allocate(std::size_t n) { return static_cast<T*>(allocate_tensor_block(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) { release_tensor_block(p, n * sizeof(T)); }
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;  // default-initialised: no value for a float
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

}  // namespace recur
