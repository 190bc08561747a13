// The recur side of the benchmark: the public API exactly as a user calls it.
#include <random>

#include "problem.hpp"
#include "recur/stream.hpp"

namespace recur::bench {

Problem make_problem(const Case& shape, const BenchCell& cell, uint64_t seed) {
  Problem p;
  p.shape = shape;
  p.cell = cell;
  p.config.cell = cell.spec;
  p.config.input_size = shape.input;
  p.config.hidden_size = shape.hidden;
  p.config.num_layers = shape.layers;
  p.rnn = std::make_unique<Rnn>(p.config, seed);
  std::mt19937_64 generator(seed ^ 0x9e3779b97f4a7c15ull);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  p.x = shape.mode == Mode::step ? Tensor({shape.batch, shape.input})
                                 : Tensor({shape.steps, shape.batch, shape.input});
  for (float& v : p.x.values()) v = uniform(generator);
  if (shape.mode == Mode::train) p.dy = Tensor({shape.steps, shape.batch, shape.hidden}, 1.0f);
  return p;
}

namespace {

class RecurRunner : public Runner {
 public:
  // Inference and streams run on weights frozen once here, outside the timing, as oneDNN's weights are
  // reordered once (onednn_runner.cpp).
  explicit RecurRunner(const Problem& problem)
      : p_(problem), gradients_{RnnParameters::zeros(problem.config), {}, {}} {
    if (p_.shape.mode != Mode::train) frozen_ = std::make_unique<FrozenRnn>(*p_.rnn);
  }

  void run() override {
    switch (p_.shape.mode) {
      case Mode::infer:
        output_ = frozen_->forward(p_.x);
        break;
      case Mode::train:
        // Gradients accumulate over repeats: like oneDNN's diff weights, and zeroing is not the
        // work being measured.
        output_ = p_.rnn->forward(p_.x, {}, tape_);
        p_.rnn->backward(tape_, p_.dy, {}, gradients_);
        break;
      case Mode::step:
        if (!stream_) stream_ = std::make_unique<RnnStream>(*frozen_, p_.shape.batch);
        for (int64_t k = 0; k < p_.shape.steps; ++k) last_ = stream_->step(p_.x);
        break;
    }
  }

  Computed compute() override {
    Computed computed;
    if (p_.shape.mode == Mode::step) {
      RnnStream stream(*frozen_, p_.shape.batch);
      for (int64_t k = 0; k < p_.shape.steps; ++k) computed.output.y = stream.step(p_.x);
      computed.output.final_state = stream.state();
      return computed;
    }
    if (p_.shape.mode == Mode::infer) {
      computed.output = frozen_->forward(p_.x);
      return computed;
    }
    Tape tape;
    computed.output = p_.rnn->forward(p_.x, {}, tape);
    computed.has_gradients = true;
    computed.gradients.parameters = RnnParameters::zeros(p_.config);
    p_.rnn->backward(tape, p_.dy, {}, computed.gradients);
    return computed;
  }

 private:
  const Problem& p_;
  Tape tape_;
  RnnGradients gradients_;
  RnnOutput output_;
  std::unique_ptr<FrozenRnn> frozen_;
  std::unique_ptr<RnnStream> stream_;
  Tensor last_;
};

}  // namespace

std::unique_ptr<Runner> make_recur_runner(const Problem& problem) {
  return std::make_unique<RecurRunner>(problem);
}

}  // namespace recur::bench
