// Rnn weights <-> safetensors with PyTorch's state_dict names. recur's gate order is PyTorch's, so the
// mapping is names and shapes only: no rows move.
#include "recur/model_file.hpp"

#include <algorithm>
#include <charconv>

#include "recur/error.hpp"

namespace recur {
namespace {

// The parameter names of one layer-direction, without the "_l{k}[_reverse]" suffix.
constexpr const char* parameter_prefixes[] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh",
                                              "weight_peephole"};

std::string suffix(int layer, int direction) {
  return "_l" + std::to_string(layer) + (direction == 1 ? "_reverse" : "");
}

std::string config_summary(const RnnConfig& c) {
  return "cell " + c.cell.name() + ", input_size " + std::to_string(c.input_size) + ", hidden_size " +
         std::to_string(c.hidden_size) + ", " + std::to_string(c.num_layers) + " layer(s), " +
         (c.bidirectional ? "bidirectional" : "unidirectional");
}

struct ExpectedTensor {
  std::string name;
  Shape shape;
  bool optional;  // biases: PyTorch's bias=False leaves them out; they load as zeros
  int layer_direction;
  Tensor LayerParameters::*member;
};

std::vector<ExpectedTensor> expected_tensors(const RnnConfig& config) {
  std::vector<ExpectedTensor> expected;
  const int64_t gate_rows = config.cell.gate_count() * config.hidden_size;
  const int64_t peephole_size = config.cell.peephole_count() * config.hidden_size;
  for (int layer = 0; layer < config.num_layers; ++layer) {
    for (int direction = 0; direction < config.directions(); ++direction) {
      const std::string s = suffix(layer, direction);
      const int index = layer * config.directions() + direction;
      expected.push_back({"weight_ih" + s,
                          {gate_rows, config.layer_input_size(layer)},
                          false,
                          index,
                          &LayerParameters::w_x});
      expected.push_back(
          {"weight_hh" + s, {gate_rows, config.hidden_size}, false, index, &LayerParameters::w_h});
      expected.push_back({"bias_ih" + s, {gate_rows}, true, index, &LayerParameters::b_x});
      expected.push_back({"bias_hh" + s, {gate_rows}, true, index, &LayerParameters::b_h});
      if (peephole_size > 0) {
        expected.push_back(
            {"weight_peephole" + s, {peephole_size}, false, index, &LayerParameters::peephole});
      }
    }
  }
  return expected;
}

// Splits "weight_hh_l3_reverse" into layer 3, reverse; false for names that are not Rnn parameters.
bool parse_parameter_name(const std::string& name, int& layer, bool& reverse) {
  for (const char* prefix : parameter_prefixes) {
    const std::string head = std::string(prefix) + "_l";
    if (name.compare(0, head.size(), head) != 0) continue;
    const char* first = name.data() + head.size();
    const char* last = name.data() + name.size();
    auto [rest, error] = std::from_chars(first, last, layer);
    if (error != std::errc() || rest == first || layer < 0) return false;
    const std::string tail(rest, last);
    if (tail != "" && tail != "_reverse") return false;
    reverse = !tail.empty();
    return true;
  }
  return false;
}

// Every tensor the config needs is present (biases may be absent) with the right shape, and no Rnn
// parameter name lies outside the config (a third layer, a reverse direction, a peephole).
void check_tensors(const SafetensorsFile& file, const RnnConfig& config) {
  std::vector<ExpectedTensor> expected = expected_tensors(config);
  for (const ExpectedTensor& e : expected) {
    if (!file.contains(e.name)) {
      if (e.optional) continue;
      throw Error(file.source() + ": missing tensor '" + e.name + "' (expected shape " +
                  shape_to_string(e.shape) + " for " + config_summary(config) + ")");
    }
    const Shape& got = file.entry(e.name).shape;
    if (got != e.shape) {
      throw Error(file.source() + ": tensor '" + e.name + "': expected shape " + shape_to_string(e.shape) +
                  ", got " + shape_to_string(got) + " (" + config_summary(config) + ")");
    }
  }
  for (const SafetensorsEntry& entry : file.entries()) {
    int layer = 0;
    bool reverse = false;
    if (!parse_parameter_name(entry.name, layer, reverse)) continue;
    bool known = false;
    for (const ExpectedTensor& e : expected) known = known || e.name == entry.name;
    if (!known) {
      throw Error(file.source() + ": tensor '" + entry.name + "' does not belong to " +
                  config_summary(config));
    }
  }
}

const std::string& metadata_field(const SafetensorsFile& file, const std::string& key) {
  auto found = file.metadata().find(key);
  if (found == file.metadata().end()) throw Error(file.source() + ": recur metadata lacks '" + key + "'");
  return found->second;
}

int64_t metadata_positive(const SafetensorsFile& file, const std::string& key) {
  const std::string& text = metadata_field(file, key);
  int64_t value = 0;
  auto [rest, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || rest != text.data() + text.size() || value <= 0) {
    throw Error(file.source() + ": metadata " + key + "='" + text + "' is not a positive integer");
  }
  return value;
}

RnnConfig config_from_metadata(const SafetensorsFile& file) {
  RnnConfig config;
  try {
    config.cell = CellSpec::parse(metadata_field(file, "cell"));
  } catch (const Error& e) {
    throw Error(file.source() + ": metadata cell: " + e.what());
  }
  config.input_size = metadata_positive(file, "input_size");
  config.hidden_size = metadata_positive(file, "hidden_size");
  int64_t layers = metadata_positive(file, "num_layers");
  if (layers > 1'000'000)
    throw Error(file.source() + ": metadata num_layers=" + std::to_string(layers) + " too large");
  config.num_layers = static_cast<int>(layers);
  const std::string& bidirectional = metadata_field(file, "bidirectional");
  if (bidirectional != "true" && bidirectional != "false" && bidirectional != "1" && bidirectional != "0") {
    throw Error(file.source() + ": metadata bidirectional='" + bidirectional + "' is not true or false");
  }
  config.bidirectional = bidirectional == "true" || bidirectional == "1";
  return config;
}

const Shape& matrix_shape(const SafetensorsFile& file, const std::string& name) {
  if (!file.contains(name)) {
    throw Error(file.source() + ": missing tensor '" + name +
                "' (needed to infer the cell and sizes; no recur metadata)");
  }
  const Shape& shape = file.entry(name).shape;
  if (shape.size() != 2 || shape[1] <= 0) {
    throw Error(file.source() + ": tensor '" + name + "': expected a matrix [rows, columns > 0], got shape " +
                shape_to_string(shape));
  }
  return shape;
}

CellSpec infer_cell(const SafetensorsFile& file, const Shape& hh_shape, const ModelLoadOptions& options) {
  const int64_t hidden = hh_shape[1];
  if (hh_shape[0] % hidden != 0) {
    throw Error(file.source() + ": tensor 'weight_hh_l0' has shape " + shape_to_string(hh_shape) + ": its " +
                std::to_string(hh_shape[0]) + " rows are not a multiple of hidden_size " +
                std::to_string(hidden) + " (rows = gates x hidden_size)");
  }
  const int64_t gates = hh_shape[0] / hidden;
  if (options.cell) {
    if (options.cell->gate_count() != gates) {
      throw Error(file.source() + ": cell " + options.cell->name() + " has " +
                  std::to_string(options.cell->gate_count()) + " gates, but 'weight_hh_l0' of shape " +
                  shape_to_string(hh_shape) + " has " + std::to_string(gates));
    }
    return *options.cell;
  }
  const bool peephole = file.contains("weight_peephole_l0");
  if (gates == 4) return peephole ? CellSpec::peephole_lstm() : CellSpec::lstm();
  if (gates == 3)
    return peephole ? CellSpec{CellFamily::lstm, Activation::tanh, true, true} : CellSpec::gru();
  if (gates == 1) return CellSpec::rnn_tanh();
  throw Error(file.source() + ": tensor 'weight_hh_l0' of shape " + shape_to_string(hh_shape) + " has " +
              std::to_string(gates) + " gates; recur's cells have 1 (rnn), 3 (gru, cifg) or 4 (lstm)");
}

RnnConfig config_from_names(const SafetensorsFile& file, const ModelLoadOptions& options) {
  const Shape& hh_shape = matrix_shape(file, "weight_hh_l0");
  const Shape& ih_shape = matrix_shape(file, "weight_ih_l0");
  RnnConfig config;
  config.cell = infer_cell(file, hh_shape, options);
  config.hidden_size = hh_shape[1];
  config.input_size = ih_shape[1];
  // Layers up to the highest index named, so that a hole (a missing weight_hh_l1) is reported as missing.
  int max_layer = 0;
  for (const SafetensorsEntry& entry : file.entries()) {
    int layer = 0;
    bool reverse = false;
    if (!parse_parameter_name(entry.name, layer, reverse)) continue;
    max_layer = std::max(max_layer, layer);
    config.bidirectional = config.bidirectional || reverse;
  }
  if (max_layer >= 1'000'000)
    throw Error(file.source() + ": layer index " + std::to_string(max_layer) + " too large");
  config.num_layers = max_layer + 1;
  return config;
}

}  // namespace

RnnConfig infer_rnn_config(const SafetensorsFile& file, const ModelLoadOptions& options) {
  auto format = file.metadata().find("format");
  const bool recur_metadata = format != file.metadata().end() && format->second == "recur";
  RnnConfig config = recur_metadata ? config_from_metadata(file) : config_from_names(file, options);
  config.validate();
  check_tensors(file, config);
  return config;
}

Rnn load_rnn(const SafetensorsFile& file, const ModelLoadOptions& options) {
  const RnnConfig config = infer_rnn_config(file, options);
  RnnParameters parameters = RnnParameters::zeros(config);
  for (const ExpectedTensor& e : expected_tensors(config)) {
    if (!file.contains(e.name)) continue;  // an absent bias: zeros
    parameters.layers[static_cast<size_t>(e.layer_direction)].*e.member = file.tensor(e.name);
  }
  return Rnn(config, std::move(parameters));
}

Rnn load_rnn(const std::string& path, const ModelLoadOptions& options) {
  return load_rnn(SafetensorsFile::read(path), options);
}

std::vector<std::pair<std::string, Tensor>> rnn_state_dict(const Rnn& rnn) {
  std::vector<std::pair<std::string, Tensor>> state;
  for (const ExpectedTensor& e : expected_tensors(rnn.config())) {
    state.emplace_back(e.name, rnn.parameters().layers.at(static_cast<size_t>(e.layer_direction)).*e.member);
  }
  return state;
}

std::map<std::string, std::string> rnn_metadata(const RnnConfig& config) {
  return {{"format", "recur"},
          {"cell", config.cell.name()},
          {"input_size", std::to_string(config.input_size)},
          {"hidden_size", std::to_string(config.hidden_size)},
          {"num_layers", std::to_string(config.num_layers)},
          {"bidirectional", config.bidirectional ? "true" : "false"}};
}

void save_rnn(const std::string& path, const Rnn& rnn,
              const std::map<std::string, std::string>& extra_metadata) {
  // The configuration's own keys win over extra ones of the same name: the file must describe itself.
  std::map<std::string, std::string> metadata = rnn_metadata(rnn.config());
  metadata.insert(extra_metadata.begin(), extra_metadata.end());
  std::vector<std::pair<std::string, Tensor>> state = rnn_state_dict(rnn);
  std::vector<std::pair<std::string, const Tensor*>> tensors;
  for (const auto& [name, tensor] : state) tensors.emplace_back(name, &tensor);
  write_safetensors(path, tensors, metadata);
}

}  // namespace recur
