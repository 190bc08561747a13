// recur bench: the benchmark engine of bench/ (recur vs oneDNN vs PyTorch, docs/performance.md).
#include <memory>

#include "commands.hpp"
#include "engine.hpp"
#include "recur/error.hpp"

namespace recur::cli {

Command add_bench_command(CLI::App& app) {
  CLI::App* sub = app.add_subcommand(
      "bench", "time recur against oneDNN and PyTorch on standard RNN shapes, after an agreement check");
  auto options = std::make_shared<bench::BenchOptions>();
  bench::add_bench_options(*sub, *options);
  return {sub, [options] {
            if (bench::run_bench(*options, stdout) != 0)
              throw Error("bench: recur and oneDNN disagree on some case (see the check lines above)");
          }};
}

}  // namespace recur::cli
