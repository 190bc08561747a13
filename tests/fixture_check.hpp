#pragma once
// Level 3 harness shared by test_torch_fixtures.cpp and test_onnx_fixtures.cpp: runs recur's float32 Rnn on
// a fixture written by tests/fixtures/make_fixtures.py (F64 tensors of an independent float64 implementation)
// and compares y, h_n, c_n, every weight gradient, dx, dh0 and dc0 with it.
//
// Fixture layout (tests/fixtures/README.md): weights under PyTorch's names in recur's gate layout, x,
// lengths, h0 (c0), y, h_n (c_n), the loss cotangents Ry, Rh (Rc) of L = sum(y*Ry) + sum(h_n*Rh) +
// sum(c_n*Rc), grad.<weight name>, dx, dh0 (dc0); metadata cell, input_size, hidden_size, num_layers,
// bidirectional, batch_first, source.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "recur/error.hpp"
#include "recur/rnn.hpp"
#include "recur/safetensors.hpp"

namespace recur::fixture {

inline constexpr const char* kScript = "tests/fixtures/make_fixtures.py";

inline std::string fixture_path(const std::string& name) {
  return std::string(RECUR_FIXTURE_DIR) + "/" + name + ".safetensors";
}

// Fixture names (file stems) in RECUR_FIXTURE_DIR starting with `prefix`, sorted.
inline std::vector<std::string> fixture_names(const std::string& prefix) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(RECUR_FIXTURE_DIR)) {
    const std::string stem = entry.path().stem().string();
    if (entry.path().extension() == ".safetensors" && stem.rfind(prefix, 0) == 0) names.push_back(stem);
  }
  std::sort(names.begin(), names.end());
  return names;
}

inline std::string metadata_value(const SafetensorsFile& file, const std::string& key) {
  const auto found = file.metadata().find(key);
  if (found == file.metadata().end()) throw Error(file.source() + ": metadata has no '" + key + "'");
  return found->second;
}

// "<file> (made by <source>)": every failure message names the fixture and the script that made it.
inline std::string describe(const SafetensorsFile& file) {
  const auto found = file.metadata().find("source");
  return file.source() + " (made by " + (found == file.metadata().end() ? kScript : found->second) + ")";
}

inline RnnConfig fixture_config(const SafetensorsFile& file) {
  RnnConfig config;
  config.cell = CellSpec::parse(metadata_value(file, "cell"));
  config.input_size = std::stoll(metadata_value(file, "input_size"));
  config.hidden_size = std::stoll(metadata_value(file, "hidden_size"));
  config.num_layers = std::stoi(metadata_value(file, "num_layers"));
  config.bidirectional = metadata_value(file, "bidirectional") == "true";
  return config;
}

// PyTorch's suffix of layer l, direction d: _l0, _l0_reverse, ...
inline std::string layer_suffix(int layer, int direction) {
  return "_l" + std::to_string(layer) + (direction == 1 ? "_reverse" : "");
}

// The weights (prefix "") or their gradients (prefix "grad.") as RnnParameters, converted to float32.
inline RnnParameters fixture_parameters(const SafetensorsFile& file, const RnnConfig& config,
                                        const std::string& prefix) {
  RnnParameters parameters;
  for (int layer = 0; layer < config.num_layers; ++layer) {
    for (int d = 0; d < config.directions(); ++d) {
      const std::string suffix = layer_suffix(layer, d);
      LayerParameters p;
      p.w_x = file.tensor(prefix + "weight_ih" + suffix);
      p.w_h = file.tensor(prefix + "weight_hh" + suffix);
      p.b_x = file.tensor(prefix + "bias_ih" + suffix);
      p.b_h = file.tensor(prefix + "bias_hh" + suffix);
      if (config.cell.peephole) p.peephole = file.tensor(prefix + "weight_peephole" + suffix);
      parameters.layers.push_back(std::move(p));
    }
  }
  return parameters;
}

// The largest error over the tensors compared so far, and which tensor had it.
struct ErrorSummary {
  double max_abs_error = 0;
  std::string worst;
  int compared = 0;
};

// Compares `actual` (float32, from recur) with the fixture's F64 tensor `name`: shapes equal and
// |actual - expected| <= 2e-5 * max(1, max |expected|) everywhere (float32 against float64 on values of
// order 1; gradients summed over time are larger, hence relative to the tensor's scale).
inline void compare(const SafetensorsFile& file, const std::string& what, const Tensor& actual,
                    const std::string& name, ErrorSummary& summary) {
  const SafetensorsEntry& entry = file.entry(name);
  if (actual.shape() != entry.shape) {
    ADD_FAILURE() << describe(file) << ": " << what << " has shape " << shape_to_string(actual.shape())
                  << ", the fixture's " << name << " " << shape_to_string(entry.shape);
    return;
  }
  const std::vector<double> expected = file.tensor_f64(name);
  double scale = 1, error = 0;
  int64_t worst_index = 0;
  for (double value : expected) scale = std::max(scale, std::abs(value));
  for (size_t k = 0; k < expected.size(); ++k) {
    const double e = std::abs(static_cast<double>(actual[static_cast<int64_t>(k)]) - expected[k]);
    if (!(e <= error)) {  // also catches NaN
      error = std::isnan(e) ? INFINITY : e;
      worst_index = static_cast<int64_t>(k);
    }
  }
  const double tolerance = 2e-5 * scale;
  EXPECT_LE(error, tolerance) << describe(file) << ": " << what << " vs " << name << ": max abs error "
                              << error << " at flat index " << worst_index << " (recur "
                              << actual[worst_index] << ", fixture "
                              << expected[static_cast<size_t>(worst_index)] << ")";
  ++summary.compared;
  if (error >= summary.max_abs_error) {
    summary.max_abs_error = error;
    summary.worst = name;
  }
}

inline void compare_parameters(const SafetensorsFile& file, const RnnConfig& config,
                               const RnnParameters& actual, const std::string& prefix,
                               ErrorSummary& summary) {
  for (int layer = 0; layer < config.num_layers; ++layer) {
    for (int d = 0; d < config.directions(); ++d) {
      const LayerParameters& p = actual.layers[static_cast<size_t>(layer * config.directions() + d)];
      const std::string suffix = layer_suffix(layer, d);
      compare(file, "d w_x" + suffix, p.w_x, prefix + "weight_ih" + suffix, summary);
      compare(file, "d w_h" + suffix, p.w_h, prefix + "weight_hh" + suffix, summary);
      compare(file, "d b_x" + suffix, p.b_x, prefix + "bias_ih" + suffix, summary);
      compare(file, "d b_h" + suffix, p.b_h, prefix + "bias_hh" + suffix, summary);
      if (config.cell.peephole) {
        compare(file, "d peephole" + suffix, p.peephole, prefix + "weight_peephole" + suffix, summary);
      }
    }
  }
}

// Bit-identical float32 tensors (for weights that are only moved, never computed).
inline void expect_identical(const std::string& what, const Tensor& actual, const Tensor& expected) {
  ASSERT_EQ(actual.shape(), expected.shape()) << what;
  EXPECT_TRUE(std::equal(actual.values().begin(), actual.values().end(), expected.values().begin())) << what;
}

inline std::vector<int64_t> fixture_lengths(const SafetensorsFile& file) {
  std::vector<int64_t> lengths;
  for (double value : file.tensor_f64("lengths")) lengths.push_back(static_cast<int64_t>(value));
  return lengths;
}

// Forward (inference and training), backward with dy = Ry, d_final = (Rh, Rc); compares everything.
// Prints and records the largest abs error.
inline void check_fixture(const std::string& name) {
  const std::string path = fixture_path(name);
  ASSERT_TRUE(std::filesystem::exists(path)) << path << " is missing: run /usr/bin/python3 " << kScript;
  try {
    const SafetensorsFile file = SafetensorsFile::read(path);
    const RnnConfig config = fixture_config(file);
    const bool has_c = config.cell.has_cell_state();
    const Rnn rnn(config, fixture_parameters(file, config, ""));
    const Tensor x = file.tensor("x"), h0 = file.tensor("h0");
    const Tensor c0 = has_c ? file.tensor("c0") : Tensor();
    SequenceOptions options;
    options.lengths = fixture_lengths(file);
    options.h0 = &h0;
    options.c0 = has_c ? &c0 : nullptr;
    options.batch_first = metadata_value(file, "batch_first") == "true";

    ErrorSummary summary;
    const RnnOutput inference = rnn.forward(x, options);
    compare(file, "inference y", inference.y, "y", summary);
    compare(file, "inference h_n", inference.final_state.h, "h_n", summary);
    if (has_c) compare(file, "inference c_n", inference.final_state.c, "c_n", summary);

    Tape tape;
    const RnnOutput output = rnn.forward(x, options, tape);
    compare(file, "training y", output.y, "y", summary);
    compare(file, "training h_n", output.final_state.h, "h_n", summary);
    if (has_c) compare(file, "training c_n", output.final_state.c, "c_n", summary);

    RnnGradients grads;
    grads.parameters = RnnParameters::zeros(config);
    const RnnState d_final{file.tensor("Rh"), has_c ? file.tensor("Rc") : Tensor()};
    rnn.backward(tape, file.tensor("Ry"), d_final, grads);
    compare_parameters(file, config, grads.parameters, "grad.", summary);
    compare(file, "dx", grads.dx, "dx", summary);
    compare(file, "d h0", grads.initial_state.h, "dh0", summary);
    if (has_c) compare(file, "d c0", grads.initial_state.c, "dc0", summary);

    std::printf("[ fixture  ] %-36s cell %-16s max abs error %.3g (%s), %d tensors compared\n", name.c_str(),
                config.cell.name().c_str(), summary.max_abs_error, summary.worst.c_str(), summary.compared);
    ::testing::Test::RecordProperty("max_abs_error", std::to_string(summary.max_abs_error));
    ::testing::Test::RecordProperty("worst_tensor", summary.worst);
  } catch (const std::exception& error) {
    FAIL() << path << " (made by " << kScript << "): " << error.what();
  }
}

}  // namespace recur::fixture
