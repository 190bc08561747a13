// recur experiment grid: the Grid LSTM paper's algorithmic tasks (Kalchbrenner et al. 2015, section 4):
// k-bit parity with the paper's tied 1-LSTM and 15-digit addition (any D here) with its tied 2-LSTM, each
// beside a stacked LSTM (recur::Rnn) of the same depth and about as many parameters. Prints a markdown
// table (stdout; stderr with --json, whose JSON lines then go to stdout); --out writes runs.jsonl and
// summary.md. recur/grid_tasks.hpp describes the tasks, docs/cells/grid_lstm.md the results.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "commands.hpp"
#include "recur/error.hpp"
#include "recur/grid_tasks.hpp"
#include "recur/runtime.hpp"

namespace recur::cli {
namespace {

struct GridOptions {
  std::vector<std::string> tasks{"parity"};
  std::vector<std::string> models{"grid", "lstm"};
  std::vector<int64_t> bits{8, 16};
  std::vector<int64_t> digits{3};
  int64_t hidden = 64;
  int64_t layers = 10;
  std::string match = "params";
  int seeds = 3;
  int64_t batch = 20;
  float learning_rate = 1e-3f;
  double clip = 1.0;
  float forget_bias = 1.0f;
  float init_scale = 1.0f;
  int64_t budget_samples = 1000000;
  double budget_minutes = 1.0;
  int64_t window = 1000;
  int64_t test_samples = 1000;
  int threads = 1;
  std::string out;
  bool json = false;
  bool quiet = false;
};

struct Run {
  GridRunConfig config;
  GridRunResult result;
};

nlohmann::json run_json(const Run& r) {
  const GridRunConfig& c = r.config;
  return {{"task", grid_task_name(c.task)},
          {"size", c.task == GridTask::parity ? c.bits : c.digits},
          {"model", c.model},
          {"hidden_size", c.hidden_size},
          {"num_layers", c.num_layers},
          {"seed", c.seed},
          {"forget_bias", c.forget_bias},
          {"init_scale", c.init_scale},
          {"parameters", r.result.parameters},
          {"samples", r.result.samples},
          {"solved_at", r.result.solved_at},
          {"seconds", r.result.seconds},
          {"train_loss", r.result.train_loss},
          {"train_accuracy", r.result.train_accuracy},
          {"test_right", r.result.test_right},
          {"test_count", r.result.test_count},
          {"test_accuracy", r.result.test_accuracy()}};
}

std::vector<Run> plan(const GridOptions& o) {
  if (o.match != "params" && o.match != "hidden")
    throw Error("--match must be params or hidden, got '" + o.match + "'");
  std::vector<Run> runs;
  for (const std::string& task_name : o.tasks) {
    const GridTask task = parse_grid_task(task_name);
    for (int64_t size : task == GridTask::parity ? o.bits : o.digits)
      for (const std::string& model : o.models)
        for (int seed = 0; seed < o.seeds; ++seed) {
          GridRunConfig c;
          c.task = task, c.model = model;
          (task == GridTask::parity ? c.bits : c.digits) = size;
          c.hidden_size = o.hidden, c.num_layers = o.layers, c.batch = o.batch;
          c.learning_rate = o.learning_rate, c.clip_norm = o.clip, c.forget_bias = o.forget_bias;
          c.init_scale = o.init_scale;
          c.max_samples = o.budget_samples;
          c.max_seconds = o.budget_minutes * 60, c.window = o.window, c.test_samples = o.test_samples;
          c.seed = uint64_t(seed);
          if (model == "lstm" && o.match == "params") c.hidden_size = grid_task_matched_lstm_hidden(c);
          c.validate();
          runs.push_back({c, {}});
        }
  }
  return runs;
}

std::string table(const std::vector<Run>& runs) {
  std::ostringstream out;
  out << "| task | k or D | model | seed | hidden | layers | params | samples | solved at | seconds | train "
         "acc "
         "(last window) | test accuracy |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  char line[400];
  for (const Run& r : runs) {
    const GridRunConfig& c = r.config;
    std::snprintf(line, sizeof line,
                  "| %s | %lld | %s | %llu | %lld | %lld | %lld | %lld | %s | %.1f | %.3f | %.3f |\n",
                  grid_task_name(c.task).c_str(), (long long)(c.task == GridTask::parity ? c.bits : c.digits),
                  c.model.c_str(), (unsigned long long)c.seed, (long long)c.hidden_size,
                  (long long)c.num_layers, (long long)r.result.parameters, (long long)r.result.samples,
                  r.result.solved_at < 0 ? "-" : std::to_string(r.result.solved_at).c_str(), r.result.seconds,
                  r.result.train_accuracy, r.result.test_accuracy());
    out << line;
  }
  // Per task, size and model: runs solved (test accuracy >= 0.99) and the mean test accuracy.
  out << "\n| task | k or D | model | solved (test >= 0.99) | mean test accuracy |\n|---|---|---|---|---|\n";
  for (size_t i = 0; i < runs.size(); ++i) {
    const GridRunConfig& c = runs[i].config;
    if (i > 0 && runs[i - 1].config.model == c.model && runs[i - 1].config.task == c.task &&
        runs[i - 1].config.bits == c.bits && runs[i - 1].config.digits == c.digits)
      continue;  // plan() puts the seeds of one configuration next to each other
    int n = 0, solved = 0;
    double accuracy = 0;
    for (size_t j = i; j < runs.size() && runs[j].config.model == c.model && runs[j].config.task == c.task &&
                       runs[j].config.bits == c.bits && runs[j].config.digits == c.digits;
         ++j)
      ++n, solved += runs[j].result.test_accuracy() >= 0.99, accuracy += runs[j].result.test_accuracy();
    std::snprintf(line, sizeof line, "| %s | %lld | %s | %d/%d | %.3f |\n", grid_task_name(c.task).c_str(),
                  (long long)(c.task == GridTask::parity ? c.bits : c.digits), c.model.c_str(), solved, n,
                  accuracy / n);
    out << line;
  }
  out << "\nsolved at: training problems seen when the last window of training problems was all right.\n"
         "The paper (arXiv:1507.01526, section 4): the tied 1-LSTM learns k-bit parity up to k = 250; the "
         "tied\n"
         "2-LSTM learns 15-digit addition where stacked LSTMs do not (docs/cells/grid_lstm.md has its "
         "numbers).\n";
  return out.str();
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  if (!(f << text)) throw Error("cannot write " + path);
}

void run(const GridOptions& o) {
  set_num_threads(o.threads);
  std::vector<Run> runs = plan(o);
  std::string jsonl;
  for (size_t i = 0; i < runs.size(); ++i) {
    Run& r = runs[i];
    const auto progress = [&](const std::string& line) {
      if (!o.quiet) std::fprintf(stderr, "  %s\n", line.c_str());
    };
    r.result = run_grid_task(r.config, progress);
    const std::string line = run_json(r).dump();
    jsonl += line + "\n";
    if (o.json) std::printf("%s\n", line.c_str()), std::fflush(stdout);
    if (!o.quiet)
      std::fprintf(stderr,
                   "[%zu/%zu] %s %lld %s H=%lld L=%lld seed %llu: test accuracy %.3f, %lld samples, %.1f s\n",
                   i + 1, runs.size(), grid_task_name(r.config.task).c_str(),
                   (long long)(r.config.task == GridTask::parity ? r.config.bits : r.config.digits),
                   r.config.model.c_str(), (long long)r.config.hidden_size, (long long)r.config.num_layers,
                   (unsigned long long)r.config.seed, r.result.test_accuracy(), (long long)r.result.samples,
                   r.result.seconds);
  }
  const std::string summary = table(runs);
  std::fputs(summary.c_str(), o.json ? stderr : stdout);
  if (!o.out.empty()) {
    std::filesystem::create_directories(o.out);
    write_text(o.out + "/runs.jsonl", jsonl);
    write_text(o.out + "/summary.md", summary);
  }
}

}  // namespace

Command add_experiment_grid_command(CLI::App& experiment) {
  auto o = std::make_shared<GridOptions>();
  CLI::App* sub = experiment.add_subcommand(
      "grid", "Grid LSTM paper's parity (tied 1-LSTM) and addition (tied 2-LSTM) against a stacked LSTM");
  sub->add_option("--tasks", o->tasks, "parity, addition")->delimiter(',')->capture_default_str();
  sub->add_option("--models", o->models, "grid (the paper's tied grid), grid_untied, lstm (recur::Rnn)")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("--bits", o->bits, "parity: k, one run per value")->delimiter(',')->capture_default_str();
  sub->add_option("--digits", o->digits, "addition: D digits per number (the paper's 15)")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("--hidden", o->hidden, "hidden units of the grid models (and of lstm with --match hidden)")
      ->capture_default_str();
  sub->add_option("--layers", o->layers, "blocks along depth (grid) or stacked layers (lstm)")
      ->capture_default_str();
  sub->add_option("--match", o->match,
                  "params: lstm hidden size chosen for the tied grid's parameter count; hidden: --hidden")
      ->capture_default_str();
  sub->add_option("--seeds", o->seeds, "runs per task, size and model")->capture_default_str();
  sub->add_option("--batch", o->batch, "problems per update")->capture_default_str();
  sub->add_option("--lr", o->learning_rate, "Adam's learning rate")->capture_default_str();
  sub->add_option("--clip", o->clip, "gradient-norm clipping (0: none)")->capture_default_str();
  sub->add_option("--forget-bias", o->forget_bias, "initial bias of every forget gate")
      ->capture_default_str();
  sub->add_option("--init-scale", o->init_scale, "> 0: weights uniform in [-s, s], biases 0; 0: +-1/sqrt(H)")
      ->capture_default_str();
  sub->add_option("--budget-samples", o->budget_samples, "training problems per run")->capture_default_str();
  sub->add_option("--budget-minutes", o->budget_minutes, "wall-clock cap per run (0: none)")
      ->capture_default_str();
  sub->add_option("--window", o->window, "a run stops once this many training problems in a row were right")
      ->capture_default_str();
  sub->add_option("--test-samples", o->test_samples, "fresh test problems per run")->capture_default_str();
  sub->add_option("--threads", o->threads, "BLAS threads")->capture_default_str();
  sub->add_option("--out", o->out, "directory for runs.jsonl and summary.md ('': none)");
  sub->add_flag("--json", o->json, "one JSON object per run on stdout (the table goes to stderr)");
  sub->add_flag("--quiet", o->quiet, "no progress on stderr");
  return {sub, [o] { run(*o); }};
}

}  // namespace recur::cli
