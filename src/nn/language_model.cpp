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

RnnConfig layer_config(const LanguageModelConfig& config, int layer) {
  RnnConfig c;
  c.cell = config.cell;
  c.input_size = layer == 0 ? config.embedding_size : config.hidden_sizes[size_t(layer - 1)];
  c.hidden_size = config.hidden_sizes[size_t(layer)];
  return c;
}

const char* const layer_field_names[] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_peephole"};

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

// Scratch of one forward/backward: the activations backward needs, kept between the two halves.
struct LanguageModel::Workspace {
  std::vector<Tape> tapes;     // [L]
  std::vector<Tensor> inputs;  // [L + 1]: layer l's input (after dropout); [L] feeds the linear layer
  std::vector<std::vector<float>> masks;  // [L + 1]: dropout after the embedding and after each layer
  std::vector<Tensor> initial_h, initial_c;
  Tensor logits, dlogits, dtop;
};

LanguageModel::LanguageModel(const LanguageModelConfig& config, uint64_t seed)
    : config_(config), workspace_(std::make_unique<Workspace>()) {
  config_.validate();
  const int64_t V = config_.vocab_size, E = config_.embedding_size, H = config_.hidden_sizes.back();
  std::mt19937_64 rng(seed);
  embedding_ = Tensor({V, E});
  fill_uniform(embedding_, 0.1f, rng);
  d_embedding_ = Tensor({V, E});
  for (int l = 0; l < config_.num_layers(); ++l) {
    layers_.emplace_back(layer_config(config_, l), seed + 1 + uint64_t(l));
    RnnGradients grads;
    grads.parameters = RnnParameters::zeros(layers_.back().config());
    d_layers_.push_back(std::move(grads));
  }
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

std::vector<RnnState> LanguageModel::zero_state(int64_t batch) const {
  std::vector<RnnState> state;
  for (int64_t H : config_.hidden_sizes)
    state.push_back(
        {Tensor({1, batch, H}), config_.cell.has_cell_state() ? Tensor({1, batch, H}) : Tensor()});
  return state;
}

std::vector<Parameter> LanguageModel::parameters() {
  std::vector<Parameter> list{{"embedding.weight", &embedding_, &d_embedding_}};
  for (size_t l = 0; l < layers_.size(); ++l) {
    LayerParameters& p = layers_[l].parameters().layers[0];
    LayerParameters& d = d_layers_[l].parameters.layers[0];
    Tensor* values[] = {&p.w_x, &p.w_h, &p.b_x, &p.b_h, &p.peephole};
    Tensor* grads[] = {&d.w_x, &d.w_h, &d.b_x, &d.b_h, &d.peephole};
    for (int k = 0; k < 5; ++k)
      if (!values[k]->empty())
        list.push_back(
            {std::string("rnn.") + layer_field_names[k] + "_l" + std::to_string(l), values[k], grads[k]});
  }
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

void check_state(const std::vector<RnnState>& state, const LanguageModelConfig& config, int64_t B) {
  if (int(state.size()) != config.num_layers())
    throw Error("language model state: " + std::to_string(state.size()) + " layers, the model has " +
                std::to_string(config.num_layers()));
  for (int l = 0; l < config.num_layers(); ++l) {
    const Shape shape{1, B, config.hidden_sizes[size_t(l)]};
    state[size_t(l)].h.check_shape("language model state h of layer " + std::to_string(l), shape);
    if (config.cell.has_cell_state())
      state[size_t(l)].c.check_shape("language model state c of layer " + std::to_string(l), shape);
  }
}

}  // namespace

double LanguageModel::forward_backward(const TokenBatch& batch, std::vector<RnnState>& state,
                                       std::mt19937_64& rng) {
  check_batch(batch);
  check_state(state, config_, batch.batch);
  Workspace& w = *workspace_;
  const int L = config_.num_layers();
  const int64_t T = batch.steps, B = batch.batch;
  w.tapes.resize(size_t(L));
  w.inputs.resize(size_t(L + 1));
  w.masks.resize(size_t(L + 1));
  w.initial_h.resize(size_t(L));
  w.initial_c.resize(size_t(L));

  embedding_forward(embedding_, batch.inputs, w.inputs[0]);
  dropout_forward(w.inputs[0], config_.dropout, rng, w.masks[0]);
  for (int l = 0; l < L; ++l) {
    Tensor& x = w.inputs[size_t(l)];
    x.reshape({T, B, x.dim(-1)});
    w.initial_h[size_t(l)] = std::move(state[size_t(l)].h);
    w.initial_c[size_t(l)] = std::move(state[size_t(l)].c);
    SequenceOptions options;
    options.h0 = &w.initial_h[size_t(l)];
    if (config_.cell.has_cell_state()) options.c0 = &w.initial_c[size_t(l)];
    RnnOutput out = layers_[size_t(l)].forward(x, options, w.tapes[size_t(l)]);
    state[size_t(l)] = std::move(out.final_state);
    w.inputs[size_t(l + 1)] = std::move(out.y);
    w.inputs[size_t(l + 1)].reshape({T * B, config_.hidden_sizes[size_t(l)]});
    dropout_forward(w.inputs[size_t(l + 1)], config_.dropout, rng, w.masks[size_t(l + 1)]);
  }
  const Tensor& top = w.inputs[size_t(L)];
  linear_forward(top, output_weight(), output_bias_, w.logits);
  const double loss = softmax_cross_entropy(w.logits, batch.targets, &w.dlogits);

  Tensor& d_output_weight = config_.tie_weights ? d_embedding_ : d_output_weight_;
  linear_backward(top, output_weight(), w.dlogits, &w.dtop, d_output_weight, d_output_bias_);
  Tensor dy = std::move(w.dtop);
  for (int l = L - 1; l >= 0; --l) {
    dropout_backward(w.masks[size_t(l + 1)], dy);
    dy.reshape({T, B, config_.hidden_sizes[size_t(l)]});
    layers_[size_t(l)].backward(w.tapes[size_t(l)], dy, RnnState{}, d_layers_[size_t(l)]);
    dy =
        std::move(d_layers_[size_t(l)].dx);  // the gradient into the initial state is dropped: truncated BPTT
  }
  dy.reshape({T * B, config_.embedding_size});
  dropout_backward(w.masks[0], dy);
  embedding_backward(batch.inputs, dy, d_embedding_);
  w.dtop = std::move(dy);  // keep the allocation for the next call
  return loss;
}

double LanguageModel::evaluate(const TokenBatch& batch, std::vector<RnnState>& state) {
  check_batch(batch);
  check_state(state, config_, batch.batch);
  Workspace& w = *workspace_;
  const int L = config_.num_layers();
  const int64_t T = batch.steps, B = batch.batch;
  Tensor x;
  embedding_forward(embedding_, batch.inputs, x);
  for (int l = 0; l < L; ++l) {
    x.reshape({T, B, x.dim(-1)});
    SequenceOptions options;
    options.h0 = &state[size_t(l)].h;
    if (config_.cell.has_cell_state()) options.c0 = &state[size_t(l)].c;
    RnnOutput out = layers_[size_t(l)].forward(x, options);
    state[size_t(l)] = std::move(out.final_state);
    x = std::move(out.y);
  }
  x.reshape({T * B, config_.hidden_sizes.back()});
  linear_forward(x, output_weight(), output_bias_, w.logits);
  return softmax_cross_entropy(w.logits, batch.targets, nullptr);
}

LanguageModelStream::LanguageModelStream(const LanguageModel& model) : model_(model) {
  for (const Rnn& layer : model.layers()) streams_.push_back(std::make_unique<RnnStream>(layer, 1));
  x_ = Tensor({1, model.config().embedding_size});
}

std::span<const float> LanguageModelStream::step(int32_t token) {
  const int32_t one[] = {token};
  embedding_forward(model_.embedding(), one, x_);
  Tensor y = x_;
  for (auto& stream : streams_) y = stream->step(y);
  linear_forward(y, model_.output_weight(), model_.output_bias(), logits_);
  return logits_.values();
}

void LanguageModelStream::reset() {
  for (auto& stream : streams_) stream->reset();
}

}  // namespace recur
