// The whole language model (embedding -> 2 LSTM layers with a carried state -> linear -> mean softmax
// cross-entropy) against PyTorch: loss and the gradient of every parameter on one batch. Fixture
// tests/fixtures/lm_torch.safetensors, made by tests/fixtures/make_lm_fixture.py with PyTorch 1.13.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>

#include "recur/language_model.hpp"
#include "recur/safetensors.hpp"

namespace {

TEST(TorchLanguageModel, LossAndEveryGradientMatchPyTorch) {
  const recur::SafetensorsFile file =
      recur::SafetensorsFile::read(std::string(RECUR_FIXTURE_DIR) + "/lm_torch.safetensors");
  const int64_t T = 7, B = 3, H = 6;
  recur::LanguageModelConfig config;
  config.stack = recur::CellSpec::lstm();
  config.vocab_size = 11;
  config.embedding_size = 8;
  config.hidden_sizes = {H, H};
  recur::LanguageModel model(config, /*seed=*/1);
  for (const recur::Parameter& p : model.parameters()) *p.value = file.tensor(p.name);

  std::vector<int32_t> inputs, targets;
  for (double v : file.tensor_f64("inputs")) inputs.push_back(int32_t(v));
  for (double v : file.tensor_f64("targets")) targets.push_back(int32_t(v));
  std::vector<recur::Tensor> state;  // per layer h, c
  for (int l = 0; l < 2; ++l) {
    state.push_back(file.tensor("h0_l" + std::to_string(l)));
    state.push_back(file.tensor("c0_l" + std::to_string(l)));
  }

  std::mt19937_64 rng(1);
  model.zero_grad();
  const double loss = model.forward_backward({inputs, targets, T, B}, state, rng);
  EXPECT_NEAR(loss, file.tensor_f64("loss")[0], 1e-6) << "made by tests/fixtures/make_lm_fixture.py";
  double worst = 0;
  for (const recur::Parameter& p : model.parameters()) {
    const std::vector<double> expected = file.tensor_f64("grad." + p.name);
    ASSERT_EQ(int64_t(expected.size()), p.grad->size()) << p.name;
    for (int64_t i = 0; i < p.grad->size(); ++i) {
      worst = std::max(worst, std::fabs(expected[size_t(i)] - (*p.grad)[i]));
      ASSERT_NEAR((*p.grad)[i], expected[size_t(i)], 1e-6) << "grad " << p.name << "[" << i << "]";
    }
  }
  std::printf("[ lm fixture ] loss %.9f vs PyTorch %.9f, max gradient error %.3g\n", loss,
              file.tensor_f64("loss")[0], worst);
}

}  // namespace
