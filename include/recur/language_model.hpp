#pragma once
// A language model: token embedding -> recurrent layers (any cell, a size per layer) -> linear ->
// softmax cross-entropy over the next token. Dropout (inverted) after the embedding, between layers and
// before the linear layer, as Zaremba et al. (2014) and PyTorch's word_language_model place it.
// Each layer is its own single-layer recur::Rnn, so that layers may differ in size and dropout can sit
// between them; the cost is the same as one stacked Rnn, which runs layer by layer too.
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

#include "recur/cell.hpp"
#include "recur/rnn.hpp"
#include "recur/stream.hpp"
#include "recur/tensor.hpp"

namespace recur {

struct LanguageModelConfig {
  CellSpec cell = CellSpec::lstm();
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

// A trainable tensor: its name in checkpoints, its values and its gradient (same shape).
struct Parameter {
  std::string name;
  Tensor* value;
  Tensor* grad;
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
  // Embedding uniform in [-0.1, 0.1]; recurrent layers as PyTorch initialises them; linear weight
  // uniform in [-1/sqrt(H), 1/sqrt(H)], bias 0. The same seed gives the same weights.
  LanguageModel(const LanguageModelConfig& config, uint64_t seed);
  ~LanguageModel();
  LanguageModel(LanguageModel&&) noexcept;
  LanguageModel& operator=(LanguageModel&&) noexcept;

  const LanguageModelConfig& config() const { return config_; }

  // One RnnState per layer ([1, B, H_l]), zero.
  std::vector<RnnState> zero_state(int64_t batch) const;

  // Forward with dropout (masks drawn from rng), loss, backward. Gradients accumulate into the
  // parameters' grad tensors (zero_grad() first). `state` in: each layer's initial state, treated as a
  // constant (truncated BPTT: no gradient flows into it); out: the final states. Returns the mean loss.
  double forward_backward(const TokenBatch& batch, std::vector<RnnState>& state, std::mt19937_64& rng);
  // Mean loss without dropout or gradients; `state` carried as in forward_backward.
  double evaluate(const TokenBatch& batch, std::vector<RnnState>& state);

  // Every trainable tensor once (a tied weight appears once, as the embedding), in a fixed order.
  std::vector<Parameter> parameters();
  void zero_grad();

  const Tensor& embedding() const { return embedding_; }
  const std::vector<Rnn>& layers() const { return layers_; }
  // [V, H_last]: the embedding table when tied.
  const Tensor& output_weight() const { return config_.tie_weights ? embedding_ : output_weight_; }
  const Tensor& output_bias() const { return output_bias_; }

 private:
  struct Workspace;
  LanguageModelConfig config_;
  Tensor embedding_, output_weight_, output_bias_;
  std::vector<Rnn> layers_;
  Tensor d_embedding_, d_output_weight_, d_output_bias_;
  std::vector<RnnGradients> d_layers_;
  std::unique_ptr<Workspace> workspace_;  // scratch reused across calls; holds no state between them
};

// One token at a time, batch 1, for sampling: feeds a token, returns the logits of the next one.
// The model must outlive the stream.
class LanguageModelStream {
 public:
  explicit LanguageModelStream(const LanguageModel& model);
  // logits [V] for the token after `token`.
  std::span<const float> step(int32_t token);
  void reset();

 private:
  const LanguageModel& model_;
  std::vector<std::unique_ptr<RnnStream>> streams_;
  Tensor x_, logits_;
};

}  // namespace recur
