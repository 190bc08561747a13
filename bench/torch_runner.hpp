#pragma once
// PyTorch through bench/torch_rnn_bench.py, one process per thread setting (PyTorch and its BLAS
// read their thread counts once, at import, from the environment).
#include <string>
#include <vector>

#include "cases.hpp"
#include "engine.hpp"

namespace recur::bench {

struct TorchRun {
  std::vector<Result> results;  // gflops and peak_fraction left for the caller
  std::string info;             // "torch 1.13.0, torch threads 1, OMP_NUM_THREADS=1 ..."
  std::string error;            // non-empty: PyTorch could not be run
};

// setting "best": OMP_NUM_THREADS=1, OPENBLAS_NUM_THREADS=threads (no OpenMP/BLAS fight);
// "default": neither variable set (PyTorch's own choice; labelled with `threads`).
TorchRun run_torch(const BenchOptions& options, const std::vector<Case>& cases,
                   const std::vector<BenchCell>& cells, int threads, const std::string& setting);

}  // namespace recur::bench
