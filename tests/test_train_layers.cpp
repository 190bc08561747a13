// Embedding, linear, dropout, softmax cross-entropy, and the language model's gradients against
// central finite differences of its own loss.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "numeric_checks.hpp"
#include "recur/error.hpp"
#include "recur/language_model.hpp"
#include "recur/layers.hpp"

namespace recur {
namespace {

Tensor random_tensor(Shape shape, std::mt19937_64& rng, float scale = 1.0f) {
  Tensor t(std::move(shape));
  std::normal_distribution<float> normal(0.0f, scale);
  for (float& v : t.values()) v = normal(rng);
  return t;
}

TEST(TrainLayers, CrossEntropyMatchesDoubleLogSoftmaxAndIsShiftInvariant) {
  std::mt19937_64 rng(1);
  const Tensor logits = random_tensor({5, 7}, rng, 3.0f);
  const std::vector<int32_t> targets{0, 6, 3, 3, 1};
  Tensor dlogits;
  const double loss = softmax_cross_entropy(logits, targets, &dlogits);
  double expected = 0;
  for (int n = 0; n < 5; ++n) {
    double sum = 0;
    for (int v = 0; v < 7; ++v) sum += std::exp(double(logits[n * 7 + v]));
    expected -= std::log(std::exp(double(logits[n * 7 + targets[size_t(n)]])) / sum) / 5;
    for (int v = 0; v < 7; ++v) {
      const double softmax = std::exp(double(logits[n * 7 + v])) / sum;
      EXPECT_NEAR(dlogits[n * 7 + v], (softmax - (v == targets[size_t(n)])) / 5, 1e-6);
    }
  }
  EXPECT_NEAR(loss, expected, 1e-6);
  Tensor shifted = logits;
  for (float& v : shifted.values()) v += 1e4f;  // exp would overflow without the max subtracted
  EXPECT_NEAR(softmax_cross_entropy(shifted, targets, nullptr), loss, 2e-3);
  EXPECT_THROW(softmax_cross_entropy(logits, std::vector<int32_t>{0, 1, 2, 3, 7}, nullptr), Error);
}

TEST(TrainLayers, LinearMatchesLoopsAndItsBackward) {
  std::mt19937_64 rng(2);
  const Tensor x = random_tensor({4, 3}, rng), w = random_tensor({5, 3}, rng), b = random_tensor({5}, rng);
  Tensor y;
  linear_forward(x, w, b, y);
  for (int n = 0; n < 4; ++n)
    for (int o = 0; o < 5; ++o) {
      double sum = b[o];
      for (int i = 0; i < 3; ++i) sum += double(x[n * 3 + i]) * w[o * 3 + i];
      EXPECT_NEAR(y[n * 5 + o], sum, 1e-5);
    }
  const Tensor dy = random_tensor({4, 5}, rng);
  Tensor dx, dw({5, 3}, 1.0f), db({5}, 1.0f);  // accumulate onto ones
  linear_backward(x, w, dy, &dx, dw, db);
  for (int o = 0; o < 5; ++o) {
    double sum_b = 1;
    for (int n = 0; n < 4; ++n) sum_b += dy[n * 5 + o];
    EXPECT_NEAR(db[o], sum_b, 1e-5);
    for (int i = 0; i < 3; ++i) {
      double sum = 1;
      for (int n = 0; n < 4; ++n) sum += double(dy[n * 5 + o]) * x[n * 3 + i];
      EXPECT_NEAR(dw[o * 3 + i], sum, 1e-5);
    }
  }
  for (int n = 0; n < 4; ++n)
    for (int i = 0; i < 3; ++i) {
      double sum = 0;
      for (int o = 0; o < 5; ++o) sum += double(dy[n * 5 + o]) * w[o * 3 + i];
      EXPECT_NEAR(dx[n * 3 + i], sum, 1e-5);
    }
}

TEST(TrainLayers, EmbeddingBackwardSumsRepeatedTokens) {
  std::mt19937_64 rng(3);
  const Tensor table = random_tensor({4, 2}, rng);
  const std::vector<int32_t> tokens{2, 0, 2, 2};
  Tensor out;
  embedding_forward(table, tokens, out);
  EXPECT_EQ(out[2 * 2 + 1], table[2 * 2 + 1]);
  const Tensor dout = random_tensor({4, 2}, rng);
  Tensor dtable({4, 2});
  embedding_backward(tokens, dout, dtable);
  for (int e = 0; e < 2; ++e) {
    EXPECT_FLOAT_EQ(dtable[2 * 2 + e], dout[0 * 2 + e] + dout[2 * 2 + e] + dout[3 * 2 + e]);
    EXPECT_FLOAT_EQ(dtable[0 * 2 + e], dout[1 * 2 + e]);
    EXPECT_EQ(dtable[1 * 2 + e], 0.0f);
  }
  EXPECT_THROW(embedding_forward(table, std::vector<int32_t>{4}, out), Error);
}

TEST(TrainLayers, DropoutIsInvertedSeededAndMasksItsGradient) {
  Tensor x({20000}, 1.0f);
  std::mt19937_64 rng(4), again(4);
  std::vector<float> mask, mask_again;
  dropout_forward(x, 0.3f, rng, mask);
  Tensor y({20000}, 1.0f);
  dropout_forward(y, 0.3f, again, mask_again);
  EXPECT_EQ(mask, mask_again);
  double zeros = 0, sum = 0;
  for (float v : x.values()) zeros += v == 0.0f, sum += v;
  EXPECT_NEAR(zeros / 20000, 0.3, 0.02);
  EXPECT_NEAR(sum / 20000, 1.0, 0.03);  // inverted: the mean survives
  Tensor d({20000}, 2.0f);
  dropout_backward(mask, d);
  for (int i = 0; i < 20000; ++i) EXPECT_FLOAT_EQ(d[i], 2.0f * mask[size_t(i)]);
}

// The model's analytic gradients against central differences of its loss. With dropout the loss is
// made deterministic by drawing the same masks each time (a fresh generator with the same seed).
void check_model_gradients(const LanguageModelConfig& config) {
  LanguageModel model(config, 5);
  const int64_t T = 3, B = 2;
  const std::vector<int32_t> inputs{0, 1, 2, 3, 4, 0}, targets{1, 2, 3, 4, 0, 2};
  const TokenBatch batch{inputs, targets, T, B};
  std::mt19937_64 rng(6), pick(7);
  std::vector<Tensor> initial = model.zero_state(B);
  for (Tensor& s : initial)  // a carried state, as in truncated BPTT
    if (s.rank() > 1)        // h and c; a clockwork's step counts ([B]) stay whole numbers
      for (float& v : s.values()) v = std::normal_distribution<float>(0, 0.5f)(pick);
  model.zero_grad();
  std::vector<Tensor> state = initial;
  model.forward_backward(batch, state, rng);
  std::vector<Tensor> analytic_grads;  // forward_backward below accumulates into the grads again
  for (const Parameter& p : model.parameters()) analytic_grads.push_back(*p.grad);
  const auto loss = [&] {
    std::vector<Tensor> s = initial;
    if (config.dropout == 0.0f) return model.evaluate(batch, s);
    std::mt19937_64 same_masks(6);
    return model.forward_backward(batch, s, same_masks);
  };
  int checked = 0;
  size_t index = 0;
  for (const Parameter& p : model.parameters()) {
    const Tensor& grad = analytic_grads[index++];
    for (int k = 0; k < 4; ++k) {
      const int64_t i = int64_t(pick() % uint64_t(p.value->size()));
      const double numeric = central_difference((*p.value)[i], 1e-2, loss), analytic = grad[i];
      EXPECT_NEAR(analytic, numeric, 2e-3 + 2e-2 * std::fabs(numeric)) << p.name << "[" << i << "]";
      ++checked;
    }
  }
  EXPECT_GT(checked, 20);
}

TEST(TrainLanguageModel, GradientsMatchFiniteDifferencesLstmTwoLayers) {
  check_model_gradients({CellSpec::lstm(), 5, 4, {6, 3}, 0.0f, false});
}

TEST(TrainLanguageModel, GradientsMatchFiniteDifferencesLstmWithDropout) {
  check_model_gradients({CellSpec::lstm(), 5, 4, {6, 3}, 0.3f, false});
}

TEST(TrainLanguageModel, GradientsMatchFiniteDifferencesGruTied) {
  check_model_gradients({CellSpec::gru(), 5, 4, {4}, 0.0f, true});
}

TEST(TrainLanguageModel, GradientsMatchFiniteDifferencesPeepholeCifg) {
  check_model_gradients({CellSpec::parse("peephole_cifg"), 5, 3, {4, 4}, 0.0f, false});
}

TEST(TrainLanguageModel, GradientsMatchFiniteDifferencesDepthGated) {
  check_model_gradients({StackSpec(StackKind::dglstm), 5, 4, {5, 5}, 0.3f, false});
}

TEST(TrainLanguageModel, GradientsMatchFiniteDifferencesClockwork) {
  StackSpec clockwork(StackKind::clockwork);
  clockwork.periods = {1, 2};
  check_model_gradients({clockwork, 5, 4, {6, 6}, 0.3f, false});
}

TEST(TrainLanguageModel, GradientsMatchFiniteDifferencesGridLstm) {
  check_model_gradients({StackSpec(StackKind::gridlstm), 5, 4, {5, 5}, 0.3f, false});
}

TEST(TrainLanguageModel, StackNamesRoundTripAndVariantsNeedOneSize) {
  for (const char* name : {"lstm", "gru", "rnn_relu", "peephole_cifg", "dglstm", "clockwork", "gridlstm"})
    EXPECT_EQ(StackSpec::parse(name).name(), name);
  try {
    StackSpec::parse("lsmt");
    ADD_FAILURE() << "an unknown name was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("clockwork"), std::string::npos) << e.what();
  }
  for (StackKind kind : {StackKind::dglstm, StackKind::clockwork, StackKind::gridlstm})
    EXPECT_THROW(LanguageModel({StackSpec(kind), 5, 4, {8, 6}, 0.0f, false}, 1), Error);
}

TEST(TrainLanguageModel, TiedWeightsAppearOnceAndNeedMatchingSizes) {
  LanguageModel model({CellSpec::rnn_tanh(), 7, 4, {4}, 0.0f, true}, 1);
  int embedding = 0, decoder = 0;
  for (const Parameter& p : model.parameters())
    embedding += p.name == "embedding.weight", decoder += p.name == "decoder.weight";
  EXPECT_EQ(embedding, 1);
  EXPECT_EQ(decoder, 0);
  EXPECT_EQ(&model.output_weight(), &model.embedding());
  EXPECT_THROW(LanguageModel({CellSpec::lstm(), 7, 5, {4}, 0.0f, true}, 1), Error);
}

// One token at a time (the sampling path) against the whole sequence at once: the mean of the stream's
// per-token losses equals the sequence's loss. For every kind of stack (a clockwork counts its steps
// across calls).
TEST(TrainLanguageModel, StreamGivesTheSameLossesAsTheSequence) {
  StackSpec clockwork(StackKind::clockwork);
  clockwork.periods = {1, 2, 3};
  const std::vector<LanguageModelConfig> configs = {
      {CellSpec::lstm(), 6, 3, {5, 4}, 0.0f, false},
      {CellSpec::gru(), 6, 3, {5}, 0.0f, false},
      {StackSpec(StackKind::dglstm), 6, 3, {5, 5}, 0.0f, false},
      {clockwork, 6, 3, {6, 6}, 0.0f, false},
      {StackSpec(StackKind::gridlstm), 6, 3, {5, 5}, 0.0f, false}};
  const std::vector<int32_t> tokens{1, 4, 2, 0, 5, 3, 3, 1};
  const int64_t T = int64_t(tokens.size()) - 1;
  for (const LanguageModelConfig& config : configs) {
    LanguageModel model(config, 2);
    LanguageModelStream stream(model);
    double stream_sum = 0;
    for (int64_t t = 0; t < T; ++t) {
      const std::span<const float> logits = stream.step(tokens[size_t(t)]);
      const Tensor row({1, 6}, std::vector<float>(logits.begin(), logits.end()));
      const int32_t target[] = {tokens[size_t(t + 1)]};
      stream_sum += softmax_cross_entropy(row, target, nullptr);
    }
    std::vector<Tensor> state = model.zero_state(1);
    const std::span<const int32_t> all(tokens);
    const double from_sequence = model.evaluate({all.first(size_t(T)), all.subspan(1), T, 1}, state);
    EXPECT_NEAR(stream_sum / double(T), from_sequence, 1e-5) << config.stack.name();
  }
}

}  // namespace
}  // namespace recur
