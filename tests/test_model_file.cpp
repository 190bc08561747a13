// Rnn weights in safetensors files with PyTorch's state_dict names: save/load round trips, inference of
// the configuration from names and shapes, and the errors for files that do not fit.
#include <gtest/gtest.h>
#include <unistd.h>

#include <bit>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>

#include "recur/error.hpp"
#include "recur/model_file.hpp"
#include "temp_files.hpp"

namespace {

using recur::CellSpec;
using recur::Error;
using recur::Rnn;
using recur::RnnConfig;
using recur::Shape;
using recur::Tensor;

using recur::test::temp_path;

const char* const cell_names[] = {"rnn_tanh", "rnn_relu",      "lstm", "peephole",
                                  "cifg",     "peephole_cifg", "gru",  "gru_reset_before"};

RnnConfig make_config(const std::string& cell, int layers = 2, bool bidirectional = true) {
  RnnConfig config;
  config.cell = CellSpec::parse(cell);
  config.input_size = 3;
  config.hidden_size = 5;
  config.num_layers = layers;
  config.bidirectional = bidirectional;
  return config;
}

void expect_same_tensor(const Tensor& expected, const Tensor& got, const std::string& what) {
  ASSERT_EQ(expected.shape(), got.shape()) << what;
  for (int64_t k = 0; k < expected.size(); ++k)
    ASSERT_EQ(std::bit_cast<uint32_t>(expected[k]), std::bit_cast<uint32_t>(got[k]))
        << what << " [" << k << "]";
}

void expect_same_parameters(const Rnn& expected, const Rnn& got) {
  ASSERT_EQ(expected.parameters().layers.size(), got.parameters().layers.size());
  for (size_t i = 0; i < expected.parameters().layers.size(); ++i) {
    const recur::LayerParameters& a = expected.parameters().layers[i];
    const recur::LayerParameters& b = got.parameters().layers[i];
    const std::string where = "layer-direction " + std::to_string(i) + " ";
    expect_same_tensor(a.w_x, b.w_x, where + "w_x");
    expect_same_tensor(a.w_h, b.w_h, where + "w_h");
    expect_same_tensor(a.b_x, b.b_x, where + "b_x");
    expect_same_tensor(a.b_h, b.b_h, where + "b_h");
    if (expected.config().cell.peephole_count() > 0)
      expect_same_tensor(a.peephole, b.peephole, where + "peephole");
  }
}

using StateDict = std::vector<std::pair<std::string, Tensor>>;

// Writes `state` as a plain safetensors file (no recur metadata unless given), as PyTorch users would.
std::string write_state(const StateDict& state, const std::map<std::string, std::string>& metadata = {}) {
  std::vector<std::pair<std::string, const Tensor*>> tensors;
  for (const auto& [name, tensor] : state) tensors.emplace_back(name, &tensor);
  const std::string path = temp_path("state.safetensors");
  recur::write_safetensors(path, tensors, metadata);
  return path;
}

StateDict without(StateDict state, const std::string& prefix) {
  std::erase_if(state, [&](const auto& item) { return item.first.rfind(prefix, 0) == 0; });
  return state;
}

std::string load_error(const std::string& path, const recur::ModelLoadOptions& options = {}) {
  try {
    recur::load_rnn(path, options);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "no error loading " << path;
  return "";
}

#define EXPECT_CONTAINS(text, fragment) EXPECT_NE((text).find(fragment), std::string::npos) << (text)

TEST(ModelFile, SaveLoadRoundTripEveryCell) {
  for (const char* cell : cell_names) {
    for (auto [layers, bidirectional] : {std::pair{2, true}, std::pair{1, false}}) {
      SCOPED_TRACE(std::string(cell) + " layers " + std::to_string(layers));
      const RnnConfig config = make_config(cell, layers, bidirectional);
      Rnn original(config, 1234);
      const std::string path = temp_path("model.safetensors");
      recur::save_rnn(path, original, {{"epoch", "7"}, {"cell", "ignored: the config's own keys win"}});

      recur::SafetensorsFile file = recur::SafetensorsFile::read(path);
      EXPECT_EQ(file.metadata().at("format"), "recur");
      EXPECT_EQ(file.metadata().at("cell"), cell);
      EXPECT_EQ(file.metadata().at("epoch"), "7");
      Rnn loaded = recur::load_rnn(path);
      EXPECT_EQ(loaded.config(), config);
      expect_same_parameters(original, loaded);
      std::filesystem::remove(path);
    }
  }
}

TEST(ModelFile, StateDictUsesPyTorchNamesAndOrder) {
  Rnn rnn(make_config("lstm"), 1);
  std::vector<std::string> names;
  for (const auto& [name, tensor] : recur::rnn_state_dict(rnn)) names.push_back(name);
  // torch.nn.LSTM(3, 5, num_layers=2, bidirectional=True).state_dict().keys()
  const std::vector<std::string> expected = {
      "weight_ih_l0",         "weight_hh_l0",         "bias_ih_l0",         "bias_hh_l0",
      "weight_ih_l0_reverse", "weight_hh_l0_reverse", "bias_ih_l0_reverse", "bias_hh_l0_reverse",
      "weight_ih_l1",         "weight_hh_l1",         "bias_ih_l1",         "bias_hh_l1",
      "weight_ih_l1_reverse", "weight_hh_l1_reverse", "bias_ih_l1_reverse", "bias_hh_l1_reverse"};
  EXPECT_EQ(names, expected);
  // Layer 1 reads both directions of layer 0: [4H, 2H].
  EXPECT_EQ(recur::rnn_state_dict(rnn)[8].second.shape(), (Shape{20, 10}));
}

TEST(ModelFile, InfersConfigFromNamesWithoutMetadata) {
  // Cells the names and shapes tell apart; the others need options (next test).
  for (const char* cell : {"rnn_tanh", "lstm", "peephole", "peephole_cifg", "gru"}) {
    for (auto [layers, bidirectional] : {std::pair{2, true}, std::pair{3, false}}) {
      SCOPED_TRACE(std::string(cell) + " layers " + std::to_string(layers));
      Rnn original(make_config(cell, layers, bidirectional), 99);
      const std::string path = write_state(recur::rnn_state_dict(original));
      EXPECT_EQ(recur::infer_rnn_config(recur::SafetensorsFile::read(path)), original.config());
      Rnn loaded = recur::load_rnn(path);
      EXPECT_EQ(loaded.config(), original.config());
      expect_same_parameters(original, loaded);
    }
  }
}

TEST(ModelFile, OptionsChooseAmongCellsWithTheSameShapes) {
  for (auto [cell, guessed] :
       {std::pair{"rnn_relu", "rnn_tanh"}, std::pair{"cifg", "gru"}, std::pair{"gru_reset_before", "gru"}}) {
    SCOPED_TRACE(cell);
    Rnn original(make_config(cell), 5);
    const std::string path = write_state(recur::rnn_state_dict(original));
    EXPECT_EQ(recur::load_rnn(path).config().cell, CellSpec::parse(guessed));
    Rnn loaded = recur::load_rnn(path, {CellSpec::parse(cell)});
    EXPECT_EQ(loaded.config(), original.config());
    expect_same_parameters(original, loaded);
  }
  // Metadata names the cell: options do not override it.
  Rnn before(make_config("gru_reset_before"), 5);
  const std::string path = temp_path("before.safetensors");
  recur::save_rnn(path, before);
  EXPECT_EQ(recur::load_rnn(path, {CellSpec::gru()}).config().cell, CellSpec::gru(recur::GruReset::before));
  // An option with another gate count than the file is an error.
  std::string message = load_error(write_state(recur::rnn_state_dict(before)), {CellSpec::lstm()});
  EXPECT_CONTAINS(message, "lstm has 4 gates");
  EXPECT_CONTAINS(message, "[15, 5]");
}

TEST(ModelFile, MissingBiasesLoadAsZeros) {
  Rnn original(make_config("lstm"), 3);
  const std::string path = write_state(without(recur::rnn_state_dict(original), "bias_"));
  Rnn loaded = recur::load_rnn(path);
  EXPECT_EQ(loaded.config(), original.config());
  for (size_t i = 0; i < loaded.parameters().layers.size(); ++i) {
    const recur::LayerParameters& layer = loaded.parameters().layers[i];
    expect_same_tensor(original.parameters().layers[i].w_x, layer.w_x, "w_x");
    expect_same_tensor(original.parameters().layers[i].w_h, layer.w_h, "w_h");
    EXPECT_EQ(layer.b_x.shape(), (Shape{20}));
    for (float v : layer.b_x.values()) EXPECT_EQ(v, 0.0f);
    for (float v : layer.b_h.values()) EXPECT_EQ(v, 0.0f);
  }
}

TEST(ModelFile, ErrorMissingTensor) {
  Rnn original(make_config("lstm"), 3);
  // Without metadata the highest layer named sets num_layers, so the hole is reported as a hole.
  std::string message = load_error(write_state(without(recur::rnn_state_dict(original), "weight_hh_l1")));
  EXPECT_CONTAINS(message, "missing tensor 'weight_hh_l1'");
  EXPECT_CONTAINS(message, "[20, 5]");
  // With metadata too.
  message = load_error(write_state(without(recur::rnn_state_dict(original), "weight_ih_l1_reverse"),
                                   recur::rnn_metadata(original.config())));
  EXPECT_CONTAINS(message, "missing tensor 'weight_ih_l1_reverse'");
  EXPECT_CONTAINS(message, "[20, 10]");
  // A peephole cell without its peepholes.
  Rnn peephole(make_config("peephole"), 3);
  message = load_error(write_state(without(recur::rnn_state_dict(peephole), "weight_peephole_l0_reverse"),
                                   recur::rnn_metadata(peephole.config())));
  EXPECT_CONTAINS(message, "missing tensor 'weight_peephole_l0_reverse'");
  EXPECT_CONTAINS(message, "[15]");
  message = load_error(write_state(without(recur::rnn_state_dict(original), "weight_ih_l0")));
  EXPECT_CONTAINS(message, "'weight_ih_l0'");
}

TEST(ModelFile, ErrorWrongShape) {
  Rnn original(make_config("gru"), 3);
  StateDict state = recur::rnn_state_dict(original);
  for (auto& [name, tensor] : state)
    if (name == "bias_ih_l1") tensor = Tensor({16});
  std::string message = load_error(write_state(state));
  EXPECT_CONTAINS(message, "'bias_ih_l1'");
  EXPECT_CONTAINS(message, "expected shape [15], got [16]");

  // Metadata that disagrees with the tensors.
  RnnConfig wider = original.config();
  wider.hidden_size = 6;
  message = load_error(write_state(recur::rnn_state_dict(original), recur::rnn_metadata(wider)));
  EXPECT_CONTAINS(message, "'weight_ih_l0': expected shape [18, 3], got [15, 3]");
  RnnConfig one_layer = original.config();
  one_layer.num_layers = 1;
  message = load_error(write_state(recur::rnn_state_dict(original), recur::rnn_metadata(one_layer)));
  EXPECT_CONTAINS(message, "'weight_ih_l1' does not belong");
  std::map<std::string, std::string> bad_metadata = recur::rnn_metadata(original.config());
  bad_metadata["num_layers"] = "two";
  message = load_error(write_state(recur::rnn_state_dict(original), bad_metadata));
  EXPECT_CONTAINS(message, "num_layers='two'");
  bad_metadata = recur::rnn_metadata(original.config());
  bad_metadata["cell"] = "transformer";
  message = load_error(write_state(recur::rnn_state_dict(original), bad_metadata));
  EXPECT_CONTAINS(message, "transformer");
}

TEST(ModelFile, ErrorGateRowsNotMultipleOfHidden) {
  std::string message =
      load_error(write_state({{"weight_ih_l0", Tensor({7, 2})}, {"weight_hh_l0", Tensor({7, 3})}}));
  EXPECT_CONTAINS(message, "'weight_hh_l0'");
  EXPECT_CONTAINS(message, "[7, 3]");
  EXPECT_CONTAINS(message, "not a multiple of hidden_size 3");
  message = load_error(write_state({{"weight_ih_l0", Tensor({6, 2})}, {"weight_hh_l0", Tensor({6, 3})}}));
  EXPECT_CONTAINS(message, "2 gates");
  message = load_error(write_state({{"weight_ih_l0", Tensor({6, 2})}, {"weight_hh_l0", Tensor({6})}}));
  EXPECT_CONTAINS(message, "expected a matrix");
}

// A real torch.nn.LSTM state_dict, written as safetensors by a few lines of Python (no safetensors
// package needed), loads with the configuration and weights torch reports.
TEST(TorchModelFile, LoadsTorchLstmStateDict) {
  if (std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "no python3 torch";
  const std::string dir = temp_path("torch");
  std::filesystem::create_directories(dir);
  const std::string script =
      "import json, struct, sys, torch\n"
      "torch.manual_seed(0)\n"
      "lstm = torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True)\n"
      "header, blobs, offset = {}, [], 0\n"
      "for name, t in lstm.state_dict().items():\n"
      "    b = t.detach().contiguous().numpy().astype('<f4').tobytes()\n"
      "    header[name] = {'dtype': 'F32', 'shape': list(t.shape), 'data_offsets': [offset, offset + "
      "len(b)]}\n"
      "    blobs.append(b)\n"
      "    offset += len(b)\n"
      "text = json.dumps(header).encode()\n"
      "open(sys.argv[1] + '/lstm.safetensors', 'wb').write(struct.pack('<Q', len(text)) + text + "
      "b''.join(blobs))\n"
      "w = lstm.weight_hh_l1_reverse.detach()\n"
      "open(sys.argv[1] + '/expected.txt', 'w').write(repr(float(w[13, 2])) + ' ' + "
      "repr(float(w.double().sum())))\n";
  std::ofstream(dir + "/make.py") << script;
  ASSERT_EQ(std::system(("/usr/bin/python3 " + dir + "/make.py " + dir).c_str()), 0);

  Rnn rnn = recur::load_rnn(dir + "/lstm.safetensors");
  RnnConfig expected_config;
  expected_config.cell = CellSpec::lstm();
  expected_config.input_size = 3;
  expected_config.hidden_size = 4;
  expected_config.num_layers = 2;
  expected_config.bidirectional = true;
  EXPECT_EQ(rnn.config(), expected_config);
  double value = 0, sum = 0;
  std::ifstream(dir + "/expected.txt") >> value >> sum;
  const Tensor& w = rnn.parameters().layers[3].w_h;  // layer 1, reverse
  EXPECT_EQ(static_cast<double>(w[13 * 4 + 2]), value);
  double our_sum = 0;
  for (float v : w.values()) our_sum += v;
  EXPECT_DOUBLE_EQ(our_sum, sum);
  std::filesystem::remove_all(dir);
}

}  // namespace
