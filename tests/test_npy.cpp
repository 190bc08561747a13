// .npy reading and writing. Headers are built here byte by byte (no Python needed); one test also reads
// files that NumPy itself wrote, when /usr/bin/python3 has numpy.
#include <gtest/gtest.h>
#include <unistd.h>

#include <bit>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>

#include "recur/error.hpp"
#include "recur/npy.hpp"
#include "temp_files.hpp"

namespace {

using recur::Error;
using recur::Shape;
using recur::Tensor;

using recur::test::temp_path;

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// magic, version, header length (2 bytes for 1.0, 4 for 2.0 / 3.0), header, data.
std::string write_npy_bytes(const std::string& header, const std::vector<uint8_t>& data, int major = 1) {
  std::vector<uint8_t> bytes = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<uint8_t>(major), 0};
  for (int i = 0; i < (major == 1 ? 2 : 4); ++i)
    bytes.push_back(static_cast<uint8_t>(header.size() >> (8 * i)));
  bytes.insert(bytes.end(), header.begin(), header.end());
  bytes.insert(bytes.end(), data.begin(), data.end());
  const std::string path = temp_path("built.npy");
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  return path;
}

template <typename T>
std::vector<uint8_t> raw(const std::vector<T>& values) {
  std::vector<uint8_t> bytes(values.size() * sizeof(T));
  if (!values.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

std::string dict(const std::string& descr, const std::string& shape, const std::string& fortran = "False") {
  return "{'descr': '" + descr + "', 'fortran_order': " + fortran + ", 'shape': " + shape + ", }\n";
}

void expect_error(const std::function<void()>& read, const std::vector<std::string>& fragments) {
  try {
    read();
    ADD_FAILURE() << "no error; expected one containing " << fragments[0];
  } catch (const Error& e) {
    for (const std::string& fragment : fragments)
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(Npy, RoundTripAndHeaderLayout) {
  for (const Shape& shape : {Shape{2, 3}, Shape{5}, Shape{}, Shape{0, 4}, Shape{2, 1, 3, 2}}) {
    Tensor tensor(shape);
    for (int64_t k = 0; k < tensor.size(); ++k) tensor[k] = 0.5f * static_cast<float>(k) - 1.25f;
    const std::string path = temp_path("round.npy");
    recur::write_npy(path, tensor);
    Tensor read = recur::read_npy(path);
    EXPECT_EQ(read.shape(), shape);
    ASSERT_EQ(read.size(), tensor.size());
    for (int64_t k = 0; k < read.size(); ++k) EXPECT_EQ(read[k], tensor[k]);

    // Version 1.0, data aligned to 64 bytes, header ending in '\n', as numpy writes.
    std::vector<uint8_t> bytes = read_bytes(path);
    ASSERT_GE(bytes.size(), 10u);
    EXPECT_EQ(bytes[6], 1);
    EXPECT_EQ(bytes[7], 0);
    size_t header_size = bytes[8] | bytes[9] << 8;
    EXPECT_EQ((10 + header_size) % 64, 0u);
    EXPECT_EQ(bytes[10 + header_size - 1], '\n');
    std::string header(bytes.begin() + 10, bytes.begin() + 10 + static_cast<ptrdiff_t>(header_size));
    EXPECT_NE(header.find("'descr': '<f4'"), std::string::npos) << header;
    EXPECT_EQ(bytes.size(), 10 + header_size + 4 * static_cast<size_t>(tensor.size()));
    std::filesystem::remove(path);
  }
}

TEST(Npy, ReadsAllVersionsAndDtypes) {
  const std::vector<double> doubles = {0.1, -2.5, 1e30, 7};
  Tensor from_double = recur::read_npy(write_npy_bytes(dict("<f8", "(2, 2)"), raw(doubles), 2));
  ASSERT_EQ(from_double.shape(), (Shape{2, 2}));
  for (int k = 0; k < 4; ++k) EXPECT_EQ(from_double[k], static_cast<float>(doubles[k]));

  const std::vector<float> floats = {1.5f, -3.0f, 0.25f};
  Tensor v3 = recur::read_npy(write_npy_bytes(dict("<f4", "(3,)"), raw(floats), 3));
  EXPECT_EQ(v3.shape(), (Shape{3}));
  EXPECT_EQ(v3[1], -3.0f);
  // numpy's own spacing varies; a dict without the trailing comma, keys in another order, lists: all fine.
  Tensor odd = recur::read_npy(
      write_npy_bytes("{\"shape\":[3],\"fortran_order\":False,\"descr\":\"|f4\"}", raw(floats)));
  EXPECT_EQ(odd[2], 0.25f);

  Shape shape;
  const std::vector<int32_t> i32 = {-7, 0, 2147483647, -2147483647 - 1};
  std::vector<int64_t> read32 = recur::read_npy_int(write_npy_bytes(dict("<i4", "(4,)"), raw(i32)), &shape);
  EXPECT_EQ(shape, (Shape{4}));
  EXPECT_EQ(read32, std::vector<int64_t>(i32.begin(), i32.end()));
  const std::vector<int64_t> i64 = {int64_t{1} << 40, -3, 5, 0, 9, -1};
  EXPECT_EQ(recur::read_npy_int(write_npy_bytes(dict("<i8", "(2, 3)"), raw(i64)), &shape), i64);
  EXPECT_EQ(shape, (Shape{2, 3}));
}

TEST(Npy, RejectsBadFiles) {
  const std::vector<float> floats = {1, 2, 3, 4};
  std::string path;
  path = write_npy_bytes(dict(">f4", "(4,)"), raw(floats));
  expect_error([&] { recur::read_npy(path); }, {path, ">f4", "big-endian"});
  path = write_npy_bytes(dict("<f4", "(2, 2)", "True"), raw(floats));
  expect_error([&] { recur::read_npy(path); }, {path, "Fortran"});
  path = write_npy_bytes(dict("<f4", "(5,)"), raw(floats));
  expect_error([&] { recur::read_npy(path); }, {path, "truncated", "[5]", "16"});
  path = write_npy_bytes(dict("<f2", "(4,)"), raw(floats));
  expect_error([&] { recur::read_npy(path); }, {path, "<f2", "'<f4', '<f8'"});
  path = write_npy_bytes(dict("<f4", "(4,)"), raw(floats));
  expect_error([&] { recur::read_npy_int(path); }, {path, "<f4", "'<i4', '<i8'"});
  path = write_npy_bytes("{'descr': '<f4', 'shape': (4,)}", raw(floats));
  expect_error([&] { recur::read_npy(path); }, {path, "fortran_order"});
  path = write_npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (4,", raw(floats));
  expect_error([&] { recur::read_npy(path); }, {path, "bad .npy header"});
  path = write_npy_bytes(dict("[('a', '<f4')]", "(4,)"), raw(floats));
  expect_error([&] { recur::read_npy(path); }, {path});

  path = temp_path("magic.npy");
  std::ofstream(path, std::ios::binary) << "PK\x03\x04 this is a zip";
  expect_error([&] { recur::read_npy(path); }, {path, "not an .npy file"});
  // Header length pointing past the end.
  std::string short_header = write_npy_bytes(dict("<f4", "(4,)"), {});
  std::filesystem::resize_file(short_header, 20);
  expect_error([&] { recur::read_npy(short_header); }, {short_header, "truncated"});
  expect_error([&] { recur::read_npy(temp_path("absent.npy")); }, {"absent.npy", "No such file"});
}

// Files NumPy writes: float32, float64, int32, int64, 0-d and 3-d; values from formulas repeated here.
TEST(Npy, ReadsFilesWrittenByNumpy) {
  if (std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "no python3 numpy";
  const std::string dir = temp_path("numpy_dir");
  std::filesystem::create_directories(dir);
  const std::string script =
      "import numpy as np, sys\n"
      "d = sys.argv[1]\n"
      "np.save(d + '/f32.npy', (np.arange(24, dtype=np.float32) * 0.5 - 3).reshape(2, 3, 4))\n"
      "np.save(d + '/f64.npy', np.arange(6) * 0.1)\n"
      "np.save(d + '/scalar.npy', np.array(7.25, dtype=np.float32))\n"
      "np.save(d + '/i32.npy', np.arange(-5, 5, dtype=np.int32).reshape(2, 5))\n"
      "np.save(d + '/i64.npy', np.arange(3, dtype=np.int64) + 2**40)\n"
      "np.save(d + '/fortran.npy', np.asfortranarray(np.ones((2, 3), dtype=np.float32)))\n"
      "np.save(d + '/big.npy', np.ones(3, dtype='>f4'))\n";
  std::ofstream(dir + "/make.py") << script;
  ASSERT_EQ(std::system(("/usr/bin/python3 " + dir + "/make.py " + dir).c_str()), 0);

  Tensor f32 = recur::read_npy(dir + "/f32.npy");
  ASSERT_EQ(f32.shape(), (Shape{2, 3, 4}));
  for (int k = 0; k < 24; ++k) EXPECT_EQ(f32[k], static_cast<float>(k) * 0.5f - 3.0f);
  Tensor f64 = recur::read_npy(dir + "/f64.npy");
  ASSERT_EQ(f64.shape(), (Shape{6}));
  for (int k = 0; k < 6; ++k) EXPECT_EQ(f64[k], static_cast<float>(k * 0.1));
  Tensor scalar = recur::read_npy(dir + "/scalar.npy");
  EXPECT_EQ(scalar.shape(), Shape{});
  ASSERT_EQ(scalar.size(), 1);
  EXPECT_EQ(scalar[0], 7.25f);
  Shape shape;
  std::vector<int64_t> i32 = recur::read_npy_int(dir + "/i32.npy", &shape);
  EXPECT_EQ(shape, (Shape{2, 5}));
  for (int k = 0; k < 10; ++k) EXPECT_EQ(i32[k], k - 5);
  std::vector<int64_t> i64 = recur::read_npy_int(dir + "/i64.npy", &shape);
  EXPECT_EQ(i64, (std::vector<int64_t>{int64_t{1} << 40, (int64_t{1} << 40) + 1, (int64_t{1} << 40) + 2}));
  EXPECT_THROW(recur::read_npy(dir + "/fortran.npy"), Error);
  EXPECT_THROW(recur::read_npy(dir + "/big.npy"), Error);

  // And numpy reads what recur writes.
  recur::write_npy(dir + "/ours.npy", f32);
  const std::string check = "/usr/bin/python3 -c \"import numpy as np; a = np.load('" + dir +
                            "/ours.npy'); assert a.dtype == np.float32 and a.shape == (2, 3, 4); "
                            "assert (a.ravel() == np.arange(24) * 0.5 - 3).all()\"";
  EXPECT_EQ(std::system(check.c_str()), 0);
  std::filesystem::remove_all(dir);
}

}  // namespace
