// safetensors reading and writing. Validation follows the format's reference reader (the Rust crate
// `safetensors`): header size cap, JSON object, known dtypes, shape x element size = byte range,
// ranges sorted by offset contiguous from 0 and covering the whole data buffer; and, stricter than
// serde's maps, duplicate keys are an error instead of "last one wins".
#include "recur/safetensors.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "io/file_util.hpp"
#include "io/float16.hpp"
#include "recur/error.hpp"

namespace recur {
namespace {

static_assert(std::endian::native == std::endian::little, "recur's file formats assume a little-endian host");

constexpr uint64_t max_header_size = 100'000'000;  // the reference reader's MAX_HEADER_SIZE

struct DTypeInfo {
  DType dtype;
  const char* name;
  size_t size;
};

constexpr DTypeInfo dtype_table[] = {
    {DType::boolean, "BOOL", 1},    {DType::u8, "U8", 1},           {DType::i8, "I8", 1},
    {DType::f8_e5m2, "F8_E5M2", 1}, {DType::f8_e4m3, "F8_E4M3", 1}, {DType::i16, "I16", 2},
    {DType::u16, "U16", 2},         {DType::f16, "F16", 2},         {DType::bf16, "BF16", 2},
    {DType::i32, "I32", 4},         {DType::u32, "U32", 4},         {DType::f32, "F32", 4},
    {DType::f64, "F64", 8},         {DType::i64, "I64", 8},         {DType::u64, "U64", 8},
};

const DTypeInfo& dtype_info(DType dtype) {
  for (const DTypeInfo& info : dtype_table)
    if (info.dtype == dtype) return info;
  throw Error("safetensors: unknown dtype enum value " + std::to_string(static_cast<int>(dtype)));
}

std::string known_dtype_names() {
  std::string names;
  for (const DTypeInfo& info : dtype_table) names += (names.empty() ? "" : ", ") + std::string(info.name);
  return names;
}

std::string range_to_string(uint64_t begin, uint64_t end) {
  std::string text = "[";  // built by appending: GCC 12 warns falsely (-Wrestrict) on "[" + std::string
  text += std::to_string(begin) + ", " + std::to_string(end) + "]";
  return text;
}

// nlohmann keeps the last of duplicate keys silently; this callback makes a duplicate an error at any
// depth. One set of seen keys per open object.
class DuplicateKeyCheck {
 public:
  explicit DuplicateKeyCheck(const std::string& source) : source_(source) {}
  bool operator()(int /*depth*/, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using Event = nlohmann::json::parse_event_t;
    if (event == Event::object_start) {
      open_objects_.emplace_back();
    } else if (event == Event::object_end) {
      open_objects_.pop_back();
    } else if (event == Event::key) {
      const std::string& key = parsed.get_ref<const std::string&>();
      if (!open_objects_.back().insert(key).second) {
        throw Error(source_ + ": safetensors header has the key '" + key + "' twice" +
                    (open_objects_.size() == 1 ? " (duplicate tensor name)" : ""));
      }
    }
    return true;
  }

 private:
  const std::string& source_;
  std::vector<std::set<std::string>> open_objects_;
};

nlohmann::json parse_header_json(const uint8_t* begin, const uint8_t* end, const std::string& source) {
  DuplicateKeyCheck check(source);
  try {
    nlohmann::json header = nlohmann::json::parse(begin, end, std::ref(check));
    if (!header.is_object()) {
      throw Error(source + ": safetensors header must be a JSON object, got " +
                  std::string(header.type_name()));
    }
    return header;
  } catch (const nlohmann::json::exception& e) {
    throw Error(source + ": safetensors header is not valid JSON: " + e.what());
  }
}

std::map<std::string, std::string> parse_metadata(const nlohmann::json& value, const std::string& source) {
  std::map<std::string, std::string> metadata;
  if (value.is_null()) return metadata;
  if (!value.is_object()) {
    throw Error(source + ": __metadata__ must be an object of strings, got " +
                std::string(value.type_name()));
  }
  for (const auto& [key, item] : value.items()) {
    if (!item.is_string()) {
      throw Error(source + ": __metadata__ value of '" + key + "' must be a string, got " + item.dump() +
                  " (" + item.type_name() + ")");
    }
    metadata[key] = item.get<std::string>();
  }
  return metadata;
}

uint64_t unsigned_field(const nlohmann::json& value, const std::string& where) {
  if (!value.is_number_unsigned()) {
    throw Error(where + " must be a non-negative integer, got " + value.dump());
  }
  return value.get<uint64_t>();
}

SafetensorsEntry parse_entry(const std::string& name, const nlohmann::json& info, const std::string& source) {
  std::string where = source + ": tensor '" + name + "'";
  if (!info.is_object()) throw Error(where + ": must be an object, got " + info.dump());
  for (const char* field : {"dtype", "shape", "data_offsets"}) {
    if (!info.contains(field)) throw Error(where + ": missing field '" + field + "'");
  }
  SafetensorsEntry entry;
  entry.name = name;

  const nlohmann::json& dtype = info["dtype"];
  const DTypeInfo* found = nullptr;
  for (const DTypeInfo& candidate : dtype_table)
    if (dtype.is_string() && dtype.get<std::string>() == candidate.name) found = &candidate;
  if (!found)
    throw Error(where + ": unknown dtype " + dtype.dump() + " (known: " + known_dtype_names() + ")");
  entry.dtype = found->dtype;

  const nlohmann::json& shape = info["shape"];
  if (!shape.is_array()) throw Error(where + ": shape must be an array, got " + shape.dump());
  uint64_t element_count = 1;
  bool overflow = false;
  for (const nlohmann::json& dim : shape) {
    uint64_t d = unsigned_field(dim, where + ": shape " + shape.dump() + ": dimension");
    if (d > static_cast<uint64_t>(INT64_MAX))
      throw Error(where + ": shape dimension " + std::to_string(d) + " too large");
    overflow = overflow || __builtin_mul_overflow(element_count, d, &element_count);
    entry.shape.push_back(static_cast<int64_t>(d));
  }

  const nlohmann::json& offsets = info["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2) {
    throw Error(where + ": data_offsets must be [begin, end], got " + offsets.dump());
  }
  entry.begin = unsigned_field(offsets[0], where + ": data_offsets begin");
  entry.end = unsigned_field(offsets[1], where + ": data_offsets end");
  if (entry.begin > entry.end) {
    throw Error(where + ": data_offsets " + range_to_string(entry.begin, entry.end) + ": begin is past end");
  }
  uint64_t byte_count = 0;
  overflow = overflow || __builtin_mul_overflow(element_count, found->size, &byte_count);
  if (overflow || byte_count != entry.end - entry.begin) {
    throw Error(where + ": shape " + shape_to_string(entry.shape) + " of dtype " + found->name + " needs " +
                (overflow ? std::string("more than 2^64") : std::to_string(byte_count)) +
                " bytes, but data_offsets " + range_to_string(entry.begin, entry.end) + " hold " +
                std::to_string(entry.end - entry.begin));
  }
  return entry;
}

// Sorted by offsets, the ranges must tile [0, data_size) exactly.
void check_ranges(std::vector<SafetensorsEntry>& entries, uint64_t data_size, uint64_t file_size,
                  const std::string& source) {
  std::stable_sort(entries.begin(), entries.end(), [](const SafetensorsEntry& a, const SafetensorsEntry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t position = 0;
  const SafetensorsEntry* previous = nullptr;
  for (const SafetensorsEntry& entry : entries) {
    std::string where =
        source + ": tensor '" + entry.name + "' data_offsets " + range_to_string(entry.begin, entry.end);
    std::string after =
        previous ? "the previous tensor '" + previous->name + "' ends at " + std::to_string(position)
                 : "the data buffer begins at 0";
    if (entry.begin < position) throw Error(where + " overlap: " + after);
    if (entry.begin > position)
      throw Error(where + " leave a gap: " + after + " (ranges must be contiguous)");
    if (entry.end > data_size) {
      throw Error(where + " run past the end of the file: the data buffer has " + std::to_string(data_size) +
                  " bytes (file size " + std::to_string(file_size) + ", truncated?)");
    }
    position = entry.end;
    previous = &entry;
  }
  if (position != data_size) {
    throw Error(source + ": the tensors cover " + std::to_string(position) +
                " bytes of the data buffer, but it has " + std::to_string(data_size) +
                " (bytes not covered by any tensor)");
  }
}

uint64_t load_u64_le(const uint8_t* p) {
  uint64_t value = 0;
  std::memcpy(&value, p, sizeof value);
  return value;
}

template <typename T>
T load_le(const uint8_t* p) {
  T value;
  std::memcpy(&value, p, sizeof value);
  return value;
}

// Widens the values of a floating-point entry (exact for double; F64 rounds to nearest for float).
template <typename Out>
void convert_floats(const SafetensorsEntry& entry, const uint8_t* data, Out* out, const std::string& source) {
  uint64_t count = (entry.end - entry.begin) / dtype_size(entry.dtype);
  for (uint64_t k = 0; k < count; ++k) {
    switch (entry.dtype) {
      case DType::f32:
        out[k] = static_cast<Out>(load_le<float>(data + 4 * k));
        break;
      case DType::f64:
        out[k] = static_cast<Out>(load_le<double>(data + 8 * k));
        break;
      case DType::f16:
        out[k] = static_cast<Out>(io::half_to_float(load_le<uint16_t>(data + 2 * k)));
        break;
      case DType::bf16:
        out[k] = static_cast<Out>(io::bfloat16_to_float(load_le<uint16_t>(data + 2 * k)));
        break;
      default:
        throw Error(source + ": tensor '" + entry.name + "' has dtype " + dtype_name(entry.dtype) +
                    "; only F32, F64, F16 and BF16 convert to floating point");
    }
  }
}

}  // namespace

std::string dtype_name(DType dtype) { return dtype_info(dtype).name; }
size_t dtype_size(DType dtype) { return dtype_info(dtype).size; }

SafetensorsFile SafetensorsFile::read(const std::string& path) {
  return parse(io::read_file_bytes(path), path);
}

SafetensorsFile SafetensorsFile::parse(std::vector<uint8_t> bytes, const std::string& source) {
  uint64_t file_size = bytes.size();
  if (file_size < 8) {
    throw Error(source + ": too short for a safetensors file: " + std::to_string(file_size) +
                " bytes, the header size alone takes 8 (truncated?)");
  }
  uint64_t header_size = load_u64_le(bytes.data());
  if (header_size > max_header_size) {
    throw Error(source + ": safetensors header size " + std::to_string(header_size) +
                " exceeds the limit of " + std::to_string(max_header_size) + " bytes");
  }
  if (8 + header_size > file_size) {
    throw Error(source + ": safetensors header size " + std::to_string(header_size) +
                " runs past the end of the " + std::to_string(file_size) + "-byte file (truncated?)");
  }
  nlohmann::json header = parse_header_json(bytes.data() + 8, bytes.data() + 8 + header_size, source);

  SafetensorsFile file;
  file.source_ = source;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      file.metadata_ = parse_metadata(value, source);
    } else {
      file.entries_.push_back(parse_entry(key, value, source));
    }
  }
  file.data_start_ = 8 + header_size;
  check_ranges(file.entries_, file_size - file.data_start_, file_size, source);
  file.bytes_ = std::move(bytes);
  return file;
}

bool SafetensorsFile::contains(const std::string& name) const {
  return std::any_of(entries_.begin(), entries_.end(),
                     [&](const SafetensorsEntry& e) { return e.name == name; });
}

const SafetensorsEntry& SafetensorsFile::entry(const std::string& name) const {
  for (const SafetensorsEntry& e : entries_)
    if (e.name == name) return e;
  throw Error(source_ + ": no tensor named '" + name + "'");
}

Tensor SafetensorsFile::tensor(const std::string& name) const {
  const SafetensorsEntry& e = entry(name);
  Tensor result(e.shape);
  convert_floats(e, bytes_.data() + data_start_ + e.begin, result.data(), source_);
  return result;
}

std::vector<double> SafetensorsFile::tensor_f64(const std::string& name) const {
  const SafetensorsEntry& e = entry(name);
  std::vector<double> result((e.end - e.begin) / dtype_size(e.dtype));
  convert_floats(e, bytes_.data() + data_start_ + e.begin, result.data(), source_);
  return result;
}

void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, const Tensor*>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  // ordered_json keeps __metadata__ first and the tensors in the caller's order, as the reference does.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    std::string where = path + ": tensor '" + name + "'";
    if (tensor == nullptr) throw Error(where + ": null tensor");
    if (name == "__metadata__") throw Error(where + ": the name is reserved for metadata");
    if (!names.insert(name).second) throw Error(where + ": duplicate tensor name");
    if (tensor->size() != shape_element_count(tensor->shape())) {
      throw Error(where + ": " + std::to_string(tensor->size()) + " values for shape " +
                  shape_to_string(tensor->shape()));
    }
    uint64_t bytes = static_cast<uint64_t>(tensor->size()) * sizeof(float);
    header[name] = {{"dtype", "F32"}, {"shape", tensor->shape()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string header_text;
  try {
    header_text = header.dump();
  } catch (const nlohmann::json::exception& e) {
    throw Error(path +
                ": cannot encode the safetensors header (names and metadata must be UTF-8): " + e.what());
  }
  header_text.append((8 - header_text.size() % 8) % 8, ' ');  // the reference pads to 8 bytes

  std::vector<uint8_t> bytes(8 + header_text.size() + offset);
  uint64_t header_size = header_text.size();
  std::memcpy(bytes.data(), &header_size, 8);
  std::memcpy(bytes.data() + 8, header_text.data(), header_text.size());
  uint8_t* data = bytes.data() + 8 + header_text.size();
  for (const auto& [name, tensor] : tensors) {
    size_t count = static_cast<size_t>(tensor->size()) * sizeof(float);
    if (count > 0) std::memcpy(data, tensor->data(), count);
    data += count;
  }
  io::write_file_atomic(path, bytes);
}

}  // namespace recur
