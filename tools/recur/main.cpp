// recur: recurrent neural networks from the shell. `recur --help` lists the subcommands.
#include <cstdio>
#include <exception>
#include <vector>

#include "commands.hpp"
#include "recur/error.hpp"

int main(int argc, char** argv) {
  CLI::App app{"recur: recurrent neural networks (RNN, LSTM, GRU and their variants) on the CPU"};
  app.require_subcommand(1);
  const std::vector<recur::cli::Command> commands = {recur::cli::add_run_command(app),
                                                     recur::cli::add_inspect_command(app),
                                                     recur::cli::add_bench_command(app),
                                                     recur::cli::add_train_command(app),
                                                     recur::cli::add_sample_command(app),
                                                     recur::cli::add_eval_command(app),
                                                     recur::cli::add_experiment_command(app)};
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (const recur::cli::Command& command : commands)
      if (command.subcommand->parsed()) command.run();
  } catch (const recur::Error& e) {
    std::fprintf(stderr, "recur: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "recur: internal error: %s\n", e.what());
    return 2;
  }
  return 0;
}
