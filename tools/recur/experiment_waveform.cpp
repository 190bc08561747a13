// recur experiment waveform: the clockwork RNN paper's sequence-generation task (Koutnik et al. 2014,
// section 4.1) on synthetic waveforms: a tanh RNN, an LSTM and a clockwork RNN at matched parameter counts
// learn to produce a 320-sample target from no input; prints a markdown table of NMSE, writes
// summary.md, runs.jsonl, waveforms.svg and .csv (target and generated) and curves.svg. With --speed it
// measures forward + backward time of a clockwork RNN against a dense tanh RNN of the same H instead.
// docs/cells/clockwork.md describes the protocol and a run.
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
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "commands.hpp"
#include "recur/error.hpp"
#include "recur/long_gap.hpp"
#include "recur/runtime.hpp"
#include "recur/waveform.hpp"

namespace recur::cli {
namespace {

struct WaveformOptions {
  std::vector<std::string> nets{"rnn", "lstm", "clockwork"};
  std::vector<int64_t> sizes{100, 250, 500, 1000};  // parameter counts to match (the paper's)
  int64_t modules = 9;
  int targets = 5, seeds = 1;
  int64_t iterations = 5000;
  std::string optimizer = "adam";
  float learning_rate = 3e-3f, momentum = 0.0f;
  bool nesterov = false;
  double clip = 1.0;
  int jobs = 1, threads = 1;
  std::string out = "waveform";
  bool json = false, quiet = false;
  bool speed = false;
  ClockworkSpeedConfig speed_config;
};

struct Job {
  int64_t size = 0;  // the parameter count asked for
  WaveformRunConfig config;
  WaveformRunResult result;
};

std::vector<Job> plan(const WaveformOptions& o) {
  std::vector<Job> jobs;
  OptimizerConfig optimizer;
  optimizer.kind = parse_optimizer(o.optimizer);
  optimizer.momentum = o.momentum;
  optimizer.nesterov = o.nesterov;
  for (int64_t size : o.sizes)
    for (const std::string& name : o.nets)
      for (int target = 0; target < o.targets; ++target)
        for (int seed = 0; seed < o.seeds; ++seed) {
          Job j;
          j.size = size;
          WaveformRunConfig& c = j.config;
          c.net = parse_waveform_net(name);
          c.hidden_size = waveform_net_size(c.net, size, o.modules).hidden;
          c.modules = o.modules, c.target = target, c.seed = uint64_t(seed), c.iterations = o.iterations;
          c.optimizer = optimizer, c.learning_rate = o.learning_rate, c.clip_norm = o.clip;
          c.validate();
          jobs.push_back(std::move(j));
        }
  return jobs;
}

nlohmann::json run_json(const Job& j) {
  return {{"net", waveform_net_name(j.config.net)},
          {"size", j.size},
          {"hidden_size", j.config.hidden_size},
          {"parameters", j.result.parameters},
          {"target", j.config.target},
          {"seed", j.config.seed},
          {"iterations", j.config.iterations},
          {"nmse", j.result.nmse},
          {"seconds", j.result.seconds}};
}

void run_all(std::vector<Job>& jobs, const WaveformOptions& o) {
  std::atomic<size_t> next{0};
  std::mutex print;
  std::exception_ptr failure;
  const auto worker = [&] {
    for (size_t i; (i = next++) < jobs.size();) {
      Job& j = jobs[i];
      try {
        j.result = run_waveform(j.config, [&](const std::string& line) {
          if (o.quiet) return;
          std::lock_guard<std::mutex> lock(print);
          std::fprintf(stderr, "  %s\n", line.c_str());
        });
      } catch (...) {
        std::lock_guard<std::mutex> lock(print);
        if (!failure) failure = std::current_exception();
        next = jobs.size();
        return;
      }
      std::lock_guard<std::mutex> lock(print);
      if (o.json) std::printf("%s\n", run_json(j).dump().c_str()), std::fflush(stdout);
      if (!o.quiet)
        std::fprintf(stderr, "[%zu/%zu] %s H=%lld (%lld parameters) target %d seed %llu: NMSE %.4g, %.1f s\n",
                     i + 1, jobs.size(), waveform_net_name(j.config.net).c_str(),
                     (long long)j.config.hidden_size, (long long)j.result.parameters, j.config.target,
                     (unsigned long long)j.config.seed, j.result.nmse, j.result.seconds);
    }
  };
  std::vector<std::thread> threads;
  for (int k = 1; k < o.jobs; ++k) threads.emplace_back(worker);
  worker();
  for (std::thread& t : threads) t.join();
  if (failure) std::rethrow_exception(failure);
}

std::string format(const char* pattern, double v) {
  char text[64];
  std::snprintf(text, sizeof text, pattern, v);
  return text;
}

// One row per size and net: NMSE mean, sd and best over targets and seeds.
std::string summary_table(const std::vector<Job>& jobs, const WaveformOptions& o) {
  std::ostringstream out;
  out << "| net | size asked | H | parameters | runs | NMSE mean | NMSE sd | NMSE best | s / run |\n"
      << "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  std::map<std::string, std::map<int64_t, double>> means;
  for (int64_t size : o.sizes)
    for (const std::string& name : o.nets) {
      std::vector<const Job*> group;
      for (const Job& j : jobs)
        if (j.size == size && waveform_net_name(j.config.net) == name) group.push_back(&j);
      if (group.empty()) continue;
      double mean = 0, sd = 0, best = INFINITY, seconds = 0;
      for (const Job* j : group)
        mean += j->result.nmse, best = std::min(best, j->result.nmse), seconds += j->result.seconds;
      mean /= double(group.size());
      for (const Job* j : group) sd += (j->result.nmse - mean) * (j->result.nmse - mean);
      sd = group.size() > 1 ? std::sqrt(sd / double(group.size() - 1)) : 0.0;
      means[name][size] = mean;
      out << "| " << name << " | " << size << " | " << group[0]->config.hidden_size << " | "
          << group[0]->result.parameters << " | " << group.size() << " | " << format("%.4g", mean) << " | "
          << format("%.2g", sd) << " | " << format("%.4g", best) << " | "
          << format("%.1f", seconds / double(group.size())) << " |\n";
    }
  out << "\nMean NMSE, net against the parameter count asked for:\n\n| net |";
  for (int64_t size : o.sizes) out << " " << size << " |";
  out << "\n|---|";
  for (size_t k = 0; k < o.sizes.size(); ++k) out << "---:|";
  out << "\n";
  for (const auto& [name, row] : means) {
    out << "| " << name << " |";
    for (int64_t size : o.sizes) out << " " << (row.count(size) ? format("%.4g", row.at(size)) : "-") << " |";
    out << "\n";
  }
  return out.str();
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  if (!(f << text)) throw Error("cannot write " + path);
}

// The runs of target 0, seed 0 at the largest size: generated waveforms and training curves.
void write_pictures(const std::vector<Job>& jobs, const WaveformOptions& o) {
  const int64_t size = *std::max_element(o.sizes.begin(), o.sizes.end());
  std::vector<ChartSeries> waves, curves;
  for (const Job& j : jobs) {
    if (j.size != size || j.config.target != 0 || j.config.seed != 0) continue;
    if (waves.empty()) {
      ChartSeries target{"target", {}, {}, true};
      for (size_t t = 0; t < j.result.target.size(); ++t)
        target.x.push_back(double(t)), target.y.push_back(j.result.target[t]);
      waves.push_back(target);
    }
    const std::string name = waveform_net_name(j.config.net) + " (" + std::to_string(j.result.parameters) +
                             " parameters, NMSE " + format("%.3g", j.result.nmse) + ")";
    ChartSeries s{name, {}, {}};
    for (size_t t = 0; t < j.result.output.size(); ++t)
      s.x.push_back(double(t)), s.y.push_back(j.result.output[t]);
    waves.push_back(s);
    ChartSeries c{waveform_net_name(j.config.net), {}, j.result.curve_nmse};
    for (int64_t i : j.result.curve_iterations) c.x.push_back(double(i));
    curves.push_back(c);
  }
  if (waves.empty()) return;
  std::ostringstream csv;  // the same numbers, for other plots
  csv << "t";
  for (const ChartSeries& s : waves) csv << "," << s.name.substr(0, s.name.find(' '));
  csv << "\n";
  for (size_t t = 0; t < waves[0].x.size(); ++t) {
    csv << t;
    for (const ChartSeries& s : waves) csv << "," << s.y[t];
    csv << "\n";
  }
  write_text(o.out + "/waveforms.csv", csv.str());
  ChartOptions w;
  w.title = "Waveform 0 and what each net generates (about " + std::to_string(size) + " parameters)";
  w.x_label = "step t";
  w.y_label = "value";
  write_line_chart_svg(o.out + "/waveforms.svg", waves, w);
  ChartOptions c;
  c.title = "Training NMSE (waveform 0, about " + std::to_string(size) + " parameters)";
  c.x_label = "iteration";
  c.y_label = "NMSE";
  c.log_y = true;
  write_line_chart_svg(o.out + "/curves.svg", curves, c);
}

void run_speed(const WaveformOptions& o) {
  const ClockworkSpeedConfig& c = o.speed_config;
  if (!o.quiet)
    std::fprintf(stderr, "clockwork speed: H=%lld in %lld modules, I=%lld, T=%lld, %d repeats, %d threads\n",
                 (long long)c.hidden_size, (long long)c.modules, (long long)c.input_size, (long long)c.steps,
                 c.repeats, num_threads());
  std::ostringstream out;
  out << "| B | clockwork fwd+bwd ms | dense tanh fwd+bwd ms | ratio | clockwork fwd ms | dense fwd ms |\n"
      << "|---:|---:|---:|---:|---:|---:|\n";
  for (const ClockworkSpeedRow& r : measure_clockwork_speed(c))
    out << "| " << r.batch << " | " << format("%.2f", r.clockwork_ms) << " | " << format("%.2f", r.dense_ms)
        << " | " << format("%.2f", r.ratio()) << " | " << format("%.2f", r.clockwork_forward_ms) << " | "
        << format("%.2f", r.dense_forward_ms) << " |\n";
  std::fputs(out.str().c_str(), stdout);
  if (!o.out.empty()) {
    std::filesystem::create_directories(o.out);
    write_text(o.out + "/speed.md", out.str());
  }
}

void run(const WaveformOptions& o) {
  if (o.jobs < 1) throw Error("--jobs must be positive, got " + std::to_string(o.jobs));
  set_num_threads(o.threads);
  if (o.speed) return run_speed(o);
  if (o.sizes.empty() || o.nets.empty()) throw Error("--sizes and --nets need at least one value each");
  if (o.targets < 1 || o.seeds < 1) throw Error("--targets and --seeds must be positive");
  std::vector<Job> jobs = plan(o);
  if (!o.quiet)
    std::fprintf(stderr, "waveform: %zu runs of %lld iterations, %s lr %g\n", jobs.size(),
                 (long long)o.iterations, o.optimizer.c_str(), double(o.learning_rate));
  run_all(jobs, o);
  const std::string table = summary_table(jobs, o);
  std::fputs(table.c_str(), o.json ? stderr : stdout);
  if (o.out.empty()) return;
  std::filesystem::create_directories(o.out);
  write_text(o.out + "/summary.md", table);
  std::string jsonl;
  for (const Job& j : jobs) jsonl += run_json(j).dump() + "\n";
  write_text(o.out + "/runs.jsonl", jsonl);
  write_pictures(jobs, o);
}

}  // namespace

Command add_waveform_experiment(CLI::App& experiment) {
  auto o = std::make_shared<WaveformOptions>();
  CLI::App* sub = experiment.add_subcommand(
      "waveform",
      "Clockwork RNN paper, sequence generation: rnn, lstm, clockwork learn a waveform (or --speed)");
  sub->add_option("--nets", o->nets, "rnn, lstm, clockwork")->delimiter(',')->capture_default_str();
  sub->add_option("--sizes", o->sizes, "parameter counts to match (the paper: 100,250,500,1000)")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("--modules", o->modules, "clockwork modules g (periods 1, 2, .., 2^(g-1))")
      ->capture_default_str();
  sub->add_option("--targets", o->targets, "synthetic waveforms 0 .. n-1 (the paper: 5 pieces of music)")
      ->capture_default_str();
  sub->add_option("--seeds", o->seeds, "runs per net, size and target")->capture_default_str();
  sub->add_option("--iterations", o->iterations, "updates per run, each from one pass over the sequence")
      ->capture_default_str();
  sub->add_option("--optimizer", o->optimizer, "adam, sgd, rmsprop, adamw")->capture_default_str();
  sub->add_option("--lr", o->learning_rate, "learning rate")->capture_default_str();
  sub->add_option("--momentum", o->momentum, "sgd, rmsprop momentum")->capture_default_str();
  sub->add_flag("--nesterov", o->nesterov, "sgd: Nesterov momentum");
  sub->add_option("--clip", o->clip, "gradient-norm clipping (0: none)")->capture_default_str();
  sub->add_option("--jobs", o->jobs, "runs in parallel")->capture_default_str();
  sub->add_option("--threads", o->threads, "BLAS threads")->capture_default_str();
  sub->add_option("--out", o->out,
                  "directory for summary.md, runs.jsonl, waveforms.svg/.csv, curves.svg ('' : none)")
      ->capture_default_str();
  sub->add_flag("--json", o->json, "one JSON object per run on stdout (the table goes to stderr)");
  sub->add_flag("--quiet", o->quiet, "no progress on stderr");
  sub->add_flag("--speed", o->speed, "measure clockwork against dense tanh RNN time instead of training");
  sub->add_option("--speed-hidden", o->speed_config.hidden_size, "--speed: H")->capture_default_str();
  sub->add_option("--speed-modules", o->speed_config.modules, "--speed: modules")->capture_default_str();
  sub->add_option("--speed-input", o->speed_config.input_size, "--speed: input size")->capture_default_str();
  sub->add_option("--speed-steps", o->speed_config.steps, "--speed: T")->capture_default_str();
  sub->add_option("--speed-batches", o->speed_config.batches, "--speed: batch sizes")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("--speed-repeats", o->speed_config.repeats, "--speed: timed repeats (median)")
      ->capture_default_str();
  return {sub, [o] { run(*o); }};
}

}  // namespace recur::cli
