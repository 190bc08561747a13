#pragma once
// The benchmark engine shared by bench/rnn_bench and `recur bench`: recur against oneDNN's RNN
// primitives and PyTorch on the same shapes (cases.hpp), after checking that recur and oneDNN agree.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace recur::bench {

struct BenchOptions {
  std::vector<std::string> cases;  // names or prefixes; empty: all
  std::vector<std::string> cells;  // empty: lstm, gru, rnn (smoke: + gru_reset_before)
  std::vector<std::string> impls;  // recur, onednn, torch; empty: all (the check runs regardless)
  std::vector<int> threads{2, 1};
  int repeats = 10;            // timed repeats; the median is reported
  int warmup = 2;              // untimed runs first
  double max_seconds = 5.0;    // per measurement: stop after 3 repeats once this much time has passed
  bool json = false;           // one JSON object per line instead of the table
  std::string json_file;       // also write the JSON lines of the results here (with the table on stdout)
  bool smoke = false;          // tiny shapes, few repeats, no PyTorch unless asked: seconds (CI)
  bool check_only = false;     // agreement checks only, no timing
  bool no_onednn = false;      // time recur (and PyTorch) only
  std::string torch = "auto";  // auto (not in smoke runs), yes, no
  std::string python = "/usr/bin/python3";
  std::string torch_script;  // empty: the one next to the sources (RECUR_BENCH_TORCH_SCRIPT)
  double tolerance = 1e-4;   // max |recur - oneDNN| / max(1, max |oneDNN|), per tensor
  uint64_t seed = 1;
};

// Registers the options above on a CLI11 app (the bench program's, or `recur bench`'s).
void add_bench_options(CLI::App& app, BenchOptions& options);

// Runs the benchmark, writing the table (or JSON lines) to `out` and notes to stderr. Returns 0, or
// 1 if recur and oneDNN disagreed on some case (that case was not timed). Throws recur::Error on
// bad options.
int run_bench(const BenchOptions& options, std::FILE* out);

// One measurement.
struct Result {
  std::string case_name, cell, mode, impl, setting;  // setting: PyTorch's "best" or "default", else ""
  int threads = 0;
  double ms = 0, min_ms = 0, max_ms = 0;  // median, fastest, slowest; per step in step mode
  int repeats = 0;
  double gflops = 0, peak_fraction = 0;
};

}  // namespace recur::bench
