// NumPy .npy files: magic "\x93NUMPY", version byte pair, header length (2 bytes in 1.0, 4 in 2.0/3.0),
// a Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } padded with spaces
// and ending in '\n', then the raw array.
// https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
#include "recur/npy.hpp"

#include <bit>
#include <cstring>
#include <map>

#include "io/file_util.hpp"
#include "recur/error.hpp"

namespace recur {
namespace {

static_assert(std::endian::native == std::endian::little, "recur's file formats assume a little-endian host");

constexpr char magic[] = "\x93NUMPY";
constexpr size_t magic_size = 6;

// The header dict's values: a string, a bool (or None), an integer or a tuple of integers.
struct PyValue {
  enum class Kind { string, boolean, none, integer, tuple, other };
  explicit PyValue(Kind value_kind = Kind::other) : kind(value_kind) {}
  Kind kind;
  std::string text;
  bool flag = false;
  std::vector<int64_t> integers;  // tuple elements, or the one integer
};

// Reads the subset of Python literal syntax that numpy writes for .npy headers.
class HeaderParser {
 public:
  HeaderParser(const std::string& text, const std::string& path) : text_(text), path_(path) {}

  std::map<std::string, PyValue> parse_dict() {
    std::map<std::string, PyValue> dict;
    expect('{');
    while (peek() != '}') {
      PyValue key = parse_value();
      if (key.kind != PyValue::Kind::string) fail("dict keys must be strings");
      expect(':');
      PyValue value = parse_value();
      if (!dict.emplace(key.text, value).second) fail("key '" + key.text + "' appears twice");
      if (peek() != ',') break;
      ++position_;
    }
    expect('}');
    if (peek() != '\0') fail("unexpected text after the dict");
    return dict;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(path_ + ": bad .npy header at character " + std::to_string(position_) + ": " + what +
                " (header: " + text_ + ")");
  }
  char peek() {
    while (position_ < text_.size() &&
           (text_[position_] == ' ' || text_[position_] == '\n' || text_[position_] == '\t'))
      ++position_;
    return position_ < text_.size() ? text_[position_] : '\0';
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++position_;
  }

  PyValue parse_value() {
    char c = peek();
    if (c == '\'' || c == '"') return parse_string(c);
    if (c == '(' || c == '[') return parse_tuple(c == '(' ? ')' : ']');
    if (c == '-' || (c >= '0' && c <= '9')) {
      PyValue value(PyValue::Kind::integer);
      value.integers.push_back(parse_integer());
      return value;
    }
    for (const char* word : {"True", "False", "None"}) {
      if (text_.compare(position_, std::strlen(word), word) == 0) {
        position_ += std::strlen(word);
        PyValue value(word[0] == 'N' ? PyValue::Kind::none : PyValue::Kind::boolean);
        value.flag = word[0] == 'T';
        return value;
      }
    }
    if (c == '{') {  // a nested dict (never in the dtypes recur reads): parse it to report it as such
      parse_dict_skip();
      return PyValue(PyValue::Kind::other);
    }
    fail("unexpected character '" + std::string(1, c) + "'");
  }

  void parse_dict_skip() {
    expect('{');
    while (peek() != '}') {
      parse_value();
      expect(':');
      parse_value();
      if (peek() != ',') break;
      ++position_;
    }
    expect('}');
  }

  PyValue parse_string(char quote) {
    ++position_;
    PyValue value(PyValue::Kind::string);
    while (position_ < text_.size() && text_[position_] != quote) {
      if (text_[position_] == '\\') fail("escapes in strings are not supported");
      value.text += text_[position_++];
    }
    if (position_ >= text_.size()) fail("unterminated string");
    ++position_;
    return value;
  }

  int64_t parse_integer() {
    bool negative = text_[position_] == '-';
    if (negative) ++position_;
    if (position_ >= text_.size() || text_[position_] < '0' || text_[position_] > '9')
      fail("expected a digit");
    int64_t value = 0;
    while (position_ < text_.size() && text_[position_] >= '0' && text_[position_] <= '9') {
      int digit = text_[position_++] - '0';
      if (value > (INT64_MAX - digit) / 10) fail("integer too large");
      value = value * 10 + digit;
    }
    if (position_ < text_.size() && text_[position_] == 'L') ++position_;  // Python 2's long suffix
    return negative ? -value : value;
  }

  PyValue parse_tuple(char close) {
    ++position_;
    PyValue value(PyValue::Kind::tuple);
    while (peek() != close) {
      PyValue item = parse_value();
      if (item.kind == PyValue::Kind::integer) {
        value.integers.push_back(item.integers[0]);
      } else {
        value.kind = PyValue::Kind::other;  // e.g. a structured dtype's list of fields
      }
      if (peek() != ',') break;
      ++position_;
    }
    expect(close);
    return value;
  }

  const std::string& text_;
  const std::string& path_;
  size_t position_ = 0;
};

struct NpyArray {
  std::string descr;
  Shape shape;
  int64_t count = 0;
  const uint8_t* data = nullptr;
};

// Validates magic, version, header and data size; `element_sizes` maps accepted descr kinds
// ("f4", "i8", ...) to their byte sizes.
NpyArray parse_npy(const std::vector<uint8_t>& bytes, const std::string& path,
                   const std::map<std::string, size_t>& element_sizes, const std::string& accepted) {
  if (bytes.size() < magic_size + 2 || std::memcmp(bytes.data(), magic, magic_size) != 0) {
    throw Error(path + ": not an .npy file (the file does not start with \\x93NUMPY)");
  }
  int major = bytes[6];
  int minor = bytes[7];
  if (major < 1 || major > 3 || minor != 0) {
    throw Error(path + ": unsupported .npy format version " + std::to_string(major) + "." +
                std::to_string(minor) + " (supported: 1.0, 2.0, 3.0)");
  }
  size_t length_size = major == 1 ? 2 : 4;
  size_t prefix = magic_size + 2 + length_size;
  if (bytes.size() < prefix) throw Error(path + ": .npy file truncated inside its header length");
  uint64_t header_size = major == 1 ? uint64_t{bytes[8]} | uint64_t{bytes[9]} << 8
                                    : uint64_t{bytes[8]} | uint64_t{bytes[9]} << 8 |
                                          uint64_t{bytes[10]} << 16 | uint64_t{bytes[11]} << 24;
  if (prefix + header_size > bytes.size()) {
    throw Error(path + ": .npy header length " + std::to_string(header_size) + " runs past the end of the " +
                std::to_string(bytes.size()) + "-byte file (truncated?)");
  }
  std::string header(reinterpret_cast<const char*>(bytes.data() + prefix), header_size);
  std::map<std::string, PyValue> dict = HeaderParser(header, path).parse_dict();
  for (const char* key : {"descr", "fortran_order", "shape"}) {
    if (!dict.count(key)) throw Error(path + ": .npy header lacks '" + key + "': " + header);
  }
  const PyValue& descr = dict["descr"];
  const PyValue& fortran = dict["fortran_order"];
  const PyValue& shape = dict["shape"];
  if (descr.kind != PyValue::Kind::string)
    throw Error(path + ": unsupported .npy dtype (structured): " + header);
  if (fortran.kind != PyValue::Kind::boolean)
    throw Error(path + ": .npy fortran_order must be True or False: " + header);
  if (fortran.flag) throw Error(path + ": .npy array is in Fortran order; only C order is supported");
  if (shape.kind != PyValue::Kind::tuple)
    throw Error(path + ": .npy shape must be a tuple of integers: " + header);

  NpyArray array;
  array.descr = descr.text;
  array.shape = Shape(shape.integers.begin(), shape.integers.end());
  for (int64_t d : array.shape)
    if (d < 0)
      throw Error(path + ": .npy shape " + shape_to_string(array.shape) + " has a negative dimension");
  char order = descr.text.empty() ? '\0' : descr.text[0];
  auto size = element_sizes.find(descr.text.size() > 1 ? descr.text.substr(1) : "");
  if (order == '>')
    throw Error(path + ": .npy dtype '" + descr.text + "' is big-endian; supported: " + accepted);
  if ((order != '<' && order != '|') || size == element_sizes.end()) {
    throw Error(path + ": unsupported .npy dtype '" + descr.text + "'; supported: " + accepted);
  }
  array.count = shape_element_count(array.shape);
  uint64_t available = bytes.size() - prefix - header_size;
  uint64_t needed = 0;
  if (__builtin_mul_overflow(static_cast<uint64_t>(array.count), size->second, &needed) ||
      needed > available) {
    throw Error(path + ": .npy data truncated: shape " + shape_to_string(array.shape) + " of '" + descr.text +
                "' needs " + std::to_string(array.count) + " x " + std::to_string(size->second) +
                " bytes, the file has " + std::to_string(available) + " after the header");
  }
  array.data = bytes.data() + prefix + header_size;
  return array;
}

template <typename T>
T load(const uint8_t* p) {
  T value;
  std::memcpy(&value, p, sizeof value);
  return value;
}

}  // namespace

Tensor read_npy(const std::string& path) {
  std::vector<uint8_t> bytes = io::read_file_bytes(path);
  NpyArray array = parse_npy(bytes, path, {{"f4", 4}, {"f8", 8}}, "'<f4', '<f8'");
  Tensor tensor(array.shape);
  bool is_double = array.descr.substr(1) == "f8";
  for (int64_t k = 0; k < array.count; ++k) {
    tensor[k] =
        is_double ? static_cast<float>(load<double>(array.data + 8 * k)) : load<float>(array.data + 4 * k);
  }
  return tensor;
}

std::vector<int64_t> read_npy_int(const std::string& path, Shape* shape) {
  std::vector<uint8_t> bytes = io::read_file_bytes(path);
  NpyArray array = parse_npy(bytes, path, {{"i4", 4}, {"i8", 8}}, "'<i4', '<i8'");
  std::vector<int64_t> values(static_cast<size_t>(array.count));
  bool is_64 = array.descr.substr(1) == "i8";
  for (int64_t k = 0; k < array.count; ++k) {
    values[k] = is_64 ? load<int64_t>(array.data + 8 * k) : load<int32_t>(array.data + 4 * k);
  }
  if (shape) *shape = array.shape;
  return values;
}

void write_npy(const std::string& path, const Tensor& tensor) {
  if (tensor.size() != shape_element_count(tensor.shape())) {
    throw Error(path + ": cannot write a tensor of " + std::to_string(tensor.size()) + " values for shape " +
                shape_to_string(tensor.shape()));
  }
  std::string shape_text = "(";
  for (size_t i = 0; i < tensor.shape().size(); ++i) {
    shape_text += (i ? ", " : "") + std::to_string(tensor.shape()[i]);
  }
  shape_text += tensor.shape().size() == 1 ? ",)" : ")";
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape_text + ", }";
  // numpy aligns the data to 64 bytes: magic + version + length + header (spaces, then '\n').
  bool version_1 = magic_size + 2 + 2 + header.size() + 1 <= 65535;
  size_t prefix = magic_size + 2 + (version_1 ? 2 : 4);
  size_t total_header = (prefix + header.size() + 1 + 63) / 64 * 64 - prefix;
  header.append(total_header - header.size() - 1, ' ');
  header += '\n';

  std::vector<uint8_t> bytes(prefix + header.size() + static_cast<size_t>(tensor.size()) * sizeof(float));
  std::memcpy(bytes.data(), magic, magic_size);
  bytes[6] = version_1 ? 1 : 2;
  bytes[7] = 0;
  for (size_t i = 0; i < prefix - 8; ++i) bytes[8 + i] = static_cast<uint8_t>(header.size() >> (8 * i));
  std::memcpy(bytes.data() + prefix, header.data(), header.size());
  if (tensor.size() > 0)
    std::memcpy(bytes.data() + prefix + header.size(), tensor.data(), tensor.size() * sizeof(float));
  io::write_file_atomic(path, bytes);
}

}  // namespace recur
