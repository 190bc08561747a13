#pragma once
// recur::Error: the one exception type of the library. Its message names the thing (file, field,
// tensor), the value found and the limit or expectation it broke. The CLI prints it as one line.
#include <stdexcept>
#include <string>

namespace recur {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace recur
