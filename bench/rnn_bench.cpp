// rnn_bench: recur against oneDNN's RNN primitives and PyTorch on the shapes of issue 3 (cases.hpp),
// after checking that recur and oneDNN compute the same outputs. `recur bench` runs the same engine.
//   rnn_bench                       all cases, lstm/gru/rnn, 2 and 1 threads, the table
//   rnn_bench --cases c_inf --cells lstm --threads 2 --json
//   rnn_bench --smoke               tiny shapes in seconds (the CI test)
#include <cstdio>
#include <exception>

#include "engine.hpp"
#include "recur/error.hpp"

int main(int argc, char** argv) {
  CLI::App app{"rnn_bench: recur vs oneDNN vs PyTorch on recurrent layers (see docs/performance.md)"};
  recur::bench::BenchOptions options;
  recur::bench::add_bench_options(app, options);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return recur::bench::run_bench(options, stdout);
  } catch (const recur::Error& e) {
    std::fprintf(stderr, "rnn_bench: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rnn_bench: internal error: %s\n", e.what());
    return 2;
  }
}
