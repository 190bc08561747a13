#pragma once
// safetensors files (https://huggingface.co/docs/safetensors): an 8-byte little-endian header size N,
// N bytes of JSON {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}},
// then the byte buffer. Reading validates as the format's reference reader does: header size cap
// (100 MB), valid JSON, known dtype, shape x element size = byte range, ranges contiguous from 0, inside
// the file, not overlapping, no duplicate names, metadata values strings.
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "recur/tensor.hpp"

namespace recur {

enum class DType { boolean, u8, i8, f8_e5m2, f8_e4m3, i16, u16, f16, bf16, i32, u32, f32, f64, i64, u64 };

// "F32", "BF16", ... as written in the header.
std::string dtype_name(DType dtype);
size_t dtype_size(DType dtype);

struct SafetensorsEntry {
  std::string name;
  DType dtype = DType::f32;
  Shape shape;
  uint64_t begin = 0;  // byte range inside the data buffer
  uint64_t end = 0;
};

class SafetensorsFile {
 public:
  // Reads and validates `path`; throws recur::Error naming the file, the tensor and the broken rule.
  static SafetensorsFile read(const std::string& path);
  // Same, from bytes in memory; `source` names them in errors.
  static SafetensorsFile parse(std::vector<uint8_t> bytes, const std::string& source);

  const std::string& source() const { return source_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Entries in the order of their byte ranges.
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }
  bool contains(const std::string& name) const;
  // Throws recur::Error naming the file and the missing tensor.
  const SafetensorsEntry& entry(const std::string& name) const;

  // Floating-point tensors (F32, F64, F16, BF16) converted to float32 / double; other dtypes throw.
  Tensor tensor(const std::string& name) const;
  std::vector<double> tensor_f64(const std::string& name) const;

 private:
  std::string source_;
  std::vector<uint8_t> bytes_;
  uint64_t data_start_ = 0;
  std::map<std::string, std::string> metadata_;
  std::vector<SafetensorsEntry> entries_;
};

// Writes float32 tensors (in the given order) and string metadata atomically: a temporary file beside
// `path`, fsync, rename. Throws recur::Error on a duplicate name or an I/O failure (naming the path).
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, const Tensor*>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace recur
