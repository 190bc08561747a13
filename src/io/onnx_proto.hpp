#pragma once
// A small reader of ONNX protobuf files: TensorProto (.pb test data) and the nodes of a ModelProto's
// graph with their attributes. Enough to run ONNX's LSTM/GRU/RNN node test cases through recur's cells;
// importing whole models is later work. Wire format: https://protobuf.dev/programming-guides/encoding/
#include <cstdint>
#include <string>
#include <vector>

#include "recur/tensor.hpp"

namespace recur::onnx {

struct OnnxTensor {
  std::string name;
  Shape shape;
  int32_t data_type = 0;       // TensorProto.DataType: 1 FLOAT, 6 INT32, 7 INT64, 11 DOUBLE, ...
  std::vector<double> values;  // converted from float_data / int32_data / int64_data / double_data / raw_data
};

struct OnnxAttribute {
  std::string name;
  int32_t type = 0;  // AttributeProto.AttributeType: 1 FLOAT, 2 INT, 3 STRING, 6 FLOATS, 7 INTS, 8 STRINGS
  float f = 0;
  int64_t i = 0;
  std::string s;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
};

struct OnnxNode {
  std::string op_type;
  std::string name;
  std::vector<std::string> inputs;   // "" marks an omitted optional input
  std::vector<std::string> outputs;  // "" marks an omitted optional output
  std::vector<OnnxAttribute> attributes;
  // nullptr when absent.
  const OnnxAttribute* attribute(const std::string& name) const;
};

struct OnnxGraph {
  std::vector<OnnxNode> nodes;
  std::vector<std::string> inputs;   // graph input names, in order
  std::vector<std::string> outputs;  // graph output names, in order
  std::vector<OnnxTensor> initializers;
};

// Throw recur::Error naming the file and the offset where the encoding breaks.
OnnxTensor read_tensor_proto(const std::string& path);
OnnxGraph read_model_graph(const std::string& path);

}  // namespace recur::onnx
