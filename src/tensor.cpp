#include "recur/tensor.hpp"

#include <algorithm>
#include <limits>

#include "recur/error.hpp"

namespace recur {

namespace {

// allocate_tensor_block's per-thread blocks (recur/aligned.hpp).
constexpr std::size_t kCachedBlockMin = std::size_t(1) << 20, kCachedBytesMax = std::size_t(64) << 20;
constexpr int kCachedBlocks = 4;

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kCacheBlocks = false;
#else
constexpr bool kCacheBlocks = true;
#endif

struct BlockCache {
  struct Block {
    void* data = nullptr;
    std::size_t bytes = 0;
  };
  Block blocks[kCachedBlocks];  // oldest first
  int count = 0;
  std::size_t total = 0;
  ~BlockCache();
};

// Set when this thread's cache is gone (a tensor freed during the thread's exit then skips it).
thread_local bool block_cache_destroyed = false;
thread_local BlockCache block_cache;

BlockCache::~BlockCache() {
  block_cache_destroyed = true;
  for (int i = 0; i < count; ++i) free_aligned(blocks[i].data, blocks[i].bytes);
}

}  // namespace

void* allocate_tensor_block(std::size_t bytes) {
  if (kCacheBlocks && bytes >= kCachedBlockMin && !block_cache_destroyed) {
    BlockCache& cache = block_cache;
    for (int i = cache.count - 1; i >= 0; --i)  // the most recently freed first: likeliest still cached
      if (cache.blocks[i].bytes == bytes) {
        void* block = cache.blocks[i].data;
        std::copy(cache.blocks + i + 1, cache.blocks + cache.count, cache.blocks + i);
        --cache.count;
        cache.total -= bytes;
        return block;
      }
  }
  return allocate_aligned(bytes);
}

void release_tensor_block(void* block, std::size_t bytes) {
  if (!kCacheBlocks || bytes < kCachedBlockMin || bytes > kCachedBytesMax || block_cache_destroyed)
    return free_aligned(block, bytes);
  BlockCache& cache = block_cache;
  while (cache.count == kCachedBlocks || cache.total + bytes > kCachedBytesMax) {  // the oldest goes back
    free_aligned(cache.blocks[0].data, cache.blocks[0].bytes);
    cache.total -= cache.blocks[0].bytes;
    std::copy(cache.blocks + 1, cache.blocks + cache.count, cache.blocks);
    --cache.count;
  }
  cache.blocks[cache.count++] = {block, bytes};
  cache.total += bytes;
}

std::string shape_to_string(const Shape& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) text += ", ";
    text += std::to_string(shape[i]);
  }
  return text + "]";
}

int64_t shape_element_count(const Shape& shape) {
  int64_t count = 1;
  for (int64_t d : shape) {
    if (d < 0)
      throw Error("tensor shape " + shape_to_string(shape) + ": negative dimension " + std::to_string(d));
    if (d != 0 && count > std::numeric_limits<int64_t>::max() / d)
      throw Error("tensor shape " + shape_to_string(shape) + ": element count overflows int64");
    count *= d;
  }
  return count;
}

Tensor::Tensor(Shape shape, float fill)
    : shape_(std::move(shape)), values_(static_cast<size_t>(shape_element_count(shape_)), fill) {}

Tensor::Tensor(Shape shape, std::vector<float> values)
    : shape_(std::move(shape)), values_(values.begin(), values.end()) {
  if (shape_element_count(shape_) != static_cast<int64_t>(values_.size()))
    throw Error("tensor of shape " + shape_to_string(shape_) + " needs " +
                std::to_string(shape_element_count(shape_)) + " values, got " +
                std::to_string(values_.size()));
}

Tensor Tensor::uninitialized(Shape shape) {
  Tensor tensor;
  tensor.values_.resize(static_cast<size_t>(shape_element_count(shape)));
  tensor.shape_ = std::move(shape);
  return tensor;
}

int64_t Tensor::dim(int i) const {
  const int r = rank();
  const int index = i < 0 ? i + r : i;
  if (index < 0 || index >= r)
    throw Error("tensor of shape " + shape_to_string(shape_) + ": no dimension " + std::to_string(i));
  return shape_[static_cast<size_t>(index)];
}

void Tensor::fill(float value) { std::fill(values_.begin(), values_.end(), value); }

void Tensor::reshape(Shape shape) {
  if (shape_element_count(shape) != size())
    throw Error("cannot reshape tensor of shape " + shape_to_string(shape_) + " to " +
                shape_to_string(shape));
  shape_ = std::move(shape);
}

void Tensor::check_shape(const std::string& what, const Shape& expected) const {
  if (shape_ != expected)
    throw Error(what + ": expected shape " + shape_to_string(expected) + ", got " + shape_to_string(shape_));
}

}  // namespace recur
