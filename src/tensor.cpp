#include "recur/tensor.hpp"

#include <algorithm>
#include <limits>

#include "recur/error.hpp"

namespace recur {

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
