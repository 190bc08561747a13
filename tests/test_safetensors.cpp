// safetensors reading, writing and validation. Bad files are built byte by byte here, so each test
// breaks exactly one rule of the format.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "recur/error.hpp"
#include "recur/safetensors.hpp"
#include "temp_files.hpp"

namespace {

using recur::DType;
using recur::Error;
using recur::SafetensorsFile;
using recur::Tensor;

using recur::test::temp_path;

// 8-byte little-endian header size, header text, data bytes.
std::vector<uint8_t> build_file(const std::string& header, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> bytes(8 + header.size() + data.size());
  const uint64_t size = header.size();
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<uint8_t>(size >> (8 * i));
  std::copy(header.begin(), header.end(), bytes.begin() + 8);
  std::copy(data.begin(), data.end(), bytes.begin() + 8 + static_cast<ptrdiff_t>(header.size()));
  return bytes;
}

template <typename T>
void append(std::vector<uint8_t>& data, T value) {
  uint8_t raw[sizeof(T)];
  std::memcpy(raw, &value, sizeof(T));
  data.insert(data.end(), raw, raw + sizeof(T));
}

// Expects parse to throw, and the message to contain every fragment.
void expect_error(const std::vector<uint8_t>& bytes, const std::vector<std::string>& fragments) {
  try {
    SafetensorsFile::parse(bytes, "bad.safetensors");
    ADD_FAILURE() << "no error; expected one containing " << fragments[0];
  } catch (const Error& e) {
    std::string message = e.what();
    EXPECT_NE(message.find("bad.safetensors"), std::string::npos) << message;
    for (const std::string& fragment : fragments)
      EXPECT_NE(message.find(fragment), std::string::npos) << message;
  }
}

std::vector<uint8_t> zeros(size_t n) { return std::vector<uint8_t>(n, 0); }

TEST(Safetensors, RoundTripKeepsValuesOrderAndMetadata) {
  Tensor matrix({2, 3}, {1.5f, -2.0f, 3.25f, 0.1f, std::numeric_limits<float>::denorm_min(), -0.0f});
  Tensor vector({5}, {1, 2, 3, 4, 5});
  Tensor scalar(recur::Shape{}, std::vector<float>{42.0f});
  Tensor empty({0, 3});
  const std::string path = temp_path("round.safetensors");
  // Not in name order: the data must follow the order given.
  recur::write_safetensors(
      path, {{"z_matrix", &matrix}, {"a_vector", &vector}, {"scalar", &scalar}, {"empty", &empty}},
      {{"format", "test"}, {"note", "ünïcode"}});

  SafetensorsFile file = SafetensorsFile::read(path);
  EXPECT_EQ(file.metadata().at("format"), "test");
  EXPECT_EQ(file.metadata().at("note"), "ünïcode");
  ASSERT_EQ(file.entries().size(), 4u);
  EXPECT_EQ(file.entries()[0].name, "z_matrix");
  EXPECT_EQ(file.entries()[1].name, "a_vector");
  EXPECT_EQ(file.entries()[0].begin, 0u);
  EXPECT_EQ(file.entries()[1].begin, 24u);
  for (const auto& [name, original] : std::vector<std::pair<std::string, const Tensor*>>{
           {"z_matrix", &matrix}, {"a_vector", &vector}, {"scalar", &scalar}, {"empty", &empty}}) {
    Tensor read = file.tensor(name);
    EXPECT_EQ(read.shape(), original->shape()) << name;
    EXPECT_EQ(file.entry(name).dtype, DType::f32);
    ASSERT_EQ(read.size(), original->size());
    for (int64_t k = 0; k < read.size(); ++k)
      EXPECT_EQ(std::bit_cast<uint32_t>(read[k]), std::bit_cast<uint32_t>((*original)[k])) << name << k;
  }

  // The header is padded with spaces to a multiple of 8, as the reference writer does.
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  uint64_t header_size = 0;
  std::memcpy(&header_size, bytes.data(), 8);
  EXPECT_EQ(header_size % 8, 0u);
  EXPECT_EQ(bytes[8], '{');
  EXPECT_EQ(bytes.size(), 8 + header_size + 4 * (6 + 5 + 1));
  // No temporary file is left beside the result.
  int files = 0;
  for (const auto& item : std::filesystem::directory_iterator(std::filesystem::path(path).parent_path()))
    files += item.path().filename().string().find("round.safetensors") != std::string::npos;
  EXPECT_EQ(files, 1);
  std::filesystem::remove(path);
}

TEST(Safetensors, WriteErrorsNameThePath) {
  Tensor t({2}, {1, 2});
  const std::string missing_dir = temp_path("no_such_dir") + "/x.safetensors";
  try {
    recur::write_safetensors(missing_dir, {{"t", &t}});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(missing_dir), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("No such file"), std::string::npos) << e.what();
  }
  EXPECT_THROW(recur::write_safetensors(temp_path("dup.safetensors"), {{"t", &t}, {"t", &t}}), Error);
  EXPECT_THROW(SafetensorsFile::read(missing_dir), Error);
}

// Half precision by a separate formula in double: (-1)^s * 2^(e-15) * (1 + m/1024), subnormals
// 2^-14 * m/1024.
double half_value(uint16_t bits) {
  int sign = bits >> 15, exponent = (bits >> 10) & 31, mantissa = bits & 1023;
  double magnitude = exponent == 0    ? std::ldexp(mantissa / 1024.0, -14)
                     : exponent == 31 ? (mantissa ? std::nan("") : INFINITY)
                                      : std::ldexp(1.0 + mantissa / 1024.0, exponent - 15);
  return sign ? -magnitude : magnitude;
}

double bfloat16_value(uint16_t bits) {
  int sign = bits >> 15, exponent = (bits >> 7) & 255, mantissa = bits & 127;
  double magnitude = exponent == 0     ? std::ldexp(mantissa / 128.0, -126)
                     : exponent == 255 ? (mantissa ? std::nan("") : INFINITY)
                                       : std::ldexp(1.0 + mantissa / 128.0, exponent - 127);
  return sign ? -magnitude : magnitude;
}

void expect_same(double expected, double got, uint32_t bits) {
  if (std::isnan(expected)) {
    EXPECT_TRUE(std::isnan(got)) << std::hex << bits;
  } else {
    EXPECT_EQ(expected, got) << std::hex << bits;
    EXPECT_EQ(std::signbit(expected), std::signbit(got)) << std::hex << bits;
  }
}

TEST(Safetensors, ReadsEveryHalfAndBfloat16Value) {
  std::vector<uint8_t> data;
  for (uint32_t bits = 0; bits < 65536; ++bits) append(data, static_cast<uint16_t>(bits));
  for (uint32_t bits = 0; bits < 65536; ++bits) append(data, static_cast<uint16_t>(bits));
  std::string header = R"({"h":{"dtype":"F16","shape":[256,256],"data_offsets":[0,131072]},)"
                       R"("b":{"dtype":"BF16","shape":[65536],"data_offsets":[131072,262144]}})";
  SafetensorsFile file = SafetensorsFile::parse(build_file(header, data), "mem");
  Tensor h = file.tensor("h");
  Tensor b = file.tensor("b");
  std::vector<double> h64 = file.tensor_f64("h");
  EXPECT_EQ(h.shape(), (recur::Shape{256, 256}));
  for (uint32_t bits = 0; bits < 65536; ++bits) {
    expect_same(half_value(static_cast<uint16_t>(bits)), h[bits], bits);
    expect_same(half_value(static_cast<uint16_t>(bits)), h64[bits], bits);
    expect_same(bfloat16_value(static_cast<uint16_t>(bits)), b[bits], bits);
  }
  // Known patterns: half 0x3C00 = 1, 0xC000 = -2, 0x0001 = 2^-24 (smallest subnormal), 0x7C00 = inf;
  // bfloat16 0x3F80 = 1, 0xBFC0 = -1.5, 0x0001 = 2^-133.
  EXPECT_EQ(h[0x3C00], 1.0f);
  EXPECT_EQ(h[0xC000], -2.0f);
  EXPECT_EQ(h[0x0001], std::ldexp(1.0f, -24));
  EXPECT_EQ(h[0x7C00], INFINITY);
  EXPECT_EQ(b[0x3F80], 1.0f);
  EXPECT_EQ(b[0xBFC0], -1.5f);
  EXPECT_EQ(b[0x0001], std::ldexp(1.0f, -133));
}

TEST(Safetensors, ReadsF64ToFloatAndDouble) {
  const std::vector<double> values = {0.1, -2.5, 1e-300, 3.0e38, -0.0, 1.0 / 3.0};
  std::vector<uint8_t> data;
  for (double v : values) append(data, v);
  std::string header = R"({"d":{"dtype":"F64","shape":[2,3],"data_offsets":[0,48]}})";
  SafetensorsFile file = SafetensorsFile::parse(build_file(header, data), "mem");
  Tensor as_float = file.tensor("d");
  std::vector<double> as_double = file.tensor_f64("d");
  ASSERT_EQ(as_double.size(), values.size());
  for (size_t k = 0; k < values.size(); ++k) {
    EXPECT_EQ(std::bit_cast<uint64_t>(as_double[k]), std::bit_cast<uint64_t>(values[k]));
    EXPECT_EQ(as_float[static_cast<int64_t>(k)], static_cast<float>(values[k]));
  }
}

TEST(Safetensors, NonFloatDtypeIsReadableButNotConvertible) {
  std::string header = R"({"i":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}})";
  SafetensorsFile file = SafetensorsFile::parse(build_file(header, zeros(8)), "mem");
  EXPECT_EQ(file.entry("i").dtype, DType::i32);
  try {
    file.tensor("i");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'i'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("I32"), std::string::npos) << e.what();
  }
  EXPECT_THROW(file.entry("missing"), Error);
}

TEST(Safetensors, ErrorFileShorterThanHeaderSize) { expect_error({1, 0, 0}, {"3 bytes", "8"}); }

TEST(Safetensors, ErrorDataShorterThanHeaderClaims) {
  std::string header = R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})";
  std::vector<uint8_t> bytes = build_file(header, zeros(16));
  bytes.erase(bytes.end() - 4, bytes.end());
  expect_error(bytes, {"'w'", "[0, 16]", "12 bytes", "past the end"});
}

TEST(Safetensors, ErrorHeaderSizePastEndOfFile) {
  std::vector<uint8_t> bytes = build_file("{}", {});
  bytes[0] = 200;
  expect_error(bytes, {"200", "10-byte file"});
}

TEST(Safetensors, ErrorHeaderTooLong) {
  std::vector<uint8_t> bytes = build_file("{}", {});
  const uint64_t too_long = 100'000'001;
  std::memcpy(bytes.data(), &too_long, 8);
  expect_error(bytes, {"100000001", "100000000"});
}

TEST(Safetensors, ErrorHeaderNotJson) {
  expect_error(build_file("{\"a\": [1, 2", {}), {"not valid JSON"});
  expect_error(build_file("[1, 2]", {}), {"JSON object", "array"});
  expect_error(build_file("{\"a\xff\": 1}", {}), {"not valid JSON"});  // not UTF-8
}

TEST(Safetensors, ErrorOverlappingRanges) {
  std::string header = R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                       R"("b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})";
  expect_error(build_file(header, zeros(24)), {"'b'", "[8, 24]", "overlap", "'a'", "16"});
}

TEST(Safetensors, ErrorGapBetweenRanges) {
  std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                       R"("b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}})";
  expect_error(build_file(header, zeros(20)), {"'b'", "[12, 20]", "gap", "'a'", "8"});
  // A first range not at 0 is a gap too.
  expect_error(build_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", zeros(8)),
               {"'a'", "gap"});
}

TEST(Safetensors, ErrorShapeSizeMismatch) {
  std::string header = R"({"w":{"dtype":"F16","shape":[3],"data_offsets":[0,8]}})";
  expect_error(build_file(header, zeros(8)), {"'w'", "[3]", "F16", "6 bytes", "8"});
  // An element count that overflows 64 bits.
  std::string huge = R"({"w":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}})";
  expect_error(build_file(huge, zeros(8)), {"'w'", "2^64"});
}

TEST(Safetensors, ErrorUnknownDtype) {
  std::string header = R"({"w":{"dtype":"F31","shape":[1],"data_offsets":[0,4]}})";
  expect_error(build_file(header, zeros(4)), {"'w'", "F31", "BF16"});
}

TEST(Safetensors, ErrorDuplicateNames) {
  std::string header = R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                       R"("w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
  expect_error(build_file(header, zeros(8)), {"'w'", "twice", "duplicate"});
}

TEST(Safetensors, ErrorRangePastEndOfFile) {
  std::string header = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                       R"("b":{"dtype":"U8","shape":[100],"data_offsets":[4,104]}})";
  expect_error(build_file(header, zeros(8)), {"'b'", "[4, 104]", "past the end", "8 bytes"});
}

TEST(Safetensors, ErrorMetadataValueNotString) {
  std::string header = R"({"__metadata__":{"epoch":3}})";
  expect_error(build_file(header, {}), {"__metadata__", "'epoch'", "3", "string"});
  expect_error(build_file(R"({"__metadata__":[1]})", {}), {"__metadata__", "array"});
}

TEST(Safetensors, ErrorMalformedEntries) {
  expect_error(build_file(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})", {}), {"'w'", "-1"});
  expect_error(build_file(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}})", zeros(4)),
               {"'w'", "[4, 0]", "begin"});
  expect_error(build_file(R"({"w":{"dtype":"F32","shape":[1]}})", {}), {"'w'", "data_offsets"});
  expect_error(build_file(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}})", zeros(4)), {"'w'"});
  // Bytes after the last tensor belong to no tensor.
  expect_error(build_file(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", zeros(8)),
               {"cover 4 bytes", "8"});
}

TEST(Safetensors, AcceptsZeroSizedTensorsAndEmptyFile) {
  std::string header = R"({"e":{"dtype":"F32","shape":[0,5],"data_offsets":[0,0]},)"
                       R"("w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}, "__metadata__": {}})";
  SafetensorsFile file = SafetensorsFile::parse(build_file(header + "  ", zeros(4)), "mem");
  EXPECT_EQ(file.tensor("e").shape(), (recur::Shape{0, 5}));
  EXPECT_EQ(file.tensor("w")[0], 0.0f);
  EXPECT_TRUE(SafetensorsFile::parse(build_file("{}", {}), "mem").entries().empty());
}

}  // namespace
