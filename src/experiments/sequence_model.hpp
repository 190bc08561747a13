#pragma once
// A one-layer recurrent network (a core cell or a variant, as a RecurrentStack) with a linear output
// layer, for the long-gap tasks: the output is read from each sequence's last step (adding, temporal
// order, language) or from every step (reber, next-symbol prediction).
//   regression_end   o = W h_last + b; loss 0.5 (o - target)^2; right when |o - target| < 0.04
//   class_end        softmax cross-entropy on W h_last + b; right when the label's probability is the
//                    largest (language) and above 1 - 0.3 (temporal order: then every output's error
//                    is below 0.3)
//   symbols_each     sigmoid cross-entropy per symbol and step; a step is right when every allowed next
//                    symbol's output exceeds every other's; a sequence when all its steps are.
#include <cstdint>
#include <memory>
#include <vector>

#include "recur/language_model.hpp"
#include "recur/long_gap.hpp"
#include "recur/rnn.hpp"
#include "recur/stack_spec.hpp"

namespace recur::experiments {

enum class LossKind { regression_end, class_end, symbols_each };
LossKind loss_kind(LongGapTask task);

struct BatchOutcome {
  double loss = 0;             // mean per sequence
  std::vector<uint8_t> right;  // per sequence
};

class SequenceModel {
 public:
  // forget_bias is added to the bias of the gate that keeps the state (core cells; see long_gap.hpp).
  SequenceModel(LongGapTask task, const StackSpec& cell, int64_t hidden_size, uint64_t seed,
                float forget_bias);

  // Forward, loss (mean over the batch), backward: gradients accumulate (zero_grad() first).
  BatchOutcome train_batch(const std::vector<const SequenceExample*>& batch);
  // Forward and the right/wrong of each sequence only.
  BatchOutcome evaluate(const std::vector<const SequenceExample*>& batch);
  // Sequences of `examples` that are wrong, evaluated `batch` at a time.
  int64_t count_wrong(const std::vector<SequenceExample>& examples, int64_t batch = 256);

  // norms[k]: mean over the examples of ||dL/dh(t)||, t = (the example's last step) - k, where L is the
  // loss of the example's last step; k < the shortest example's length. Exact: the sequence is run one
  // step at a time, each step with its own tape, and the gradient carried back step by step.
  // Core cells only (throws recur::Error for a variant).
  std::vector<double> hidden_gradient_norms(const std::vector<SequenceExample>& examples) const;

  std::vector<Parameter> parameters();
  void zero_grad();
  int64_t parameter_count();
  // The core cell's layer; throws recur::Error for a variant.
  const Rnn& rnn() const;

 private:
  struct Inputs {
    Tensor x;  // [T, B, I]
    std::vector<int64_t> lengths;
  };
  Inputs make_inputs(const std::vector<const SequenceExample*>& batch) const;
  // The output layer's input: y's rows at each sequence's last step ([B, H]) or every row ([T * B, H]).
  Tensor output_rows(const Tensor& y, const Inputs& in) const;
  // Loss and right/wrong from the outputs; fills dout (d loss / d out, scaled by `scale`) when not null.
  BatchOutcome score(const std::vector<const SequenceExample*>& batch, const Tensor& out, int64_t steps,
                     Tensor* dout, double scale) const;

  LongGapTask task_;
  LossKind kind_;
  TaskShape shape_;
  std::unique_ptr<RecurrentStack> stack_;
  Tensor w_out_, b_out_;  // [O, H], [O]
  Tensor dw_out_, db_out_;
};

}  // namespace recur::experiments
