#pragma once
#include <string>

#include "recur/tensor.hpp"

namespace recur {

// A trainable tensor: its name in checkpoints, its values and its gradient (same shape).
struct Parameter {
  std::string name;
  Tensor* value;
  Tensor* grad;
};

}  // namespace recur
