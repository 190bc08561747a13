// Level 3: recur's float32 engine on the cells PyTorch lacks (peephole LSTM, coupled-gate LSTM "cifg", both,
// GRU with the reset before), plus plain LSTM and GRU (reset after) as cross-checks of the gate-order
// mapping. The fixtures tests/fixtures/onnx_*.safetensors are made by tests/fixtures/make_fixtures.py:
// forward from ONNX 1.12's reference helpers (LSTM_Helper, GRU_Helper), gradients from a float64 torch
// transcription of the same equations that the script asserts agrees with the helpers to 1e-12. Stacked,
// bidirectional, variable lengths (one sequence of length 0 in the *_batch_first cases).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "fixture_check.hpp"
#include "io/onnx_rnn.hpp"

namespace recur {
namespace {

const std::vector<std::string> kOnnxCases = {"lstm",
                                             "peephole",
                                             "cifg",
                                             "peephole_cifg",
                                             "gru",
                                             "gru_reset_before",
                                             "peephole_cifg_batch_first",
                                             "gru_reset_before_batch_first"};

class OnnxFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(OnnxFixture, ForwardBackwardMatchOnnxReference) { fixture::check_fixture("onnx_" + GetParam()); }

// The fixture also holds the raw ONNX node inputs of each layer (onnx.W_l<k> [D, G*H, I], onnx.R_l<k>,
// onnx.B_l<k> [D, 2*G*H], onnx.P_l<k> [D, 3*H]); the C++ mapping onnx::to_recur_parameters must give exactly
// the recur-layout weights that the script's mapping gave (and whose results matched ONNX's helper).
TEST_P(OnnxFixture, CppWeightMappingMatchesScript) {
  const std::string name = "onnx_" + GetParam();
  try {
    const SafetensorsFile file = SafetensorsFile::read(fixture::fixture_path(name));
    const RnnConfig config = fixture::fixture_config(file);
    const RnnParameters expected = fixture::fixture_parameters(file, config, "");
    for (int layer = 0; layer < config.num_layers; ++layer) {
      const std::string l = "_l" + std::to_string(layer);
      onnx::OnnxRnnWeights weights{file.tensor("onnx.W" + l), file.tensor("onnx.R" + l),
                                   file.tensor("onnx.B" + l),
                                   config.cell.peephole ? file.tensor("onnx.P" + l) : Tensor()};
      const std::vector<LayerParameters> mapped = onnx::to_recur_parameters(config.cell, weights);
      ASSERT_EQ(static_cast<int>(mapped.size()), config.directions()) << fixture::describe(file);
      for (int d = 0; d < config.directions(); ++d) {
        const LayerParameters& a = mapped[static_cast<size_t>(d)];
        const LayerParameters& b = expected.layers[static_cast<size_t>(layer * config.directions() + d)];
        const std::string where = fixture::describe(file) + ", layer " + std::to_string(layer) +
                                  " direction " + std::to_string(d) + ": ";
        fixture::expect_identical(where + "w_x", a.w_x, b.w_x);
        fixture::expect_identical(where + "w_h", a.w_h, b.w_h);
        fixture::expect_identical(where + "b_x", a.b_x, b.b_x);
        fixture::expect_identical(where + "b_h", a.b_h, b.b_h);
        fixture::expect_identical(where + "peephole", a.peephole, b.peephole);
      }
    }
  } catch (const std::exception& error) {
    FAIL() << name << " (made by " << fixture::kScript << "): " << error.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Onnx, OnnxFixture, ::testing::ValuesIn(kOnnxCases),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

TEST(OnnxFixtureFiles, EveryOnnxFixtureIsTested) {
  for (const std::string& name : fixture::fixture_names("onnx_")) {
    EXPECT_NE(std::find(kOnnxCases.begin(), kOnnxCases.end(), name.substr(5)), kOnnxCases.end())
        << name << ".safetensors (made by " << fixture::kScript << ") is not in kOnnxCases";
  }
}

}  // namespace
}  // namespace recur
