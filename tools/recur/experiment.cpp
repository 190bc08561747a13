// recur experiment long-gap: where a plain RNN stops learning and an LSTM goes on, as one command.
// Trains every cell on every gap of every task with several seeds and the same budget; prints a table,
// writes runs.csv, runs.jsonl, summary.csv and the pictures (success against gap, ||dL/dh(t)|| against
// distance from the loss). docs/long_gap.md describes the tasks and the protocol.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "commands.hpp"
#include "recur/error.hpp"
#include "recur/long_gap.hpp"
#include "recur/runtime.hpp"

namespace recur::cli {
namespace {

struct ExperimentOptions {
  std::vector<std::string> tasks{"adding"};
  std::vector<std::string> cells{"rnn", "lstm", "gru"};
  std::vector<int64_t> gaps;  // empty: each task's default
  int seeds = 3;
  int64_t budget_sequences = 200000;
  double budget_minutes = 0;
  std::string match = "params";
  int64_t hidden = 16;
  int64_t batch = 16;
  float learning_rate = 3e-3f;
  double clip = 1.0;
  float forget_bias = 5.0f;
  int64_t test_sequences = 2560;
  int64_t gradient_gap = 0;
  std::string out = "long-gap";
  int jobs = 1;
  int threads = 1;
  bool json = false;
  bool quiet = false;
};

std::vector<int64_t> default_gaps(LongGapTask task) {
  switch (task) {
    case LongGapTask::adding:
      return {10, 20, 50, 100, 200};
    case LongGapTask::reber:
      return {0};
    case LongGapTask::temporal_order:
      return {10, 20, 50, 100};
    case LongGapTask::language:
      return {5, 10, 20, 50, 100};
  }
  return {};
}

struct Job {
  LongGapRunConfig config;
  LongGapRunResult result;
};

std::string gap_name(LongGapTask task) { return task == LongGapTask::language ? "G" : "T"; }

// "T=100", "G=20"; empty for reber, which has no gap.
std::string gap_text(const LongGapRunConfig& c) {
  return c.task == LongGapTask::reber ? "" : gap_name(c.task) + "=" + std::to_string(c.gap) + " ";
}

nlohmann::json run_json(const Job& j) {
  return {{"task", long_gap_task_name(j.config.task)},
          {"cell", j.config.cell.name()},
          {"gap", j.config.gap},
          {"seed", j.config.seed},
          {"hidden_size", j.config.hidden_size},
          {"parameters", j.result.parameters},
          {"solved", j.result.solved},
          {"test_error", j.result.test_error},
          {"test_wrong", j.result.test_wrong},
          {"test_count", j.result.test_count},
          {"sequences", j.result.sequences},
          {"seconds", j.result.seconds},
          {"train_loss", j.result.train_loss}};
}

std::vector<Job> plan(const ExperimentOptions& o) {
  std::vector<Job> jobs;
  // The gradient picture comes from the first task that has a gap (reber has none).
  std::optional<LongGapTask> probe_task;
  for (const std::string& task_name : o.tasks)
    if (!probe_task && parse_long_gap_task(task_name) != LongGapTask::reber)
      probe_task = parse_long_gap_task(task_name);
  for (const std::string& task_name : o.tasks) {
    const LongGapTask task = parse_long_gap_task(task_name);
    const CellSpec reference = CellSpec::lstm();
    const int64_t budget = long_gap_parameter_count(task, reference, o.hidden);
    std::vector<int64_t> gaps = task == LongGapTask::reber ? std::vector<int64_t>{0}
                                : o.gaps.empty()           ? default_gaps(task)
                                                           : o.gaps;
    const int64_t gradient_gap = o.gradient_gap > 0 ? o.gradient_gap
                                 : std::count(gaps.begin(), gaps.end(), 100)
                                     ? 100
                                     : *std::max_element(gaps.begin(), gaps.end());
    for (int64_t gap : gaps)
      for (const std::string& cell_name : o.cells)
        for (int seed = 0; seed < o.seeds; ++seed) {
          Job j;
          LongGapRunConfig& c = j.config;
          c.task = task, c.cell = StackSpec::parse(cell_name), c.gap = gap, c.seed = uint64_t(seed);
          c.hidden_size = o.match == "hidden" ? o.hidden : hidden_size_for_parameters(task, c.cell, budget);
          c.batch = o.batch, c.learning_rate = o.learning_rate, c.clip_norm = o.clip;
          c.forget_bias = o.forget_bias, c.test_sequences = o.test_sequences;
          c.max_sequences = o.budget_sequences, c.max_seconds = o.budget_minutes * 60;
          const bool probe_cell = c.cell == CellSpec::rnn_tanh() || c.cell == CellSpec::lstm();
          c.measure_gradients = task == probe_task && probe_cell && seed == 0 && gap == gradient_gap;
          c.validate();
          jobs.push_back(std::move(j));
        }
  }
  return jobs;
}

void run_all(std::vector<Job>& jobs, const ExperimentOptions& o) {
  std::atomic<size_t> next{0};
  std::mutex print;
  std::exception_ptr failure;  // the first run that threw; rethrown once every thread is done
  const auto worker = [&] {
    for (size_t i; (i = next++) < jobs.size();) {
      Job& j = jobs[i];
      const auto progress = [&](const std::string& line) {
        if (o.quiet) return;
        std::lock_guard<std::mutex> lock(print);
        std::fprintf(stderr, "  %s\n", line.c_str());
      };
      try {
        j.result = run_long_gap(j.config, progress);
      } catch (...) {
        std::lock_guard<std::mutex> lock(print);
        if (!failure) failure = std::current_exception();
        next = jobs.size();  // stop the others after their current run
        return;
      }
      std::lock_guard<std::mutex> lock(print);
      if (o.json) std::printf("%s\n", run_json(j).dump().c_str()), std::fflush(stdout);
      if (!o.quiet)
        std::fprintf(
            stderr, "[%zu/%zu] %s %s %sseed %llu: %s, test error %.4f (%lld/%lld), %lld sequences, %.1f s\n",
            i + 1, jobs.size(), long_gap_task_name(j.config.task).c_str(), j.config.cell.name().c_str(),
            gap_text(j.config).c_str(), (unsigned long long)j.config.seed,
            j.result.solved ? "solved" : "not solved", j.result.test_error, (long long)j.result.test_wrong,
            (long long)j.result.test_count, (long long)j.result.sequences, j.result.seconds);
    }
  };
  std::vector<std::thread> threads;
  for (int k = 1; k < o.jobs; ++k) threads.emplace_back(worker);
  worker();
  for (std::thread& t : threads) t.join();
  if (failure) std::rethrow_exception(failure);
}

// One row per task, cell and gap: solved fraction, mean test error, median sequences of the solved runs.
struct Summary {
  std::string task, cell;
  int64_t gap = 0, hidden = 0, parameters = 0;
  int runs = 0, solved = 0;
  double test_error = 0;
  double median_sequences = NAN;
};

std::vector<Summary> summarise(const std::vector<Job>& jobs) {
  std::map<std::tuple<std::string, int64_t, std::string>, std::vector<const Job*>> groups;
  std::vector<std::tuple<std::string, int64_t, std::string>> order;
  for (const Job& j : jobs) {
    auto key = std::make_tuple(long_gap_task_name(j.config.task), j.config.gap, j.config.cell.name());
    if (!groups.count(key)) order.push_back(key);
    groups[key].push_back(&j);
  }
  std::vector<Summary> rows;
  for (const auto& key : order) {
    const std::vector<const Job*>& g = groups[key];
    Summary s{std::get<0>(key), std::get<2>(key), std::get<1>(key), g[0]->config.hidden_size,
              g[0]->result.parameters};
    std::vector<double> sequences;
    for (const Job* j : g) {
      ++s.runs, s.solved += j->result.solved, s.test_error += j->result.test_error;
      if (j->result.solved) sequences.push_back(double(j->result.sequences));
    }
    s.test_error /= s.runs;
    if (!sequences.empty()) {
      std::sort(sequences.begin(), sequences.end());
      const size_t n = sequences.size();
      s.median_sequences = n % 2 ? sequences[n / 2] : (sequences[n / 2 - 1] + sequences[n / 2]) / 2;
    }
    rows.push_back(s);
  }
  return rows;
}

std::string table(const std::vector<Summary>& rows) {
  std::ostringstream out;
  char line[256];
  std::snprintf(line, sizeof line, "%-15s %-10s %6s %6s %7s %8s %11s %14s\n", "task", "cell", "gap", "hidden",
                "params", "solved", "test error", "sequences*");
  out << line;
  for (const Summary& s : rows) {
    std::snprintf(
        line, sizeof line, "%-15s %-10s %6lld %6lld %7lld %5d/%-2d %11.4f %14s\n", s.task.c_str(),
        s.cell.c_str(), (long long)s.gap, (long long)s.hidden, (long long)s.parameters, s.solved, s.runs,
        s.test_error,
        std::isfinite(s.median_sequences) ? std::to_string(int64_t(s.median_sequences)).c_str() : "-");
    out << line;
  }
  out << "* median training sequences until solved, over the solved runs\n";
  // The same as a grid per task: seeds solved, cell against gap.
  std::vector<std::string> tasks;
  for (const Summary& s : rows)
    if (std::find(tasks.begin(), tasks.end(), s.task) == tasks.end()) tasks.push_back(s.task);
  for (const std::string& task : tasks) {
    std::vector<int64_t> gaps;
    std::vector<std::string> cells;
    for (const Summary& s : rows)
      if (s.task == task) {
        if (std::find(gaps.begin(), gaps.end(), s.gap) == gaps.end()) gaps.push_back(s.gap);
        if (std::find(cells.begin(), cells.end(), s.cell) == cells.end()) cells.push_back(s.cell);
      }
    out << "\n" << task << ", seeds solved:\n" << std::string(10, ' ');
    for (int64_t gap : gaps) std::snprintf(line, sizeof line, "%8lld", (long long)gap), out << line;
    out << "\n";
    for (const std::string& cell : cells) {
      std::snprintf(line, sizeof line, "%-10s", cell.c_str());
      out << line;
      for (int64_t gap : gaps)
        for (const Summary& s : rows)
          if (s.task == task && s.cell == cell && s.gap == gap)
            std::snprintf(line, sizeof line, "%5d/%-2d", s.solved, s.runs), out << line;
      out << "\n";
    }
  }
  return out.str();
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  if (!(f << text)) throw Error("cannot write " + path);
}

void write_outputs(const std::vector<Job>& jobs, const std::vector<Summary>& rows,
                   const ExperimentOptions& o) {
  std::filesystem::create_directories(o.out);
  std::string csv =
      "task,cell,gap,seed,hidden_size,parameters,solved,test_error,test_wrong,test_count,sequences,seconds\n";
  std::string jsonl;
  for (const Job& j : jobs) {
    const nlohmann::json r = run_json(j);
    jsonl += r.dump() + "\n";
    std::ostringstream row;
    row << r["task"].get<std::string>() << ',' << r["cell"].get<std::string>() << ',' << j.config.gap << ','
        << j.config.seed << ',' << j.config.hidden_size << ',' << j.result.parameters << ','
        << (j.result.solved ? "true" : "false") << ',' << j.result.test_error << ',' << j.result.test_wrong
        << ',' << j.result.test_count << ',' << j.result.sequences << ',' << j.result.seconds << '\n';
    csv += row.str();
  }
  write_text(o.out + "/runs.csv", csv);
  write_text(o.out + "/runs.jsonl", jsonl);
  std::string summary =
      "task,cell,gap,hidden_size,parameters,runs,solved,solved_fraction,mean_test_error,median_sequences\n";
  for (const Summary& s : rows) {
    std::ostringstream row;
    row << s.task << ',' << s.cell << ',' << s.gap << ',' << s.hidden << ',' << s.parameters << ',' << s.runs
        << ',' << s.solved << ',' << double(s.solved) / s.runs << ',' << s.test_error << ','
        << (std::isfinite(s.median_sequences) ? std::to_string(int64_t(s.median_sequences)) : "") << '\n';
    summary += row.str();
  }
  write_text(o.out + "/summary.csv", summary);
  write_text(o.out + "/summary.txt", table(rows));

  // Success against gap, one line per cell, per task with more than one gap.
  for (const std::string& task : o.tasks) {
    const std::string name = long_gap_task_name(parse_long_gap_task(task));
    std::vector<ChartSeries> series;
    for (const std::string& cell : o.cells) {
      ChartSeries s{StackSpec::parse(cell).name(), {}, {}};
      for (const Summary& r : rows)
        if (r.task == name && r.cell == s.name)
          s.x.push_back(double(r.gap)), s.y.push_back(double(r.solved) / r.runs);
      series.push_back(s);
    }
    if (series.empty() || series[0].x.size() < 2) continue;
    ChartOptions c;
    c.title = name + ": fraction of seeds solved against the gap";
    c.x_label = name == "language" ? "filler words G" : "minimal sequence length T";
    c.y_label = "fraction of seeds solved";
    c.log_x = true, c.y_min = 0, c.y_max = 1;
    write_line_chart_svg(o.out + "/success_" + name + ".svg", series, c);
  }

  // The vanishing gradient: ||dL/dh(t)|| against the distance from the loss.
  std::vector<ChartSeries> gradients;
  std::string probe;
  for (const Job& j : jobs) {
    if (!j.config.measure_gradients) continue;
    probe = long_gap_task_name(j.config.task) + " " + gap_text(j.config) + "seed 0";
    for (int trained = 0; trained < 2; ++trained) {
      const std::vector<double>& norms = trained ? j.result.gradient_trained : j.result.gradient_initial;
      ChartSeries s{j.config.cell.name() + (trained ? ", trained" : ", at init"), {}, norms, trained == 0};
      for (size_t k = 0; k < norms.size(); ++k) s.x.push_back(double(k));
      gradients.push_back(s);
    }
  }
  if (!gradients.empty()) {
    ChartOptions c;
    c.title = "||dL/dh(t)|| against distance from the loss (" + probe + ")";
    c.x_label = "steps between h(t) and the loss";
    c.y_label = "mean ||dL/dh(t)||";
    c.log_y = true;
    write_line_chart_svg(o.out + "/gradient_norms.svg", gradients, c);
    nlohmann::json g = nlohmann::json::array();
    for (const ChartSeries& s : gradients) g.push_back({{"series", s.name}, {"norms", s.y}});
    write_text(o.out + "/gradient_norms.json", g.dump(1) + "\n");
  }
}

void run(const ExperimentOptions& o) {
  if (o.match != "params" && o.match != "hidden")
    throw Error("--match must be params or hidden, got '" + o.match + "'");
  if (o.jobs < 1) throw Error("--jobs must be positive, got " + std::to_string(o.jobs));
  set_num_threads(o.threads);
  std::vector<Job> jobs = plan(o);
  if (!o.quiet)
    std::fprintf(stderr, "long-gap: %zu runs, budget %lld sequences%s per run, %s matched\n", jobs.size(),
                 (long long)o.budget_sequences,
                 o.budget_minutes > 0 ? (" or " + std::to_string(o.budget_minutes) + " minutes").c_str() : "",
                 o.match == "params" ? "parameter counts" : "hidden sizes");
  run_all(jobs, o);
  const std::vector<Summary> rows = summarise(jobs);
  std::fputs(table(rows).c_str(), o.json ? stderr : stdout);
  if (!o.out.empty()) write_outputs(jobs, rows, o);
}

}  // namespace

Command add_experiment_command(CLI::App& app) {
  auto o = std::make_shared<ExperimentOptions>();
  CLI::App* experiment = app.add_subcommand("experiment", "Reproducible experiments");
  experiment->require_subcommand(1);
  CLI::App* sub = experiment->add_subcommand(
      "long-gap",
      "Train each cell on long-gap tasks (adding, reber, temporal_order, language) as the gap grows");
  sub->add_option("--tasks", o->tasks, "adding, reber, temporal_order, language")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("--cells", o->cells, "rnn, lstm, gru, peephole, cifg, ...")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option(
         "--gaps", o->gaps,
         "T (adding, temporal_order) or G (language); default adding 10,20,50,100,200, temporal_order "
         "10,20,50,100, language 5,10,20,50,100")
      ->delimiter(',');
  sub->add_option("--seeds", o->seeds, "runs per cell and gap")->capture_default_str();
  sub->add_option("--budget-sequences", o->budget_sequences,
                  "training sequences per run, every cell the same")
      ->capture_default_str();
  sub->add_option("--budget-minutes", o->budget_minutes, "wall-clock cap per run (0: none)")
      ->capture_default_str();
  sub->add_option("--match", o->match,
                  "params: hidden sizes chosen to match the LSTM's parameter count; hidden: "
                  "every cell gets --hidden")
      ->capture_default_str();
  sub->add_option("--hidden", o->hidden, "hidden size of the LSTM (the reference for --match params)")
      ->capture_default_str();
  sub->add_option("--batch", o->batch, "sequences per update")->capture_default_str();
  sub->add_option("--lr", o->learning_rate, "Adam's learning rate")->capture_default_str();
  sub->add_option("--clip", o->clip, "gradient-norm clipping")->capture_default_str();
  sub->add_option("--forget-bias", o->forget_bias,
                  "initial bias of the gate that keeps the state (LSTM f, cifg -i, GRU z)")
      ->capture_default_str();
  sub->add_option("--test-sequences", o->test_sequences, "fresh test sequences per run")
      ->capture_default_str();
  sub->add_option("--gradient-gap", o->gradient_gap,
                  "gap of the gradient picture (default 100, else the largest)");
  sub->add_option("--out", o->out,
                  "directory for runs.csv, runs.jsonl, summary.csv and the pictures ('' : none)")
      ->capture_default_str();
  sub->add_option("--jobs", o->jobs, "runs in parallel")->capture_default_str();
  sub->add_option("--threads", o->threads, "BLAS threads per run")->capture_default_str();
  sub->add_flag("--json", o->json, "one JSON object per run on stdout (the table goes to stderr)");
  sub->add_flag("--quiet", o->quiet, "no progress on stderr");
  const std::vector<Command> experiments = {{sub, [o] { run(*o); }},
                                            add_experiment_grid_command(*experiment),
                                            add_waveform_experiment(*experiment)};
  return {experiment, [experiments] {
            for (const Command& command : experiments)
              if (command.subcommand->parsed()) command.run();
          }};
}

}  // namespace recur::cli
