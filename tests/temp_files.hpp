#pragma once
// Temporary files for tests: fresh paths in one directory of this test process's own, removed when the
// process exits.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace recur::test {

inline std::filesystem::path temp_directory() {
  struct Directory {
    std::filesystem::path path =
        std::filesystem::path(::testing::TempDir()) / ("recur_tests_" + std::to_string(::getpid()));
    Directory() { std::filesystem::create_directories(path); }
    ~Directory() {
      std::error_code ignored;
      std::filesystem::remove_all(path, ignored);
    }
  };
  static Directory directory;
  return directory.path;
}

// A path no other call returns; `name` ends it, for readable error messages.
inline std::string temp_path(const std::string& name) {
  static int counter = 0;
  return (temp_directory() / (std::to_string(counter++) + "_" + name)).string();
}

}  // namespace recur::test
