// The protobuf reader behind ONNX import: wire-format corner cases on messages encoded here by hand,
// then ONNX's own LSTM test case (libonnx-testdata). The values this reader gives for every tensor of
// the ONNX LSTM/GRU/RNN cases were checked once against onnx.numpy_helper while it was written.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>

#include "io/onnx_proto.hpp"
#include "recur/error.hpp"
#include "temp_files.hpp"

namespace {

using recur::Error;
using recur::Shape;
using namespace recur::onnx;

using recur::test::temp_path;

// A protobuf encoder, the inverse of what the reader does, written from the wire-format spec.
struct Encoder {
  std::string bytes;
  Encoder& varint(uint64_t v) {
    do {
      bytes += static_cast<char>((v & 0x7F) | (v >= 0x80 ? 0x80 : 0));
      v >>= 7;
    } while (v);
    return *this;
  }
  Encoder& tag(uint32_t field, uint32_t wire_type) { return varint(uint64_t{field} << 3 | wire_type); }
  Encoder& field_varint(uint32_t field, uint64_t v) { return tag(field, 0).varint(v); }
  Encoder& field_bytes(uint32_t field, const std::string& b) {
    tag(field, 2).varint(b.size());
    bytes += b;
    return *this;
  }
  template <typename T>
  Encoder& fixed(T v) {
    char raw[sizeof(T)];
    std::memcpy(raw, &v, sizeof(T));
    bytes.append(raw, sizeof(T));
    return *this;
  }
};

std::string write_bytes(const std::string& bytes) {
  const std::string path = temp_path("message.pb");
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

std::string error_of(const std::function<void()>& read) {
  try {
    read();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

TEST(ProtoReader, DecodesPackedUnpackedAndUnknownFields) {
  Encoder packed_dims;
  packed_dims.varint(2).varint(3);
  Encoder t;
  t.field_bytes(1, packed_dims.bytes);  // dims = [2, 3], packed
  t.field_varint(2, 1);                 // FLOAT
  t.field_varint(99, 12345);            // unknown fields of every wire type are skipped
  t.tag(100, 1).fixed<uint64_t>(7);
  t.tag(101, 5).fixed<uint32_t>(7);
  t.field_bytes(102, "ignored");
  for (float v : {1.5f, -2.0f, 0.1f}) t.tag(4, 5).fixed(v);  // float_data, unpacked
  Encoder packed_floats;
  for (float v : {3.0f, 1e-40f, -0.0f}) packed_floats.fixed(v);
  t.field_bytes(4, packed_floats.bytes);  // and a packed run of the same field
  t.field_bytes(8, "weights");
  OnnxTensor tensor = read_tensor_proto(write_bytes(t.bytes));
  EXPECT_EQ(tensor.name, "weights");
  EXPECT_EQ(tensor.data_type, 1);
  EXPECT_EQ(tensor.shape, (Shape{2, 3}));
  const std::vector<float> expected = {1.5f, -2.0f, 0.1f, 3.0f, 1e-40f, -0.0f};
  ASSERT_EQ(tensor.values.size(), expected.size());
  for (size_t k = 0; k < expected.size(); ++k) EXPECT_EQ(tensor.values[k], static_cast<double>(expected[k]));
}

TEST(ProtoReader, DecodesIntegerDoubleAndRawData) {
  // int32_data: negative values are 10-byte sign-extended varints.
  Encoder ints;
  ints.field_varint(1, 3).field_varint(2, 6);
  for (int32_t v : {-1, 2147483647, -2147483647 - 1})
    ints.field_varint(5, static_cast<uint64_t>(static_cast<int64_t>(v)));
  EXPECT_EQ(read_tensor_proto(write_bytes(ints.bytes)).values,
            (std::vector<double>{-1, 2147483647, -2147483648.0}));

  Encoder doubles, packed;
  for (double v : {0.1, -1e300}) packed.fixed(v);
  doubles.field_varint(1, 2).field_varint(2, 11).field_bytes(10, packed.bytes);
  EXPECT_EQ(read_tensor_proto(write_bytes(doubles.bytes)).values, (std::vector<double>{0.1, -1e300}));

  Encoder int64s, packed64;
  for (int64_t v : {int64_t{-5}, int64_t{1} << 50}) packed64.varint(static_cast<uint64_t>(v));
  int64s.field_varint(1, 2).field_varint(2, 7).field_bytes(7, packed64.bytes);
  EXPECT_EQ(read_tensor_proto(write_bytes(int64s.bytes)).values,
            (std::vector<double>{-5, std::ldexp(1.0, 50)}));

  // raw_data, little-endian: INT64 and FLOAT16 (0x3C00 = 1, 0xC000 = -2, 0x0001 = 2^-24).
  Encoder raw64, raw_bytes;
  for (int64_t v : {int64_t{7}, int64_t{-9}}) raw_bytes.fixed(v);
  raw64.field_varint(1, 2).field_varint(2, 7).field_bytes(9, raw_bytes.bytes);
  EXPECT_EQ(read_tensor_proto(write_bytes(raw64.bytes)).values, (std::vector<double>{7, -9}));
  Encoder half, half_bytes;
  for (uint16_t v : {0x3C00, 0xC000, 0x0001}) half_bytes.fixed(v);
  half.field_varint(1, 3).field_varint(2, 10).field_bytes(9, half_bytes.bytes);
  EXPECT_EQ(read_tensor_proto(write_bytes(half.bytes)).values,
            (std::vector<double>{1, -2, std::ldexp(1.0, -24)}));

  // A scalar (no dims) with one value.
  Encoder scalar;
  scalar.field_varint(2, 1).tag(4, 5).fixed(2.5f);
  OnnxTensor s = read_tensor_proto(write_bytes(scalar.bytes));
  EXPECT_EQ(s.shape, Shape{});
  EXPECT_EQ(s.values, std::vector<double>{2.5});
}

TEST(ProtoReader, ErrorsNameFileAndOffset) {
  Encoder truncated_varint;
  truncated_varint.field_varint(2, 1).bytes += '\x80';
  std::string path = write_bytes(truncated_varint.bytes);
  std::string message = error_of([&] { read_tensor_proto(path); });
  EXPECT_NE(message.find(path), std::string::npos) << message;
  EXPECT_NE(message.find("byte offset 2"), std::string::npos) << message;
  EXPECT_NE(message.find("varint"), std::string::npos) << message;

  Encoder long_length;
  long_length.field_varint(2, 1).tag(8, 2).varint(100).bytes += "abc";
  message = error_of([&] { read_tensor_proto(write_bytes(long_length.bytes)); });
  EXPECT_NE(message.find("byte offset 3"), std::string::npos) << message;
  EXPECT_NE(message.find("length 100"), std::string::npos) << message;

  Encoder group;
  group.tag(50, 3);
  message = error_of([&] { read_tensor_proto(write_bytes(group.bytes)); });
  EXPECT_NE(message.find("wire type 3"), std::string::npos) << message;

  Encoder count;
  count.field_varint(1, 4).field_varint(2, 1).tag(4, 5).fixed(1.0f);
  message = error_of([&] { read_tensor_proto(write_bytes(count.bytes)); });
  EXPECT_NE(message.find("1 values for dims [4]"), std::string::npos) << message;

  Encoder wrong_wire;
  wrong_wire.tag(8, 0).varint(1);  // name as a varint
  message = error_of([&] { read_tensor_proto(write_bytes(wrong_wire.bytes)); });
  EXPECT_NE(message.find("field 8 has wire type 0"), std::string::npos) << message;

  Encoder no_graph;
  no_graph.field_varint(1, 8);  // ir_version only
  message = error_of([&] { read_model_graph(write_bytes(no_graph.bytes)); });
  EXPECT_NE(message.find("no graph"), std::string::npos) << message;
}

TEST(ProtoReader, ReadsHandBuiltModelGraph) {
  Encoder attribute_ints, attribute, floats_attribute, node, input, graph, model, packed_ints;
  packed_ints.varint(4).varint(static_cast<uint64_t>(int64_t{-1}));
  attribute.field_bytes(1, "hidden_size").field_varint(3, 5).field_varint(20, 2);
  attribute_ints.field_bytes(1, "axes").field_bytes(8, packed_ints.bytes).field_varint(20, 7);
  floats_attribute.field_bytes(1, "activation_alpha").tag(7, 5).fixed(0.5f).tag(7, 5).fixed(2.0f);
  floats_attribute.field_bytes(9, "Tanh").field_bytes(9, "Relu").field_varint(20, 6);
  node.field_bytes(1, "X").field_bytes(1, "").field_bytes(2, "Y").field_bytes(4, "GRU").field_bytes(3,
                                                                                                    "gru_0");
  node.field_bytes(5, attribute.bytes)
      .field_bytes(5, attribute_ints.bytes)
      .field_bytes(5, floats_attribute.bytes);
  input.field_bytes(1, "X").field_bytes(2, "type info, skipped");
  graph.field_bytes(1, node.bytes).field_bytes(2, "g").field_bytes(11, input.bytes);
  graph.field_bytes(12, Encoder().field_bytes(1, "Y").bytes);
  model.field_varint(1, 8).field_bytes(7, graph.bytes).field_bytes(8, "opset, skipped");

  OnnxGraph g = read_model_graph(write_bytes(model.bytes));
  EXPECT_EQ(g.inputs, std::vector<std::string>{"X"});
  EXPECT_EQ(g.outputs, std::vector<std::string>{"Y"});
  ASSERT_EQ(g.nodes.size(), 1u);
  const OnnxNode& n = g.nodes[0];
  EXPECT_EQ(n.op_type, "GRU");
  EXPECT_EQ(n.name, "gru_0");
  EXPECT_EQ(n.inputs, (std::vector<std::string>{"X", ""}));
  ASSERT_NE(n.attribute("hidden_size"), nullptr);
  EXPECT_EQ(n.attribute("hidden_size")->i, 5);
  EXPECT_EQ(n.attribute("hidden_size")->type, 2);
  EXPECT_EQ(n.attribute("axes")->ints, (std::vector<int64_t>{4, -1}));
  EXPECT_EQ(n.attribute("activation_alpha")->floats, (std::vector<float>{0.5f, 2.0f}));
  EXPECT_EQ(n.attribute("activation_alpha")->strings, (std::vector<std::string>{"Tanh", "Relu"}));
  EXPECT_EQ(n.attribute("missing"), nullptr);
}

// ONNX's LSTM-with-peepholes node case: the model's node and the shapes of its inputs agree.
TEST(OnnxTestdata, ReadsLstmWithPeepholesCase) {
  const std::string dir = std::string(RECUR_ONNX_TESTDATA_DIR) + "/test_lstm_with_peepholes";
  if (!std::filesystem::exists(dir)) GTEST_SKIP() << dir << " absent (libonnx-testdata)";
  OnnxGraph graph = read_model_graph(dir + "/model.onnx");
  ASSERT_EQ(graph.nodes.size(), 1u);
  const OnnxNode& lstm = graph.nodes[0];
  EXPECT_EQ(lstm.op_type, "LSTM");
  const std::vector<std::string> inputs = {"X",         "W",         "R", "B", "sequence_lens",
                                           "initial_h", "initial_c", "P"};
  EXPECT_EQ(lstm.inputs, inputs);
  EXPECT_EQ(graph.inputs, inputs);
  EXPECT_EQ(lstm.outputs, (std::vector<std::string>{"", "Y_h"}));
  EXPECT_EQ(graph.outputs, std::vector<std::string>{"Y_h"});
  const OnnxAttribute* hidden_size = lstm.attribute("hidden_size");
  ASSERT_NE(hidden_size, nullptr);
  EXPECT_EQ(hidden_size->type, 2);  // INT
  const int64_t H = hidden_size->i;
  EXPECT_GT(H, 0);

  std::vector<OnnxTensor> data;
  for (size_t k = 0; k < inputs.size(); ++k) {
    data.push_back(read_tensor_proto(dir + "/test_data_set_0/input_" + std::to_string(k) + ".pb"));
    EXPECT_EQ(data[k].name, inputs[k]);
    EXPECT_EQ(static_cast<int64_t>(data[k].values.size()), recur::shape_element_count(data[k].shape))
        << inputs[k];
    EXPECT_EQ(data[k].data_type, inputs[k] == "sequence_lens" ? 6 : 1) << inputs[k];
  }
  // X [T, B, I], W [1, 4H, I], R [1, 4H, H], B [1, 8H], sequence_lens [B], h0/c0 [1, B, H], P [1, 3H].
  const Shape& x = data[0].shape;
  ASSERT_EQ(x.size(), 3u);
  const int64_t T = x[0], B = x[1], I = x[2];
  EXPECT_EQ(data[1].shape, (Shape{1, 4 * H, I}));
  EXPECT_EQ(data[2].shape, (Shape{1, 4 * H, H}));
  EXPECT_EQ(data[3].shape, (Shape{1, 8 * H}));
  EXPECT_EQ(data[4].shape, (Shape{B}));
  for (double length : data[4].values) EXPECT_TRUE(length >= 0 && length <= static_cast<double>(T));
  EXPECT_EQ(data[5].shape, (Shape{1, B, H}));
  EXPECT_EQ(data[6].shape, (Shape{1, B, H}));
  EXPECT_EQ(data[7].shape, (Shape{1, 3 * H}));

  // A copy cut short fails with the file and an offset, not with garbage values.
  std::ifstream in(dir + "/test_data_set_0/input_1.pb", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string cut = write_bytes(bytes.substr(0, bytes.size() / 2));
  std::string message = error_of([&] { read_tensor_proto(cut); });
  EXPECT_NE(message.find(cut), std::string::npos) << message;
  EXPECT_NE(message.find("byte offset"), std::string::npos) << message;
}

}  // namespace
