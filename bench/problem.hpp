#pragma once
// One benchmark problem: a case, a cell, recur's network with its random weights and the inputs.
// Every implementation (recur, oneDNN) reads the same weights and inputs from here.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cases.hpp"
#include "recur/rnn.hpp"

namespace recur::bench {

struct Problem {
  Case shape;
  BenchCell cell;
  RnnConfig config;
  std::unique_ptr<Rnn> rnn;  // weights uniform in [-1/sqrt(H), 1/sqrt(H)], as PyTorch draws them
  Tensor x;                  // [T, B, I] uniform in [-1, 1]; step mode: [B, I], fed at every step
  Tensor dy;                 // [T, B, H] of ones: the gradient of sum(y) (train mode only)
};

Problem make_problem(const Case& shape, const BenchCell& cell, uint64_t seed);

// What a run computed, in recur's layout, for the agreement check. Step mode: y is the last step's
// output [B, H] and final_state the state after `steps` steps.
struct Computed {
  RnnOutput output;
  bool has_gradients = false;
  RnnGradients gradients;  // train mode: from dy = ones and a zero d final state
};

// One implementation of a problem: `run` is the timed unit, `compute` gives results for the check.
class Runner {
 public:
  virtual ~Runner() = default;
  virtual void run() = 0;
  virtual Computed compute() = 0;
};

// recur through its public API: Rnn::forward (+ Tape, backward), RnnStream::step.
std::unique_ptr<Runner> make_recur_runner(const Problem& problem);

}  // namespace recur::bench
