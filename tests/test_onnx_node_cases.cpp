// Level 3: ONNX's own node test cases for its recurrent operators (libonnx-testdata:
// RECUR_ONNX_TESTDATA_DIR/test_{lstm,gru,rnn,simple_rnn}_*/model.onnx with test_data_set_0/input_N.pb and
// output_N.pb, made by onnx/backend/test/case/node/{lstm,gru,rnn}.py). Each node is read with
// recur::onnx::read_model_graph, mapped by rnn_node_config and to_recur_parameters (src/io/onnx_rnn.hpp), run
// by recur::Rnn, and its outputs (Y, Y_h, Y_c in ONNX's layout) compared with the expected ones.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "io/onnx_proto.hpp"
#include "io/onnx_rnn.hpp"
#include "recur/error.hpp"

namespace recur {
namespace {

const char* const kAbsent = "testdata_absent";

// The case directories present, sorted; {kAbsent} without the test data (the test then skips).
std::vector<std::string> node_case_names() {
  std::vector<std::string> names;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(RECUR_ONNX_TESTDATA_DIR, error)) {
    const std::string name = entry.path().filename().string();
    for (const char* prefix : {"test_lstm_", "test_gru_", "test_rnn_", "test_simple_rnn_"}) {
      if (name.rfind(prefix, 0) == 0) names.push_back(name);
    }
  }
  std::sort(names.begin(), names.end());
  if (names.empty()) names.push_back(kAbsent);
  return names;
}

Tensor to_tensor(const onnx::OnnxTensor& tensor) {
  std::vector<float> values(tensor.values.begin(), tensor.values.end());
  return Tensor(tensor.shape, std::move(values));
}

// [a, b, c] -> [b, a, c]: ONNX layout 1 keeps states as [B, D, H], recur as [D, B, H].
Tensor swap_leading(const Tensor& t) {
  const int64_t a = t.dim(0), b = t.dim(1), c = t.dim(2);
  Tensor out({b, a, c});
  for (int64_t i = 0; i < a; ++i) {
    for (int64_t j = 0; j < b; ++j) {
      for (int64_t k = 0; k < c; ++k) out[(j * a + i) * c + k] = t[(i * b + j) * c + k];
    }
  }
  return out;
}

// recur's y -> ONNX's Y: layout 0 [T, B, D*H] -> [T, D, B, H]; layout 1 [B, T, D*H] -> [B, T, D, H].
Tensor onnx_y(const Tensor& y, int64_t directions, bool batch_first) {
  const int64_t outer = y.dim(0), inner = y.dim(1), hidden = y.dim(2) / directions;
  if (batch_first) {
    Tensor out = y;
    out.reshape({outer, inner, directions, hidden});
    return out;
  }
  Tensor out({outer, directions, inner, hidden});
  for (int64_t t = 0; t < outer; ++t) {
    for (int64_t b = 0; b < inner; ++b) {
      for (int64_t d = 0; d < directions; ++d) {
        for (int64_t h = 0; h < hidden; ++h) {
          out[((t * directions + d) * inner + b) * hidden + h] =
              y[(t * inner + b) * directions * hidden + d * hidden + h];
        }
      }
    }
  }
  return out;
}

class OnnxNodeCase : public ::testing::TestWithParam<std::string> {};

TEST_P(OnnxNodeCase, RecurMatchesExpectedOutputs) {
  if (GetParam() == kAbsent) GTEST_SKIP() << "no ONNX node test data in " << RECUR_ONNX_TESTDATA_DIR;
  const std::filesystem::path dir = std::filesystem::path(RECUR_ONNX_TESTDATA_DIR) / GetParam();
  const std::string source = dir.string() + " (onnx/backend/test/case/node, libonnx-testdata)";
  try {
    const onnx::OnnxGraph graph = onnx::read_model_graph((dir / "model.onnx").string());
    ASSERT_EQ(graph.nodes.size(), 1u) << source;
    const onnx::OnnxNode& node = graph.nodes[0];
    // input_N.pb / output_N.pb belong to the graph's N-th input / output.
    std::map<std::string, onnx::OnnxTensor> values;
    for (size_t k = 0; k < graph.inputs.size(); ++k) {
      values[graph.inputs[k]] = onnx::read_tensor_proto(
          (dir / "test_data_set_0" / ("input_" + std::to_string(k) + ".pb")).string());
    }
    auto input = [&](size_t index) -> const onnx::OnnxTensor* {
      if (index >= node.inputs.size() || node.inputs[index].empty()) return nullptr;
      return &values.at(node.inputs[index]);
    };
    // Node inputs: X, W, R, B, sequence_lens, initial_h, initial_c, P (LSTM).
    const onnx::OnnxTensor *x = input(0), *w = input(1), *r = input(2), *b = input(3), *lens = input(4);
    const onnx::OnnxTensor *initial_h = input(5), *initial_c = input(6), *p = input(7);
    ASSERT_TRUE(x && w && r) << source << ": X, W, R are required";

    const onnx::OnnxRnnNodeConfig node_config = onnx::rnn_node_config(node, w->shape, p != nullptr);
    const RnnConfig& config = node_config.config;
    const bool batch_first = node_config.batch_first;
    onnx::OnnxRnnWeights weights{to_tensor(*w), to_tensor(*r), b ? to_tensor(*b) : Tensor(),
                                 p ? to_tensor(*p) : Tensor()};
    const Rnn rnn(config, RnnParameters{onnx::to_recur_parameters(config.cell, weights)});

    SequenceOptions options;
    options.batch_first = batch_first;
    if (lens) {
      for (double length : lens->values) options.lengths.push_back(static_cast<int64_t>(length));
    }
    Tensor h0, c0;
    if (initial_h) h0 = batch_first ? swap_leading(to_tensor(*initial_h)) : to_tensor(*initial_h);
    if (initial_c) c0 = batch_first ? swap_leading(to_tensor(*initial_c)) : to_tensor(*initial_c);
    options.h0 = initial_h ? &h0 : nullptr;
    options.c0 = initial_c ? &c0 : nullptr;
    const RnnOutput output = rnn.forward(to_tensor(*x), options);

    double max_error = 0;
    std::string compared;
    for (size_t k = 0; k < graph.outputs.size(); ++k) {
      const onnx::OnnxTensor expected = onnx::read_tensor_proto(
          (dir / "test_data_set_0" / ("output_" + std::to_string(k) + ".pb")).string());
      const auto slot =
          std::find(node.outputs.begin(), node.outputs.end(), graph.outputs[k]) - node.outputs.begin();
      ASSERT_LT(slot, 3) << source << ": graph output " << graph.outputs[k] << " is not a node output";
      const Tensor& state = slot == 1 ? output.final_state.h : output.final_state.c;
      const Tensor actual = slot == 0     ? onnx_y(output.y, config.directions(), batch_first)
                            : batch_first ? swap_leading(state)
                                          : state;
      const char* what = slot == 0 ? "Y" : slot == 1 ? "Y_h" : "Y_c";
      ASSERT_EQ(actual.shape(), expected.shape) << source << ": " << what;
      double error = 0;
      for (size_t i = 0; i < expected.values.size(); ++i) {
        const double e = std::abs(actual[static_cast<int64_t>(i)] - expected.values[i]);
        error = std::isnan(e) ? INFINITY : std::max(error, e);
      }
      EXPECT_LE(error, 1e-5) << source << ": " << what << " max abs error " << error;
      max_error = std::max(max_error, error);
      compared += std::string(compared.empty() ? "" : ", ") + what;
    }
    std::printf("[ onnx node] %-36s cell %-16s %s max abs error %.3g\n", GetParam().c_str(),
                config.cell.name().c_str(), compared.c_str(), max_error);
    RecordProperty("max_abs_error", std::to_string(max_error));
  } catch (const std::exception& error) {
    FAIL() << source << ": " << error.what();
  }
}

INSTANTIATE_TEST_SUITE_P(OnnxNode, OnnxNodeCase, ::testing::ValuesIn(node_case_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
}  // namespace recur
