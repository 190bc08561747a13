#pragma once
// Output of the benchmark: the human table or one JSON object per line.
#include <cstdio>
#include <string>
#include <vector>

#include "engine.hpp"

namespace recur::bench {

// this.ms / peer.ms for the same case, cell, mode and threads (NaN when the peer has no number).
double ratio_to(const std::vector<Result>& results, const Result& r, const std::string& impl,
                const std::string& setting);

void print_table(std::FILE* out, const std::vector<Result>& results);
void print_json(std::FILE* out, const std::vector<Result>& results);

// A JSON line {"kind": kind, ...fields}; fields is a JSON object's body ("\"a\": 1, ...").
void print_json_line(std::FILE* out, const std::string& kind, const std::string& fields);
std::string json_string(const std::string& s);

}  // namespace recur::bench
