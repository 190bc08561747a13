#pragma once
// A dense, row-major, owning float32 tensor: the currency of the public API.
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <vector>

#include "recur/aligned.hpp"

namespace recur {

using Shape = std::vector<int64_t>;

// "[2, 3, 4]", for error messages.
std::string shape_to_string(const Shape& shape);
// Product of the dimensions; throws recur::Error on a negative dimension or overflow.
int64_t shape_element_count(const Shape& shape);

class Tensor {
 public:
  Tensor() = default;
  // Zero-filled (or `fill`-filled) tensor of the given shape.
  explicit Tensor(Shape shape, float fill = 0.0f);
  // Takes the values; throws if their count does not match the shape.
  Tensor(Shape shape, std::vector<float> values);
  // A tensor whose values are whatever its memory held (as torch.empty): for outputs that are written
  // whole before anything reads them. Reading a value before writing it is undefined.
  static Tensor uninitialized(Shape shape);

  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  // Dimension i; negative i counts from the end.
  int64_t dim(int i) const;
  int64_t size() const { return static_cast<int64_t>(values_.size()); }
  bool empty() const { return values_.empty(); }

  float* data() { return values_.data(); }
  const float* data() const { return values_.data(); }
  std::span<float> values() { return values_; }
  std::span<const float> values() const { return values_; }
  float& operator[](int64_t i) { return values_[static_cast<size_t>(i)]; }
  float operator[](int64_t i) const { return values_[static_cast<size_t>(i)]; }

  void fill(float value);
  // Same values, new shape of the same element count.
  void reshape(Shape shape);

  // Throws recur::Error("<what>: expected shape [..], got [..]") unless the shape is `expected`.
  void check_shape(const std::string& what, const Shape& expected) const;

 private:
  Shape shape_;
  // Starts on a cache line (recur/aligned.hpp says why). Every constructor but uninitialized() gives each
  // element a value.
  std::vector<float, CacheLineAllocatorNoInit<float>> values_;
};

}  // namespace recur
