// Level 3: recur's float32 engine against PyTorch 1.13 (nn.RNN tanh/relu, nn.LSTM, nn.GRU in float64, packed
// variable-length sequences, non-zero initial states). The fixtures tests/fixtures/torch_*.safetensors are
// made by tests/fixtures/make_fixtures.py; rerun it with /usr/bin/python3 to regenerate them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "fixture_check.hpp"
#include "recur/model_file.hpp"

namespace recur {
namespace {

// torch_<case>.safetensors: 2 layers, bidirectional, lengths [6, 3, 5]; *_batch_first: 1 layer, one
// direction, x [B, T, I], lengths [4, 5, 2].
const std::vector<std::string> kTorchCases = {
    "rnn_tanh",         "rnn_relu",       "lstm", "gru", "rnn_tanh_batch_first", "rnn_relu_batch_first",
    "lstm_batch_first", "gru_batch_first"};

class TorchFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(TorchFixture, ForwardBackwardMatchPyTorch) { fixture::check_fixture("torch_" + GetParam()); }

INSTANTIATE_TEST_SUITE_P(Torch, TorchFixture, ::testing::ValuesIn(kTorchCases),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

TEST(TorchFixtureFiles, EveryTorchFixtureIsTested) {
  for (const std::string& name : fixture::fixture_names("torch_")) {
    EXPECT_NE(std::find(kTorchCases.begin(), kTorchCases.end(), name.substr(6)), kTorchCases.end())
        << name << ".safetensors (made by " << fixture::kScript << ") is not in kTorchCases";
  }
}

// load_rnn on PyTorch's state_dict names alone (a weights-only copy of each fixture): the configuration
// inferred from names and shapes is the one PyTorch had, the weights are the file's.
TEST(TorchFixtureLoad, LoadRnnInfersConfigFromPyTorchNames) {
  for (const std::string& name : kTorchCases) {
    SCOPED_TRACE("fixture torch_" + name + ".safetensors, made by " + std::string(fixture::kScript));
    try {
      const SafetensorsFile file = SafetensorsFile::read(fixture::fixture_path("torch_" + name));
      const RnnConfig expected = fixture::fixture_config(file);
      std::vector<std::pair<std::string, Tensor>> weights;
      for (const SafetensorsEntry& entry : file.entries()) {
        const std::string& n = entry.name;
        if (n.rfind("weight_", 0) == 0 || n.rfind("bias_", 0) == 0) weights.emplace_back(n, file.tensor(n));
      }
      std::vector<std::pair<std::string, const Tensor*>> views;
      for (const auto& [n, tensor] : weights) views.emplace_back(n, &tensor);
      const std::string path = ::testing::TempDir() + "recur_torch_weights_" + name + ".safetensors";
      write_safetensors(path, views);

      ModelLoadOptions options;  // the names cannot tell relu from tanh
      if (expected.cell == CellSpec::rnn_relu()) options.cell = CellSpec::rnn_relu();
      const Rnn rnn = load_rnn(path, options);
      std::remove(path.c_str());
      EXPECT_EQ(rnn.config(), expected) << "inferred cell " << rnn.config().cell.name();
      const RnnParameters original = fixture::fixture_parameters(file, expected, "");
      ASSERT_EQ(rnn.parameters().layers.size(), original.layers.size());
      for (size_t k = 0; k < original.layers.size(); ++k) {
        const LayerParameters &a = rnn.parameters().layers[k], &b = original.layers[k];
        const std::string where = "layer-direction " + std::to_string(k) + " ";
        fixture::expect_identical(where + "w_x", a.w_x, b.w_x);
        fixture::expect_identical(where + "w_h", a.w_h, b.w_h);
        fixture::expect_identical(where + "b_x", a.b_x, b.b_x);
        fixture::expect_identical(where + "b_h", a.b_h, b.b_h);
      }
    } catch (const std::exception& error) {
      ADD_FAILURE() << error.what();
    }
  }
}

}  // namespace
}  // namespace recur
