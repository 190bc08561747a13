#pragma once
// Whole-file reads and atomic writes for the io layer. Errors are recur::Error naming the path and
// the system's reason (strerror).
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace recur::io {

// The bytes of `path`; throws recur::Error("<path>: cannot open: <reason>") and the like.
std::vector<uint8_t> read_file_bytes(const std::string& path);

// Writes `bytes` to `path` atomically: a temporary file in the same directory, write, fsync, rename
// over `path`, fsync the directory. A reader sees the old file or the complete new one, never a part.
// On failure the temporary file is removed and recur::Error names the path and the reason.
void write_file_atomic(const std::string& path, std::span<const uint8_t> bytes);

}  // namespace recur::io
