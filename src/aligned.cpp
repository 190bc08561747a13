// allocate_aligned / free_aligned (recur/aligned.hpp): cache lines for small blocks, 2 MiB boundaries and
// transparent huge pages for large ones.
#include "recur/aligned.hpp"

#include <sys/mman.h>

#include <new>

namespace recur {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kHugePages = false;  // AddressSanitizer's allocator keeps its own layout
#else
constexpr bool kHugePages = true;
#endif

constexpr std::size_t kPage = 4096;

std::align_val_t alignment(std::size_t bytes) {
  return std::align_val_t(kHugePages && bytes >= kHugePage ? kHugePage : kCacheLine);
}

}  // namespace

void* allocate_aligned(std::size_t bytes) {
  void* block = ::operator new(bytes, alignment(bytes));
  // The whole pages of the block only: the last, partial one may hold the allocator's next chunk. A
  // kernel without transparent huge pages refuses the advice; the block works the same without it.
  if (kHugePages && bytes >= kHugePage) madvise(block, bytes / kPage * kPage, MADV_HUGEPAGE);
  return block;
}

void free_aligned(void* block, std::size_t bytes) { ::operator delete(block, alignment(bytes)); }

}  // namespace recur
