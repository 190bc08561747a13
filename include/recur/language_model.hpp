#pragma once
// A language model: token embedding -> recurrent layers (any cell, a size per layer) -> linear ->
// softmax cross-entropy over the next token. Dropout (inverted) after the embedding, between layers and
// before the linear layer, as Zaremba et al. (2014) and PyTorch's word_language_model place it.
// The recurrent layers are a RecurrentStack: the core's cells (one recur::Rnn per layer, so that sizes
// may differ) or a structured variant (depth-gated LSTM, clockwork RNN, grid LSTM); recur/stack_spec.hpp.
// With tie_weights the linear layer's weight is the embedding table (Press & Wolf 2017); it needs
// embedding_size == the last hidden size.
//
// Shapes: T steps, B streams, V vocabulary, E embedding, H_l hidden size of layer l. Token batches are
// time-major: token (t, b) is at t * B + b.
#include <cstdint>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "recur/parameter.hpp"
#include "recur/recurrent_stack.hpp"
#include "recur/stack_spec.hpp"
#include "recur/tensor.hpp"

namespace recur {

struct LanguageModelConfig {
  StackSpec stack;  // the recurrent layers: a core cell (LSTM by default) or a variant
  int64_t vocab_size = 0;
  int64_t embedding_size = 0;
  std::vector<int64_t> hidden_sizes;  // one per layer
  float dropout = 0.0f;               // in [0, 1)
  bool tie_weights = false;

  int num_layers() const { return static_cast<int>(hidden_sizes.size()); }
  // Throws recur::Error naming the field, its value and the limit.
  void validate() const;
  bool operator==(const LanguageModelConfig&) const = default;
};

// T steps of B streams, time-major; targets are the inputs shifted by one token.
struct TokenBatch {
  std::span<const int32_t> inputs;   // [T * B]
  std::span<const int32_t> targets;  // [T * B]
  int64_t steps = 0;
  int64_t batch = 0;
};

class LanguageModel {
 public:
  // Embedding N(0, 1) as nn.Embedding (uniform in [-0.1, 0.1] when tied, as it is then the output
  // layer too); recurrent layers as PyTorch initialises them; linear weight uniform in
  // [-1/sqrt(H), 1/sqrt(H)], bias 0. The same seed gives the same weights.
  LanguageModel(const LanguageModelConfig& config, uint64_t seed);
  ~LanguageModel();
  LanguageModel(LanguageModel&&) noexcept;
  LanguageModel& operator=(LanguageModel&&) noexcept;

  const LanguageModelConfig& config() const { return config_; }

  // The recurrent stack's state for B streams, zero (core cells: per layer h [1, B, H_l], then c for the
  // LSTM family).
  std::vector<Tensor> zero_state(int64_t batch) const;

  // Forward with dropout (masks drawn from rng), loss, backward. Gradients accumulate into the
  // parameters' grad tensors (zero_grad() first). `state` in: each layer's initial state, treated as a
  // constant (truncated BPTT: no gradient flows into it); out: the final states. Returns the mean loss.
  double forward_backward(const TokenBatch& batch, std::vector<Tensor>& state, std::mt19937_64& rng);
  // Mean loss without dropout or gradients; `state` carried as in forward_backward.
  double evaluate(const TokenBatch& batch, std::vector<Tensor>& state);

  // Every trainable tensor once (a tied weight appears once, as the embedding), in a fixed order.
  std::vector<Parameter> parameters();
  void zero_grad();

  const Tensor& embedding() const { return embedding_; }
  RecurrentStack& stack() { return *stack_; }
  // [V, H_last]: the embedding table when tied.
  const Tensor& output_weight() const { return config_.tie_weights ? embedding_ : output_weight_; }
  const Tensor& output_bias() const { return output_bias_; }

 private:
  struct Workspace;
  LanguageModelConfig config_;
  Tensor embedding_, output_weight_, output_bias_;
  std::unique_ptr<RecurrentStack> stack_;
  Tensor d_embedding_, d_output_weight_, d_output_bias_;
  std::unique_ptr<Workspace> workspace_;  // scratch reused across calls; holds no state between them
};

// One token at a time, batch 1, for sampling: feeds a token, returns the logits of the next one.
// The model must outlive the stream (which runs the model's stack, so one stream per model at a time).
class LanguageModelStream {
 public:
  explicit LanguageModelStream(LanguageModel& model);
  // logits [V] for the token after `token`.
  std::span<const float> step(int32_t token);
  void reset();

 private:
  LanguageModel& model_;
  std::vector<Tensor> state_;
  Tensor x_, logits_;
};

}  // namespace recur
