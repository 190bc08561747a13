#pragma once
// NumPy .npy files (format versions 1.0, 2.0 and 3.0), little-endian, C order.
#include <cstdint>
#include <string>
#include <vector>

#include "recur/tensor.hpp"

namespace recur {

// Reads '<f4' or '<f8' (converted) into float32. Throws recur::Error naming the file and the problem
// (not an .npy file, fortran order, unsupported dtype, truncated data).
Tensor read_npy(const std::string& path);
// Reads '<i4' or '<i8' as int64 values; `shape` receives the array's shape.
std::vector<int64_t> read_npy_int(const std::string& path, Shape* shape = nullptr);
// Writes '<f4', format 1.0, atomically (temporary file, fsync, rename).
void write_npy(const std::string& path, const Tensor& tensor);

}  // namespace recur
