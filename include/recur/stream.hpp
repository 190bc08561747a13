#pragma once
// Stateful step-by-step use of a unidirectional Rnn: feed one time step, keep the state.
#include <cstdint>
#include <memory>

#include "recur/rnn.hpp"

namespace recur {

class RnnStream {
 public:
  // The stream reads the Rnn's weights at every step; the Rnn must outlive it.
  RnnStream(const Rnn& rnn, int64_t batch);
  // Steps on a FrozenRnn's snapshot and its packed weights (W_x packed here too, for the steps' input
  // products): faster steps, the same results to float32's rounding. The FrozenRnn must outlive it.
  RnnStream(const FrozenRnn& rnn, int64_t batch);
  RnnStream(const RnnStream&) = delete;
  RnnStream& operator=(const RnnStream&) = delete;
  ~RnnStream();

  // x_t [B, I] -> y_t [B, H], the top layer's output; the state moves one step on.
  Tensor step(const Tensor& x_t);
  // State [L, B, H] (h, and c for the lstm family); starts at zero.
  const RnnState& state() const { return state_; }
  void set_state(RnnState state);
  void reset();

 private:
  struct Scratch;
  const Rnn& rnn_;
  int64_t batch_;
  RnnState state_;
  std::unique_ptr<Scratch> scratch_;
};

}  // namespace recur
