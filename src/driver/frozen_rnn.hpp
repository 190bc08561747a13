#pragma once
// What a FrozenRnn holds (recur/rnn.hpp), for the driver's passes and for streams made from it
// (driver/stream.cpp).
#include <vector>

#include "driver/layer.hpp"
#include "kernels/packed_gemm.hpp"
#include "recur/rnn.hpp"

namespace recur {

struct FrozenRnn::Impl {
  Rnn rnn;
  // Per layer and direction, on rnn's own weights (their storage never moves): W_x for the input
  // products, W_h for the steps at every batch size (float32 panels, and tiles where the tile unit is
  // used), and what layer_forward is given of them.
  std::vector<kernels::PrepackedWeights> w_x;
  std::vector<kernels::PackedWeights> w_h;
  std::vector<driver::LayerForward::Packed> packed;
};

}  // namespace recur
