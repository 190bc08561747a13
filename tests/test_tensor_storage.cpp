// Tensor's storage (recur/aligned.hpp, src/tensor.cpp, src/aligned.cpp): cache-line alignment, 2 MiB
// boundaries for large blocks (transparent huge pages), uninitialized tensors, and the per-thread reuse of
// large freed blocks that keeps a training loop's outputs from being page-faulted in again at every call.
#include <gtest/gtest.h>

#include <cstdint>
#include <thread>
#include <vector>

#include "recur/aligned.hpp"
#include "recur/error.hpp"
#include "recur/tensor.hpp"

namespace recur {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kBlocksReused = false;  // AddressSanitizer must see every free
#else
constexpr bool kBlocksReused = true;
#endif
constexpr bool kHugePagesOffered = kBlocksReused;  // likewise off under AddressSanitizer

constexpr int64_t kLarge = int64_t(1) << 19;  // floats: 2 MiB, above the 1 MiB the reuse starts at

TEST(TensorStorage, ValuesStartOnACacheLine) {
  for (int64_t n : {int64_t(1), int64_t(17), int64_t(1000), kLarge}) {
    const Tensor zeros({n}), empty = Tensor::uninitialized({n});
    EXPECT_EQ(reinterpret_cast<uintptr_t>(zeros.data()) % kCacheLine, 0u) << n;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(empty.data()) % kCacheLine, 0u) << n;
    for (float v : zeros.values()) ASSERT_EQ(v, 0.0f);
  }
}

TEST(TensorStorage, LargeBlocksStartOnAHugePage) {
  // Below 2 MiB: cache lines; from 2 MiB on: 2 MiB boundaries (not under AddressSanitizer), every byte
  // writable, vectors and tensors alike.
  for (const std::size_t bytes : {std::size_t(64), kHugePage - 4, kHugePage, 3 * kHugePage + 12}) {
    void* block = allocate_aligned(bytes);
    const auto at = reinterpret_cast<uintptr_t>(block);
    EXPECT_EQ(at % kCacheLine, 0u) << bytes;
    if (kHugePagesOffered && bytes >= kHugePage) EXPECT_EQ(at % kHugePage, 0u) << bytes;
    auto* first = static_cast<unsigned char*>(block);
    first[0] = 1;
    first[bytes - 1] = 2;
    EXPECT_EQ(first[0] + first[bytes - 1], 3);
    free_aligned(block, bytes);
  }
  AlignedVector<float> rows(size_t(3) << 20, 1.0f);  // 12 MiB
  EXPECT_EQ(reinterpret_cast<uintptr_t>(rows.data()) % (kHugePagesOffered ? kHugePage : kCacheLine), 0u);
  const Tensor large = Tensor::uninitialized({int64_t(1) << 21});  // 8 MiB
  EXPECT_EQ(reinterpret_cast<uintptr_t>(large.data()) % (kHugePagesOffered ? kHugePage : kCacheLine), 0u);
}

TEST(TensorStorage, UninitializedHasTheShapeAndTakesWrites) {
  Tensor t = Tensor::uninitialized({3, 4, 5});
  EXPECT_EQ(t.shape(), (Shape{3, 4, 5}));
  EXPECT_EQ(t.size(), 60);
  t.fill(2.5f);
  for (float v : t.values()) EXPECT_EQ(v, 2.5f);
  EXPECT_THROW(Tensor::uninitialized({2, -1}), Error);
}

TEST(TensorStorage, ALargeFreedBlockServesTheNextTensorOfItsSizeOnItsThread) {
  if (!kBlocksReused) GTEST_SKIP() << "no reuse under AddressSanitizer";
  const float* first = nullptr;
  {
    Tensor a = Tensor::uninitialized({kLarge});
    first = a.data();
  }
  Tensor b = Tensor::uninitialized({kLarge});
  EXPECT_EQ(b.data(), first);  // the same block again
  // A zero-filled tensor reuses it too, and is still all zeros.
  const float* second = b.data();
  b.fill(7.0f);
  b = Tensor();
  const Tensor zeros({kLarge});
  EXPECT_EQ(zeros.data(), second);
  for (float v : zeros.values()) ASSERT_EQ(v, 0.0f);
}

TEST(TensorStorage, OtherSizesAndOtherThreadsDoNotTakeTheBlock) {
  if (!kBlocksReused) GTEST_SKIP() << "no reuse under AddressSanitizer";
  const float* kept = nullptr;
  {
    Tensor a = Tensor::uninitialized({kLarge});
    kept = a.data();
  }
  const Tensor other_size = Tensor::uninitialized({kLarge + 16});
  EXPECT_NE(other_size.data(), kept);
  const float* on_other_thread = nullptr;
  std::thread([&] {
    const Tensor t = Tensor::uninitialized({kLarge});
    on_other_thread = t.data();
  }).join();
  EXPECT_NE(on_other_thread, kept);
  const Tensor same = Tensor::uninitialized({kLarge});
  EXPECT_EQ(same.data(), kept);  // still there for this thread
}

TEST(TensorStorage, AtMostFourBlocksAreKeptAndTheOldestGoesFirst) {
  if (!kBlocksReused) GTEST_SKIP() << "no reuse under AddressSanitizer";
  // Five live tensors of five sizes, freed oldest first: the first one's block is not kept.
  std::vector<Tensor> tensors;
  std::vector<const float*> blocks;
  for (int i = 0; i < 5; ++i) {
    tensors.push_back(Tensor::uninitialized({kLarge + 16 * (i + 1)}));
    blocks.push_back(tensors.back().data());
  }
  tensors.clear();  // destroys them in order: sizes 1..5 freed, size 1 evicted when size 5 arrives
  for (int i = 4; i >= 1; --i) {
    const Tensor again = Tensor::uninitialized({kLarge + 16 * (i + 1)});
    EXPECT_EQ(again.data(), blocks[size_t(i)]) << i;
  }
}

}  // namespace
}  // namespace recur
