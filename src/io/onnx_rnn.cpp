// ONNX RNN/GRU/LSTM weights and attributes -> recur's layout and configuration (see onnx_rnn.hpp).
#include "io/onnx_rnn.hpp"

#include <utility>

#include "recur/error.hpp"

namespace recur::onnx {
namespace {

// ONNX gate blocks per hidden unit: LSTM keeps 4 blocks also under input_forget.
int64_t onnx_gate_count(CellFamily family) {
  switch (family) {
    case CellFamily::rnn:
      return 1;
    case CellFamily::gru:
      return 3;
    case CellFamily::lstm:
      return 4;
  }
  throw Error("ONNX weights: unknown cell family");
}

// recur's gate blocks as indices of ONNX's: LSTM i,f,g,o <- i,o,f,c (coupled i,g,o); GRU r,z,n <- z,r,h.
std::vector<int64_t> gate_order(const CellSpec& cell) {
  switch (cell.family) {
    case CellFamily::rnn:
      return {0};
    case CellFamily::gru:
      return {1, 0, 2};
    case CellFamily::lstm:
      return cell.coupled_gates ? std::vector<int64_t>{0, 3, 1} : std::vector<int64_t>{0, 2, 3, 1};
  }
  throw Error("ONNX weights: unknown cell family");
}

// recur's peephole blocks i,f,o (coupled i,o) as indices of ONNX's P blocks i,o,f.
std::vector<int64_t> peephole_order(const CellSpec& cell) {
  return cell.coupled_gates ? std::vector<int64_t>{0, 1} : std::vector<int64_t>{0, 2, 1};
}

// Row blocks `order` (each `hidden` rows of `cols` values) of the matrix at `source`, stacked.
Tensor gather_blocks(const float* source, const std::vector<int64_t>& order, int64_t hidden, int64_t cols) {
  std::vector<float> values;
  values.reserve(order.size() * static_cast<size_t>(hidden * cols));
  for (int64_t block : order) {
    values.insert(values.end(), source + block * hidden * cols, source + (block + 1) * hidden * cols);
  }
  const int64_t rows = static_cast<int64_t>(order.size()) * hidden;
  return cols == 1 ? Tensor({rows}, std::move(values)) : Tensor({rows, cols}, std::move(values));
}

bool all_zero(const Tensor& tensor) {
  for (float value : tensor.values()) {
    if (value != 0.0f) return false;
  }
  return true;
}

}  // namespace

std::vector<LayerParameters> to_recur_parameters(const CellSpec& cell, const OnnxRnnWeights& weights) {
  const int64_t gates = onnx_gate_count(cell.family);
  const Tensor& w = weights.w;
  if (w.rank() != 3 || w.dim(0) < 1 || w.dim(0) > 2 || w.dim(1) % gates != 0 || w.dim(1) == 0) {
    throw Error("ONNX W: expected shape [D in {1, 2}, " + std::to_string(gates) + "*H, I], got " +
                shape_to_string(w.shape()));
  }
  const int64_t directions = w.dim(0), hidden = w.dim(1) / gates, input = w.dim(2);
  weights.r.check_shape("ONNX R", {directions, gates * hidden, hidden});
  if (!weights.b.empty()) weights.b.check_shape("ONNX B", {directions, 2 * gates * hidden});
  if (!weights.p.empty()) {
    if (cell.family != CellFamily::lstm)
      throw Error("ONNX P: peepholes given for a " + cell.name() + " cell");
    weights.p.check_shape("ONNX P", {directions, 3 * hidden});
    if (!cell.peephole && !all_zero(weights.p)) {
      throw Error("ONNX P: non-zero peepholes given for the cell " + cell.name() + ", which has none");
    }
  }
  const std::vector<int64_t> order = gate_order(cell);
  const int64_t rows = static_cast<int64_t>(order.size()) * hidden;
  std::vector<LayerParameters> layers(static_cast<size_t>(directions));
  for (int64_t d = 0; d < directions; ++d) {
    LayerParameters& layer = layers[static_cast<size_t>(d)];
    layer.w_x = gather_blocks(w.data() + d * gates * hidden * input, order, hidden, input);
    layer.w_h = gather_blocks(weights.r.data() + d * gates * hidden * hidden, order, hidden, hidden);
    if (weights.b.empty()) {
      layer.b_x = Tensor({rows});
      layer.b_h = Tensor({rows});
    } else {
      const float* b = weights.b.data() + d * 2 * gates * hidden;  // [Wb, Rb]
      layer.b_x = gather_blocks(b, order, hidden, 1);
      layer.b_h = gather_blocks(b + gates * hidden, order, hidden, 1);
    }
    if (cell.peephole) {
      const std::vector<int64_t> p_order = peephole_order(cell);
      layer.peephole = weights.p.empty()
                           ? Tensor({static_cast<int64_t>(p_order.size()) * hidden})
                           : gather_blocks(weights.p.data() + d * 3 * hidden, p_order, hidden, 1);
    }
  }
  return layers;
}

namespace {

int64_t int_attribute(const OnnxNode& node, const std::string& name, int64_t fallback) {
  const OnnxAttribute* attribute = node.attribute(name);
  return attribute ? attribute->i : fallback;
}

// The activations attribute lists one group per direction; recur runs only the groups in `allowed`.
// Returns the index of the allowed group used.
size_t check_activations(const OnnxNode& node, const std::string& where, int directions,
                         const std::vector<std::vector<std::string>>& allowed) {
  const OnnxAttribute* attribute = node.attribute("activations");
  if (!attribute) return 0;
  const std::vector<std::string>& names = attribute->strings;
  for (size_t k = 0; k < allowed.size(); ++k) {
    bool match = names.size() == allowed[k].size() * static_cast<size_t>(directions);
    for (size_t j = 0; match && j < names.size(); ++j) match = names[j] == allowed[k][j % allowed[k].size()];
    if (match) return k;
  }
  auto join = [](const std::vector<std::string>& list) {
    std::string text;
    for (const std::string& name : list) text += (text.empty() ? "" : ",") + name;
    return "[" + text + "]";
  };
  std::string supported;
  for (const std::vector<std::string>& group : allowed)
    supported += (supported.empty() ? "" : " or ") + join(group);
  throw Error(where + ": activations " + join(names) + " are not supported (per direction: " + supported +
              ")");
}

}  // namespace

OnnxRnnNodeConfig rnn_node_config(const OnnxNode& node, const Shape& w_shape, bool peephole) {
  const std::string where = "ONNX node '" + node.name + "' (" + node.op_type + ")";
  for (const char* name : {"clip", "activation_alpha", "activation_beta"}) {
    if (node.attribute(name)) throw Error(where + ": attribute " + name + " is not supported");
  }
  const OnnxAttribute* direction = node.attribute("direction");
  const std::string direction_name = direction ? direction->s : "forward";
  if (direction_name != "forward" && direction_name != "bidirectional") {
    throw Error(where + ": direction '" + direction_name + "' is not supported (forward, bidirectional)");
  }
  const int directions = direction_name == "bidirectional" ? 2 : 1;
  const int64_t layout = int_attribute(node, "layout", 0);
  if (layout != 0 && layout != 1)
    throw Error(where + ": layout " + std::to_string(layout) + " is not 0 or 1");

  OnnxRnnNodeConfig result;
  CellSpec& cell = result.config.cell;
  if (node.op_type == "RNN") {
    const size_t group = check_activations(node, where, directions, {{"Tanh"}, {"Relu"}});
    cell = group == 0 ? CellSpec::rnn_tanh() : CellSpec::rnn_relu();
  } else if (node.op_type == "GRU") {
    check_activations(node, where, directions, {{"Sigmoid", "Tanh"}});
    cell = CellSpec::gru(int_attribute(node, "linear_before_reset", 0) != 0 ? GruReset::after
                                                                            : GruReset::before);
  } else if (node.op_type == "LSTM") {
    check_activations(node, where, directions, {{"Sigmoid", "Tanh", "Tanh"}});
    cell = CellSpec::lstm();
    cell.peephole = peephole;
    cell.coupled_gates = int_attribute(node, "input_forget", 0) != 0;
  } else {
    throw Error(where + ": op type is not RNN, GRU or LSTM");
  }
  if (peephole && cell.family != CellFamily::lstm) throw Error(where + ": input P is LSTM's only");

  const int64_t gates = onnx_gate_count(cell.family);
  if (w_shape.size() != 3 || w_shape[0] != directions || w_shape[1] <= 0 || w_shape[1] % gates != 0) {
    throw Error(where + ": input W: expected shape [" + std::to_string(directions) + ", " +
                std::to_string(gates) + "*H, I], got " + shape_to_string(w_shape));
  }
  const int64_t hidden = w_shape[1] / gates;
  const int64_t hidden_attribute = int_attribute(node, "hidden_size", hidden);
  if (hidden_attribute != hidden) {
    throw Error(where + ": hidden_size " + std::to_string(hidden_attribute) + " does not match W's shape " +
                shape_to_string(w_shape));
  }
  result.config.input_size = w_shape[2];
  result.config.hidden_size = hidden;
  result.config.num_layers = 1;
  result.config.bidirectional = directions == 2;
  result.batch_first = layout == 1;
  return result;
}

}  // namespace recur::onnx
