// Protobuf wire format (https://protobuf.dev/programming-guides/encoding/): a message is a sequence of
// (tag = field_number << 3 | wire_type, value). Wire types: 0 varint, 1 fixed 64-bit, 2 length-delimited
// (strings, bytes, sub-messages, packed repeated scalars), 5 fixed 32-bit. Unknown fields are skipped;
// repeated scalars are read both packed and unpacked, as protobuf parsers must.
#include "io/onnx_proto.hpp"

#include <bit>
#include <cstring>

#include "io/file_util.hpp"
#include "io/float16.hpp"
#include "recur/error.hpp"

namespace recur::onnx {
namespace {

static_assert(std::endian::native == std::endian::little, "recur's file formats assume a little-endian host");

enum WireType : uint32_t { varint = 0, fixed64 = 1, length_delimited = 2, fixed32 = 5 };

// One message: the byte range [position, end) of the whole file, so that errors give file offsets.
class Reader {
 public:
  Reader(const std::vector<uint8_t>& bytes, const std::string& path)
      : bytes_(bytes), path_(path), position_(0), end_(bytes.size()) {}

  bool done() const { return position_ >= end_; }
  size_t position() const { return position_; }

  [[noreturn]] void fail(const std::string& what, size_t offset) const {
    throw Error(path_ + ": bad protobuf at byte offset " + std::to_string(offset) + ": " + what);
  }

  // Reads a tag; returns the field number and sets `wire_type`.
  uint32_t read_tag(uint32_t& wire_type) {
    size_t at = position_;
    uint64_t tag = read_varint();
    wire_type = static_cast<uint32_t>(tag & 7);
    uint64_t field = tag >> 3;
    if (field == 0 || field > 0x1FFFFFFF) fail("invalid field number " + std::to_string(field), at);
    return static_cast<uint32_t>(field);
  }

  uint64_t read_varint() {
    size_t at = position_;
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (position_ >= end_) fail("truncated varint", at);
      uint8_t byte = bytes_[position_++];
      value |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if (!(byte & 0x80)) return value;
    }
    fail("varint longer than 10 bytes", at);
  }

  template <typename T>
  T read_fixed() {
    if (end_ - position_ < sizeof(T))
      fail("truncated " + std::to_string(8 * sizeof(T)) + "-bit value", position_);
    T value;
    std::memcpy(&value, bytes_.data() + position_, sizeof(T));
    position_ += sizeof(T);
    return value;
  }

  // A length-delimited value as a reader over its bytes (this reader moves past them).
  Reader read_message() {
    size_t at = position_;
    uint64_t length = read_varint();
    if (length > end_ - position_) {
      fail("length " + std::to_string(length) + " runs past the end of its message (" +
               std::to_string(end_ - position_) + " bytes left)",
           at);
    }
    Reader inner = *this;
    inner.end_ = position_ + length;
    position_ += length;
    return inner;
  }

  std::string read_string() {
    Reader inner = read_message();
    return std::string(reinterpret_cast<const char*>(bytes_.data() + inner.position_),
                       inner.end_ - inner.position_);
  }

  void skip(uint32_t wire_type, uint32_t field) {
    switch (wire_type) {
      case varint:
        read_varint();
        break;
      case fixed64:
        read_fixed<uint64_t>();
        break;
      case length_delimited:
        read_message();
        break;
      case fixed32:
        read_fixed<uint32_t>();
        break;
      default:
        fail("field " + std::to_string(field) + " has unsupported wire type " + std::to_string(wire_type) +
                 " (groups are not supported)",
             position_);
    }
  }

  // A repeated scalar field: one packed run (wire type 2) or one unpacked element.
  template <typename T, typename ReadOne>
  void read_repeated(uint32_t wire_type, uint32_t element_wire_type, std::vector<T>& out, ReadOne read_one) {
    if (wire_type == length_delimited) {
      Reader packed = read_message();
      while (!packed.done()) out.push_back(read_one(packed));
    } else if (wire_type == element_wire_type) {
      out.push_back(read_one(*this));
    } else {
      fail("repeated field has wire type " + std::to_string(wire_type) + ", expected " +
               std::to_string(element_wire_type) + " or 2 (packed)",
           position_);
    }
  }

  void expect_wire_type(uint32_t wire_type, uint32_t expected, uint32_t field) const {
    if (wire_type != expected) {
      fail("field " + std::to_string(field) + " has wire type " + std::to_string(wire_type) + ", expected " +
               std::to_string(expected),
           position_);
    }
  }

  const std::string& path() const { return path_; }
  const uint8_t* data_at(size_t offset) const { return bytes_.data() + offset; }
  size_t end() const { return end_; }

 private:
  const std::vector<uint8_t>& bytes_;
  const std::string& path_;
  size_t position_;
  size_t end_;
};

float read_float(Reader& r) { return r.read_fixed<float>(); }
double read_double(Reader& r) { return r.read_fixed<double>(); }
int64_t read_int64(Reader& r) { return static_cast<int64_t>(r.read_varint()); }
uint64_t read_uint64(Reader& r) { return r.read_varint(); }
// int32 values are sign-extended to 64 bits on the wire; the low 32 bits are the value.
int32_t read_int32(Reader& r) { return static_cast<int32_t>(static_cast<uint32_t>(r.read_varint())); }

// TensorProto.DataType values recur converts, with their element sizes in raw_data.
size_t raw_element_size(int32_t data_type) {
  switch (data_type) {
    case 2:
    case 3:
    case 9:
      return 1;  // UINT8, INT8, BOOL
    case 4:
    case 5:
    case 10:
    case 16:
      return 2;  // UINT16, INT16, FLOAT16, BFLOAT16
    case 1:
    case 6:
    case 12:
      return 4;  // FLOAT, INT32, UINT32
    case 7:
    case 11:
    case 13:
      return 8;  // INT64, DOUBLE, UINT64
    default:
      return 0;
  }
}

double raw_element(int32_t data_type, const uint8_t* p) {
  auto load = [p]<typename T>(T) {
    T value;
    std::memcpy(&value, p, sizeof(T));
    return value;
  };
  switch (data_type) {
    case 1:
      return load(float{});
    case 2:
    case 9:
      return load(uint8_t{});
    case 3:
      return load(int8_t{});
    case 4:
      return load(uint16_t{});
    case 5:
      return load(int16_t{});
    case 6:
      return load(int32_t{});
    case 7:
      return static_cast<double>(load(int64_t{}));
    case 10:
      return io::half_to_float(load(uint16_t{}));
    case 11:
      return load(double{});
    case 12:
      return load(uint32_t{});
    case 13:
      return static_cast<double>(load(uint64_t{}));
    case 16:
      return io::bfloat16_to_float(load(uint16_t{}));
    default:
      return 0;
  }
}

// The typed repeated fields of a TensorProto before they become `values`.
struct TensorFields {
  std::vector<float> float_data;
  std::vector<int32_t> int32_data;
  std::vector<int64_t> int64_data;
  std::vector<double> double_data;
  std::vector<uint64_t> uint64_data;
  size_t raw_begin = 0, raw_end = 0;
  bool has_raw = false;
  bool external = false;
};

void convert_tensor_values(const TensorFields& f, OnnxTensor& tensor, const Reader& r, size_t start) {
  std::string where = "tensor '" + tensor.name + "' (data_type " + std::to_string(tensor.data_type) + ")";
  size_t element_size = raw_element_size(tensor.data_type);
  if (element_size == 0) r.fail(where + ": unsupported data_type", start);
  if (f.external) r.fail(where + ": external data is not supported", start);
  std::vector<double>& v = tensor.values;
  if (f.has_raw) {
    size_t size = f.raw_end - f.raw_begin;
    if (size % element_size != 0) {
      r.fail(where + ": raw_data of " + std::to_string(size) + " bytes is not a multiple of " +
                 std::to_string(element_size),
             f.raw_begin);
    }
    for (size_t k = 0; k < size; k += element_size)
      v.push_back(raw_element(tensor.data_type, r.data_at(f.raw_begin + k)));
  } else if (tensor.data_type == 1) {
    v.assign(f.float_data.begin(), f.float_data.end());
  } else if (tensor.data_type == 11) {
    v = f.double_data;
  } else if (tensor.data_type == 7) {
    for (int64_t x : f.int64_data) v.push_back(static_cast<double>(x));
  } else if (tensor.data_type == 12 || tensor.data_type == 13) {
    for (uint64_t x : f.uint64_data) v.push_back(static_cast<double>(x));
  } else {
    // int32_data holds the 8- and 16-bit types too; FLOAT16 and BFLOAT16 as their bit patterns.
    for (int32_t x : f.int32_data) {
      uint16_t bits = static_cast<uint16_t>(x);
      v.push_back(tensor.data_type == 10   ? io::half_to_float(bits)
                  : tensor.data_type == 16 ? io::bfloat16_to_float(bits)
                                           : static_cast<double>(x));
    }
  }
  int64_t expected = shape_element_count(tensor.shape);
  if (static_cast<int64_t>(v.size()) != expected) {
    r.fail(where + ": " + std::to_string(v.size()) + " values for dims " + shape_to_string(tensor.shape) +
               " (" + std::to_string(expected) + " elements)",
           start);
  }
}

OnnxTensor parse_tensor(Reader r) {
  size_t start = r.position();
  OnnxTensor tensor;
  TensorFields f;
  std::vector<int64_t> dims;
  while (!r.done()) {
    uint32_t wire_type = 0;
    uint32_t field = r.read_tag(wire_type);
    switch (field) {
      case 1:
        r.read_repeated(wire_type, varint, dims, read_int64);
        break;
      case 2:
        r.expect_wire_type(wire_type, varint, field);
        tensor.data_type = read_int32(r);
        break;
      case 4:
        r.read_repeated(wire_type, fixed32, f.float_data, read_float);
        break;
      case 5:
        r.read_repeated(wire_type, varint, f.int32_data, read_int32);
        break;
      case 7:
        r.read_repeated(wire_type, varint, f.int64_data, read_int64);
        break;
      case 8:
        r.expect_wire_type(wire_type, length_delimited, field);
        tensor.name = r.read_string();
        break;
      case 9: {
        r.expect_wire_type(wire_type, length_delimited, field);
        Reader raw = r.read_message();
        f.has_raw = true;
        f.raw_begin = raw.position();
        f.raw_end = raw.end();
        break;
      }
      case 10:
        r.read_repeated(wire_type, fixed64, f.double_data, read_double);
        break;
      case 11:
        r.read_repeated(wire_type, varint, f.uint64_data, read_uint64);
        break;
      case 14:  // data_location: 1 = EXTERNAL
        r.expect_wire_type(wire_type, varint, field);
        f.external = r.read_varint() == 1;
        break;
      default:
        r.skip(wire_type, field);  // segment, string_data, doc_string, external_data, ...
    }
  }
  for (int64_t d : dims) {
    if (d < 0) r.fail("tensor '" + tensor.name + "': negative dimension " + std::to_string(d), start);
  }
  tensor.shape = Shape(dims.begin(), dims.end());
  convert_tensor_values(f, tensor, r, start);
  return tensor;
}

OnnxAttribute parse_attribute(Reader r) {
  OnnxAttribute attribute;
  while (!r.done()) {
    uint32_t wire_type = 0;
    uint32_t field = r.read_tag(wire_type);
    switch (field) {
      case 1:
        r.expect_wire_type(wire_type, length_delimited, field);
        attribute.name = r.read_string();
        break;
      case 2:
        r.expect_wire_type(wire_type, fixed32, field);
        attribute.f = read_float(r);
        break;
      case 3:
        r.expect_wire_type(wire_type, varint, field);
        attribute.i = read_int64(r);
        break;
      case 4:
        r.expect_wire_type(wire_type, length_delimited, field);
        attribute.s = r.read_string();
        break;
      case 5:  // a tensor value: parsed for validity; OnnxAttribute does not keep it
        r.expect_wire_type(wire_type, length_delimited, field);
        parse_tensor(r.read_message());
        break;
      case 7:
        r.read_repeated(wire_type, fixed32, attribute.floats, read_float);
        break;
      case 8:
        r.read_repeated(wire_type, varint, attribute.ints, read_int64);
        break;
      case 9:
        r.expect_wire_type(wire_type, length_delimited, field);
        attribute.strings.push_back(r.read_string());
        break;
      case 20:
        r.expect_wire_type(wire_type, varint, field);
        attribute.type = read_int32(r);
        break;
      default:
        r.skip(wire_type, field);
    }
  }
  return attribute;
}

OnnxNode parse_node(Reader r) {
  OnnxNode node;
  while (!r.done()) {
    uint32_t wire_type = 0;
    uint32_t field = r.read_tag(wire_type);
    if (field >= 1 && field <= 4) r.expect_wire_type(wire_type, length_delimited, field);
    switch (field) {
      case 1:
        node.inputs.push_back(r.read_string());
        break;
      case 2:
        node.outputs.push_back(r.read_string());
        break;
      case 3:
        node.name = r.read_string();
        break;
      case 4:
        node.op_type = r.read_string();
        break;
      case 5:
        r.expect_wire_type(wire_type, length_delimited, field);
        node.attributes.push_back(parse_attribute(r.read_message()));
        break;
      default:
        r.skip(wire_type, field);
    }
  }
  return node;
}

// ValueInfoProto: only its name (field 1).
std::string parse_value_info_name(Reader r) {
  std::string name;
  while (!r.done()) {
    uint32_t wire_type = 0;
    uint32_t field = r.read_tag(wire_type);
    if (field == 1) {
      r.expect_wire_type(wire_type, length_delimited, field);
      name = r.read_string();
    } else {
      r.skip(wire_type, field);
    }
  }
  return name;
}

OnnxGraph parse_graph(Reader r) {
  OnnxGraph graph;
  while (!r.done()) {
    uint32_t wire_type = 0;
    uint32_t field = r.read_tag(wire_type);
    bool message_field = field == 1 || field == 5 || field == 11 || field == 12;
    if (message_field) r.expect_wire_type(wire_type, length_delimited, field);
    switch (field) {
      case 1:
        graph.nodes.push_back(parse_node(r.read_message()));
        break;
      case 5:
        graph.initializers.push_back(parse_tensor(r.read_message()));
        break;
      case 11:
        graph.inputs.push_back(parse_value_info_name(r.read_message()));
        break;
      case 12:
        graph.outputs.push_back(parse_value_info_name(r.read_message()));
        break;
      default:
        r.skip(wire_type, field);
    }
  }
  return graph;
}

}  // namespace

const OnnxAttribute* OnnxNode::attribute(const std::string& attribute_name) const {
  for (const OnnxAttribute& a : attributes)
    if (a.name == attribute_name) return &a;
  return nullptr;
}

OnnxTensor read_tensor_proto(const std::string& path) {
  std::vector<uint8_t> bytes = io::read_file_bytes(path);
  return parse_tensor(Reader(bytes, path));
}

OnnxGraph read_model_graph(const std::string& path) {
  std::vector<uint8_t> bytes = io::read_file_bytes(path);
  Reader r(bytes, path);
  bool found = false;
  OnnxGraph graph;
  while (!r.done()) {
    uint32_t wire_type = 0;
    uint32_t field = r.read_tag(wire_type);
    if (field == 7) {  // ModelProto.graph
      r.expect_wire_type(wire_type, length_delimited, field);
      graph = parse_graph(r.read_message());
      found = true;
    } else {
      r.skip(wire_type, field);
    }
  }
  if (!found) throw Error(path + ": ONNX model has no graph (ModelProto field 7)");
  return graph;
}

}  // namespace recur::onnx
