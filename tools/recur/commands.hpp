#pragma once
// The recur CLI: one file per subcommand. Each registers itself on the app and returns the function
// that runs it once parsing succeeded; recur::Error from it becomes one line on stderr and exit 1.
#include <CLI/CLI.hpp>
#include <functional>

namespace recur::cli {

struct Command {
  CLI::App* subcommand;       // owned by the app
  std::function<void()> run;  // called when the subcommand was given
};

Command add_run_command(CLI::App& app);
Command add_inspect_command(CLI::App& app);
Command add_train_command(CLI::App& app);
Command add_sample_command(CLI::App& app);
Command add_eval_command(CLI::App& app);
Command add_experiment_command(CLI::App& app);
// The subcommands of `recur experiment` (experiment.cpp: long-gap) in files of their own.
Command add_experiment_grid_command(CLI::App& experiment);  // experiment_grid.cpp
Command add_waveform_experiment(CLI::App& experiment);      // experiment_waveform.cpp
Command add_bench_command(CLI::App& app);

}  // namespace recur::cli
