// Text splits and checkpoint paths for recur train, sample and eval.
#include "language_data.hpp"

#include <sys/stat.h>

#include <cmath>

#include "recur/error.hpp"

namespace recur::cli {
namespace {

bool is_directory(const std::string& path) {
  struct stat info;
  return ::stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode);
}

bool exists(const std::string& path) {
  struct stat info;
  return ::stat(path.c_str(), &info) == 0;
}

}  // namespace

TextSplit split_text(const std::string& text, const std::string& valid_path, double valid_fraction,
                     TokenMode mode) {
  if (!valid_path.empty()) return {text, read_text_file(valid_path)};
  if (!(valid_fraction >= 0 && valid_fraction < 1))
    throw Error("--valid-fraction " + std::to_string(valid_fraction) + " outside [0, 1)");
  if (valid_fraction == 0) return {text, ""};
  size_t cut = size_t(std::floor(double(text.size()) * (1 - valid_fraction)));
  if (mode == TokenMode::words) {
    const size_t line = text.rfind('\n', cut == 0 ? 0 : cut - 1);
    cut = line == std::string::npos ? 0 : line + 1;
  } else {
    while (cut < text.size() && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) ++cut;
  }
  return {text.substr(0, cut), text.substr(cut)};
}

std::string checkpoint_file(const std::string& path) {
  if (!is_directory(path)) {
    if (!exists(path)) throw Error(path + ": no such checkpoint file or directory");
    return path;
  }
  for (const char* name : {"/best.safetensors", "/last.safetensors"})
    if (exists(path + name)) return path + name;
  throw Error(path + ": directory holds neither best.safetensors nor last.safetensors");
}

std::string default_corpus() {
#ifdef RECUR_DATA_DIR
  if (exists(RECUR_DATA_DIR "/tinyshakespeare.txt")) return RECUR_DATA_DIR "/tinyshakespeare.txt";
#endif
  return "data/tinyshakespeare.txt";
}

}  // namespace recur::cli
