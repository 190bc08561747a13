// Embedding, linear, dropout, softmax cross-entropy, and the language model's gradients against
// central finite differences of its own loss.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

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

// The model's analytic gradients against central differences of its loss (no dropout: deterministic).
void check_model_gradients(const LanguageModelConfig& config) {
  LanguageModel model(config, 5);
  const int64_t T = 3, B = 2;
  const std::vector<int32_t> inputs{0, 1, 2, 3, 4, 0}, targets{1, 2, 3, 4, 0, 2};
  const TokenBatch batch{inputs, targets, T, B};
  std::mt19937_64 rng(6), pick(7);
  std::vector<RnnState> initial = model.zero_state(B);
  for (auto& s : initial) {  // a carried state, as in truncated BPTT
    for (float& v : s.h.values()) v = std::normal_distribution<float>(0, 0.5f)(pick);
    for (float& v : s.c.values()) v = std::normal_distribution<float>(0, 0.5f)(pick);
  }
  model.zero_grad();
  std::vector<RnnState> state = initial;
  model.forward_backward(batch, state, rng);
  const auto loss = [&] {
    std::vector<RnnState> s = initial;
    return model.evaluate(batch, s);
  };
  int checked = 0;
  for (const Parameter& p : model.parameters()) {
    for (int k = 0; k < 4; ++k) {
      const int64_t i = int64_t(pick() % uint64_t(p.value->size()));
      const float saved = (*p.value)[i], eps = 1e-2f;
      (*p.value)[i] = saved + eps;
      const double plus = loss();
      (*p.value)[i] = saved - eps;
      const double minus = loss();
      (*p.value)[i] = saved;
      const double numeric = (plus - minus) / (2 * eps), analytic = (*p.grad)[i];
      EXPECT_NEAR(analytic, numeric, 2e-3 + 2e-2 * std::fabs(numeric)) << p.name << "[" << i << "]";
      ++checked;
    }
  }
  EXPECT_GT(checked, 20);
}

TEST(TrainLanguageModel, GradientsMatchFiniteDifferencesLstmTwoLayers) {
  check_model_gradients({CellSpec::lstm(), 5, 4, {6, 3}, 0.0f, false});
}

TEST(TrainLanguageModel, GradientsMatchFiniteDifferencesGruTied) {
  check_model_gradients({CellSpec::gru(), 5, 4, {4}, 0.0f, true});
}

TEST(TrainLanguageModel, GradientsMatchFiniteDifferencesPeepholeCifg) {
  check_model_gradients({CellSpec::parse("peephole_cifg"), 5, 3, {4, 4}, 0.0f, false});
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

TEST(TrainLanguageModel, StreamGivesTheSameLogitsAsTheSequence) {
  LanguageModel model({CellSpec::lstm(), 6, 3, {5, 4}, 0.0f, false}, 2);
  const std::vector<int32_t> tokens{1, 4, 2, 0, 5};
  LanguageModelStream stream(model);
  std::vector<RnnState> state = model.zero_state(1);
  // The loss of each next token from the sequence path equals -log softmax of the stream's logits.
  for (size_t t = 0; t + 1 < tokens.size(); ++t) {
    const std::span<const float> logits = stream.step(tokens[t]);
    const Tensor row({1, 6}, std::vector<float>(logits.begin(), logits.end()));
    const int32_t target[] = {tokens[t + 1]};
    const double from_stream = softmax_cross_entropy(row, target, nullptr);
    const int32_t input[] = {tokens[t]};
    const double from_sequence = model.evaluate({input, target, 1, 1}, state);
    EXPECT_NEAR(from_stream, from_sequence, 1e-5);
  }
}

}  // namespace
}  // namespace recur
