#pragma once
// What recur train, sample and eval share: reading text into training and validation tokens, and
// finding a checkpoint.
#include <string>
#include <vector>

#include "recur/text.hpp"

namespace recur::cli {

struct TextSplit {
  std::string train, valid;
};

// The training text and the validation text: `valid_path` if given, else the last `valid_fraction` of
// `text`, cut at a line start (words) or a character boundary (characters).
TextSplit split_text(const std::string& text, const std::string& valid_path, double valid_fraction,
                     TokenMode mode);

// A checkpoint file: PATH itself, or PATH/best.safetensors (else PATH/last.safetensors) for a directory.
std::string checkpoint_file(const std::string& path);

// Where `recur train` finds its default corpus when --data is not given.
std::string default_corpus();

}  // namespace recur::cli
