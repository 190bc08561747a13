// The language model: embedding -> recurrent layers -> linear -> softmax cross-entropy
// (recur/language_model.hpp).
#include "recur/language_model.hpp"

#include <cmath>

#include "recur/error.hpp"
#include "recur/layers.hpp"

namespace recur {
namespace {

void fill_uniform(Tensor& t, float limit, std::mt19937_64& rng) {
  for (float& v : t.values()) v = (float(rng() >> 40) * 0x1p-24f * 2.0f - 1.0f) * limit;
}

}  // namespace

void LanguageModelConfig::validate() const {
  if (vocab_size < 1)
    throw Error("language model: vocab_size must be positive, got " + std::to_string(vocab_size));
  if (embedding_size < 1)
    throw Error("language model: embedding_size must be positive, got " + std::to_string(embedding_size));
  if (hidden_sizes.empty()) throw Error("language model: needs at least one recurrent layer");
  for (size_t l = 0; l < hidden_sizes.size(); ++l)
    if (hidden_sizes[l] < 1)
      throw Error("language model: hidden size of layer " + std::to_string(l) + " must be positive, got " +
                  std::to_string(hidden_sizes[l]));
  if (!(dropout >= 0.0f && dropout < 1.0f))
    throw Error("language model: dropout " + std::to_string(dropout) + " outside [0, 1)");
  if (tie_weights && embedding_size != hidden_sizes.back())
    throw Error("language model: tied weights need embedding size (" + std::to_string(embedding_size) +
                ") == last hidden size (" + std::to_string(hidden_sizes.back()) + ")");
}

// Scratch of one forward/backward: the activations backward needs, kept between the two halves (the
// stack keeps its own).
struct LanguageModel::Workspace {
  Tensor embedded, top;  // the stack's input [T, B, E] and output [T * B, H] (after dropout)
  std::vector<float> embedded_mask, top_mask;
  Tensor logits, dlogits, dtop;
};

LanguageModel::LanguageModel(const LanguageModelConfig& config, uint64_t seed)
    : config_(config), workspace_(std::make_unique<Workspace>()) {
  config_.validate();
  const int64_t V = config_.vocab_size, E = config_.embedding_size, H = config_.hidden_sizes.back();
  std::mt19937_64 rng(seed);
  embedding_ = Tensor({V, E});
  if (config_.tie_weights) {
    fill_uniform(embedding_, 0.1f, rng);  // it is the output layer too: small, as word_language_model
  } else {
    // Unit variance, as nn.Embedding: with +-0.1 the recurrent layers see an input ~10x weaker than a
    // one-hot and a character model sat on the unigram plateau (3.3 nats) for hundreds of updates.
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (float& v : embedding_.values()) v = normal(rng);
  }
  d_embedding_ = Tensor({V, E});
  stack_ = make_recurrent_stack(config_.stack, E, config_.hidden_sizes, seed);
  if (!config_.tie_weights) {
    output_weight_ = Tensor({V, H});
    fill_uniform(output_weight_, 1.0f / std::sqrt(float(H)), rng);
    d_output_weight_ = Tensor({V, H});
  }
  output_bias_ = Tensor({V});
  d_output_bias_ = Tensor({V});
}

LanguageModel::~LanguageModel() = default;
LanguageModel::LanguageModel(LanguageModel&&) noexcept = default;
LanguageModel& LanguageModel::operator=(LanguageModel&&) noexcept = default;

std::vector<Tensor> LanguageModel::zero_state(int64_t batch) const { return stack_->zero_state(batch); }

std::vector<Parameter> LanguageModel::parameters() {
  std::vector<Parameter> list{{"embedding.weight", &embedding_, &d_embedding_}};
  for (const Parameter& p : stack_->parameters()) list.push_back(p);
  if (!config_.tie_weights) list.push_back({"decoder.weight", &output_weight_, &d_output_weight_});
  list.push_back({"decoder.bias", &output_bias_, &d_output_bias_});
  return list;
}

void LanguageModel::zero_grad() {
  for (const Parameter& p : parameters()) p.grad->fill(0.0f);
}

namespace {

void check_batch(const TokenBatch& batch) {
  if (batch.steps < 1 || batch.batch < 1)
    throw Error("token batch: steps and batch must be positive, got " + std::to_string(batch.steps) + " x " +
                std::to_string(batch.batch));
  const size_t n = size_t(batch.steps * batch.batch);
  if (batch.inputs.size() != n || batch.targets.size() != n)
    throw Error("token batch: " + std::to_string(batch.inputs.size()) + " inputs and " +
                std::to_string(batch.targets.size()) + " targets for " + std::to_string(batch.steps) +
                " steps x " + std::to_string(batch.batch) + " streams");
}

}  // namespace

double LanguageModel::forward_backward(const TokenBatch& batch, std::vector<Tensor>& state,
                                       std::mt19937_64& rng) {
  check_batch(batch);
  Workspace& w = *workspace_;
  const int64_t T = batch.steps, B = batch.batch;
  embedding_forward(embedding_, batch.inputs, w.embedded);
  dropout_forward(w.embedded, config_.dropout, rng, w.embedded_mask);
  w.embedded.reshape({T, B, config_.embedding_size});
  w.top = stack_->forward_train(w.embedded, state, {}, config_.dropout, rng);
  w.top.reshape({T * B, stack_->output_size()});
  dropout_forward(w.top, config_.dropout, rng, w.top_mask);
  linear_forward(w.top, output_weight(), output_bias_, w.logits);
  const double loss = softmax_cross_entropy(w.logits, batch.targets, &w.dlogits);

  Tensor& d_output_weight = config_.tie_weights ? d_embedding_ : d_output_weight_;
  linear_backward(w.top, output_weight(), w.dlogits, &w.dtop, d_output_weight, d_output_bias_);
  dropout_backward(w.top_mask, w.dtop);
  w.dtop.reshape({T, B, stack_->output_size()});
  Tensor dx = stack_->backward(w.dtop);  // no gradient into the carried state: truncated BPTT
  dx.reshape({T * B, config_.embedding_size});
  dropout_backward(w.embedded_mask, dx);
  embedding_backward(batch.inputs, dx, d_embedding_);
  return loss;
}

double LanguageModel::evaluate(const TokenBatch& batch, std::vector<Tensor>& state) {
  check_batch(batch);
  Workspace& w = *workspace_;
  const int64_t T = batch.steps, B = batch.batch;
  Tensor x;
  embedding_forward(embedding_, batch.inputs, x);
  x.reshape({T, B, config_.embedding_size});
  Tensor y = stack_->forward(x, state, {});
  y.reshape({T * B, stack_->output_size()});
  linear_forward(y, output_weight(), output_bias_, w.logits);
  return softmax_cross_entropy(w.logits, batch.targets, nullptr);
}

LanguageModelStream::LanguageModelStream(LanguageModel& model) : model_(model) {
  state_ = model.zero_state(1);
  x_ = Tensor({1, model.config().embedding_size});
}

std::span<const float> LanguageModelStream::step(int32_t token) {
  const int32_t one[] = {token};
  embedding_forward(model_.embedding(), one, x_);
  x_.reshape({1, 1, model_.config().embedding_size});
  Tensor y = model_.stack().forward(x_, state_, {});
  y.reshape({1, y.dim(-1)});
  linear_forward(y, model_.output_weight(), model_.output_bias(), logits_);
  return logits_.values();
}

void LanguageModelStream::reset() { state_ = model_.zero_state(1); }

}  // namespace recur
