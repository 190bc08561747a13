// The benchmark's schedule: per thread count, the sgemm peak; per case and cell, the agreement
// check (once), then recur and oneDNN timed in turn; then PyTorch in its own processes.
#include "engine.hpp"

#include <algorithm>
#include <cstdio>
#include <set>
#include <thread>

#include "check.hpp"
#include "measure.hpp"
#include "onednn_runner.hpp"
#include "recur/error.hpp"
#include "recur/runtime.hpp"
#include "report.hpp"
#include "torch_runner.hpp"

namespace recur::bench {

void add_bench_options(CLI::App& app, BenchOptions& o) {
  app.add_option("--cases", o.cases,
                 "cases (names or prefixes, comma-separated): a_charrnn, b_db512, b_db1024, "
                 "c_inf_b1, c_inf_b4, d_stream256; default all")
      ->delimiter(',');
  app.add_option("--cells", o.cells, "cells: lstm, gru, rnn, gru_reset_before; default lstm,gru,rnn")
      ->delimiter(',');
  app.add_option("--impls", o.impls, "implementations to time: recur, onednn, torch; default all")
      ->delimiter(',')
      ->check(CLI::IsMember({"recur", "onednn", "torch"}));
  app.add_option("--threads", o.threads, "thread counts to run, e.g. 2,1 (default)")->delimiter(',');
  app.add_option("--repeats", o.repeats, "timed repeats per measurement; the median is reported")
      ->check(CLI::PositiveNumber);
  app.add_option("--warmup", o.warmup, "untimed runs before timing")->check(CLI::NonNegativeNumber);
  app.add_option("--max-seconds", o.max_seconds,
                 "per measurement: stop after 3 repeats once this much time passed");
  app.add_flag("--json", o.json, "one JSON object per line (kind: info, peak, check, time)");
  app.add_option("--json-file", o.json_file, "also write the results as JSON lines to this file");
  app.add_flag("--smoke", o.smoke,
               "tiny shapes in seconds (CI): all cells incl. gru_reset_before, checks must pass");
  app.add_flag("--check-only", o.check_only, "only check that recur and oneDNN agree; no timing");
  app.add_flag("--no-onednn", o.no_onednn, "do not run oneDNN (no agreement check either)");
  app.add_option("--torch", o.torch, "PyTorch: auto (if importable; not with --smoke), yes (must run), no")
      ->check(CLI::IsMember({"auto", "yes", "no"}));
  app.add_option("--python", o.python, "the Python that has torch (default /usr/bin/python3)");
  app.add_option("--torch-script", o.torch_script,
                 "path of torch_rnn_bench.py (default: next to the sources)");
  app.add_option("--tolerance", o.tolerance, "max |recur - oneDNN| / max(1, max |oneDNN|) per tensor (1e-4)");
  app.add_option("--seed", o.seed, "seed of the weights and inputs");
}

namespace {

std::vector<Case> select_cases(const BenchOptions& o) {
  const std::vector<Case> all = o.smoke ? smoke_cases() : standard_cases();
  if (o.cases.empty()) return all;
  std::vector<Case> chosen;
  for (const std::string& wanted : o.cases) {
    bool found = false;
    for (const Case& c : all)
      if (c.name.rfind(wanted, 0) == 0 &&
          std::none_of(chosen.begin(), chosen.end(), [&](const Case& k) { return k.name == c.name; })) {
        chosen.push_back(c);
        found = true;
      }
    if (!found) {
      std::string names;
      for (const Case& c : all) names += (names.empty() ? "" : ", ") + c.name;
      throw Error("bench: no case matches '" + wanted + "' (cases: " + names + ")");
    }
  }
  return chosen;
}

std::vector<BenchCell> select_cells(const BenchOptions& o) {
  std::vector<std::string> names = o.cells;
  if (names.empty()) names = default_cell_names();
  if (o.cells.empty() && o.smoke) names.push_back("gru_reset_before");
  std::vector<BenchCell> cells;
  for (const std::string& name : names) cells.push_back(find_cell(name));
  return cells;
}

bool wants(const BenchOptions& o, const std::string& impl) {
  return o.impls.empty() || std::find(o.impls.begin(), o.impls.end(), impl) != o.impls.end();
}

std::string fmt(const char* format, double value) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, value);
  return buffer;
}

// What a run needs besides the options: the notes and results so far.
struct Session {
  const BenchOptions& options;
  std::FILE* out;
  std::vector<Case> cases{};
  std::vector<BenchCell> cells{};
  int warmup = 0, repeats = 0;
  bool use_onednn = false, use_torch = false;  // oneDNN: the check; its timing also needs wants()
  std::set<std::string> checked{}, refused{};  // "case/cell"
  std::vector<Result> results{};
  int failures = 0;

  void note(const std::string& text) const {
    if (options.json)
      print_json_line(out, "info", "\"note\": " + json_string(text));
    else
      std::fprintf(out, "%s\n", text.c_str());
    std::fflush(out);
  }
  void progress(const std::string& text) const {
    std::fprintf(stderr, "[bench] %s\n", text.c_str());
    std::fflush(stderr);
  }
};

// Returns false when the case must not be timed (recur and oneDNN disagree).
bool check_agreement(Session& s, const Problem& p, Runner& recur, Runner& onednn) {
  const std::string key = p.shape.name + "/" + p.cell.name;
  if (s.refused.count(key)) return false;
  if (s.checked.count(key)) return true;
  s.checked.insert(key);
  const Agreement a = compare(recur.compute(), onednn.compute(), s.options.tolerance);
  if (s.options.json) {
    std::string fields =
        "\"case\": " + json_string(p.shape.name) + ", \"cell\": " + json_string(p.cell.name) +
        ", \"mode\": " + json_string(mode_name(p.shape.mode)) + ", \"ok\": " + (a.ok ? "true" : "false") +
        ", \"worst_relative\": " + fmt("%.3e", a.worst_relative);
    for (const TensorAgreement& t : a.tensors)
      fields += ", \"max_abs_diff_" + t.name + "\": " + fmt("%.3e", t.max_abs_diff);
    print_json_line(s.out, "check", fields);
  } else {
    std::fprintf(s.out, "check %-11s %-16s %-5s recur vs oneDNN max |diff|: %s; %s\n", p.shape.name.c_str(),
                 p.cell.name.c_str(), mode_name(p.shape.mode).c_str(), describe(a).c_str(),
                 (fmt("worst relative %.1e", a.worst_relative) + (a.ok ? ": agree" : ": DISAGREE, not timed"))
                     .c_str());
  }
  std::fflush(s.out);
  if (!a.ok) {
    s.refused.insert(key);
    ++s.failures;
  }
  return a.ok;
}

void record(Session& s, const Problem& p, const std::string& impl, int threads, const Timing& t) {
  Result r{p.shape.name, p.cell.name, mode_name(p.shape.mode), impl, "", threads, t.median_ms, t.min_ms,
           t.max_ms,     t.repeats};
  s.progress(r.case_name + " " + r.cell + " " + r.mode + " " + impl + " " + std::to_string(threads) +
             " thr: " + fmt("%.4g", r.ms) + " ms (" + std::to_string(t.repeats) + " repeats)");
  s.results.push_back(r);
}

void run_problem(Session& s, const Case& shape, const BenchCell& cell, int threads) {
  const Problem p = make_problem(shape, cell, s.options.seed);
  std::unique_ptr<Runner> recur = make_recur_runner(p), onednn;
  if (s.use_onednn) {
    try {
      onednn = make_onednn_runner(p);
    } catch (const Error& e) {
      s.note(std::string("oneDNN skipped: ") + e.what());
    }
  }
  if (onednn && !check_agreement(s, p, *recur, *onednn)) return;
  if (s.options.check_only) return;
  const double units = shape.mode == Mode::step ? double(shape.steps) : 1.0;
  const auto time = [&](Runner& runner) {
    return time_unit([&] { runner.run(); }, s.warmup, s.repeats, s.options.max_seconds, units);
  };
  // Between implementations, the previous one's spinning worker threads go to sleep.
  const int pause_ms = s.options.smoke ? 10 : 150;
  if (wants(s.options, "recur")) {
    record(s, p, "recur", threads, time(*recur));
    settle(pause_ms);
  }
  if (onednn && wants(s.options, "onednn")) {
    record(s, p, "onednn", threads, time(*onednn));
    settle(pause_ms);
  }
}

void run_torch_settings(Session& s, int threads) {
  std::vector<std::string> settings{"best"};
  if (threads > 1 && threads == int(std::thread::hardware_concurrency())) settings.push_back("default");
  for (const std::string& setting : settings) {
    s.progress("PyTorch, " + std::to_string(threads) + " threads, setting " + setting);
    BenchOptions options = s.options;  // smoke runs cut the repeats
    options.repeats = s.repeats;
    options.warmup = s.warmup;
    const TorchRun run = run_torch(options, s.cases, s.cells, threads, setting);
    if (!run.error.empty()) {
      if (s.options.torch == "yes")
        throw Error("bench: PyTorch was asked for (--torch yes) but " + run.error);
      s.note("PyTorch: not timed (" + run.error + ")");
      s.use_torch = false;
      return;
    }
    s.note("PyTorch (" + setting + ", " + std::to_string(threads) + " threads): " + run.info);
    for (const Result& r : run.results)
      if (!s.refused.count(r.case_name + "/" + r.cell)) s.results.push_back(r);
  }
}

void fill_rates(Session& s, const std::vector<std::pair<int, double>>& peaks) {
  for (Result& r : s.results) {
    const auto shape =
        std::find_if(s.cases.begin(), s.cases.end(), [&](const Case& c) { return c.name == r.case_name; });
    if (shape == s.cases.end() || r.ms <= 0) continue;  // a stray line from the PyTorch helper
    r.gflops = case_flops(*shape, find_cell(r.cell).spec) / (r.ms * 1e6);
    for (const auto& [threads, peak] : peaks)
      if (threads == r.threads && peak > 0) r.peak_fraction = r.gflops / peak;
  }
  // Group by case, cell, threads (in the order asked), implementations in the order produced.
  const auto rank = [&](const Result& r) {
    const auto c =
        std::find_if(s.cases.begin(), s.cases.end(), [&](const Case& k) { return k.name == r.case_name; });
    const auto e =
        std::find_if(s.cells.begin(), s.cells.end(), [&](const BenchCell& k) { return k.name == r.cell; });
    const auto t = std::find(s.options.threads.begin(), s.options.threads.end(), r.threads);
    return std::tuple{c - s.cases.begin(), e - s.cells.begin(), t - s.options.threads.begin()};
  };
  std::stable_sort(s.results.begin(), s.results.end(),
                   [&](const Result& a, const Result& b) { return rank(a) < rank(b); });
}

}  // namespace

int run_bench(const BenchOptions& o, std::FILE* out) {
  Session s{o, out};
  s.cases = select_cases(o);
  s.cells = select_cells(o);
  s.warmup = o.smoke ? std::min(o.warmup, 1) : o.warmup;
  s.repeats = o.smoke ? std::min(o.repeats, 3) : o.repeats;
  s.use_onednn = !o.no_onednn && onednn_available();
  s.use_torch = wants(o, "torch") && (o.torch == "yes" || (o.torch == "auto" && !o.smoke && !o.check_only));
  for (int threads : o.threads)
    if (threads < 1) throw Error("bench: --threads must be at least 1, got " + std::to_string(threads));
  s.note("machine: " + machine_description() + "; " + openblas_description());
  s.note(std::string("recur: ") + compute_engine());
  if (s.use_onednn)
    s.note(onednn_description());
  else
    s.note(o.no_onednn ? "oneDNN: not run (--no-onednn); timing recur only, without the agreement check"
                       : onednn_description() + "; timing recur only, without the agreement check");
  std::vector<std::pair<int, double>> peaks;
  for (int threads : o.threads) {
    set_num_threads(threads);
    onednn_set_num_threads(threads);
    if (!o.check_only) {
      const double peak = sgemm_peak_gflops(o.smoke ? 256 : 2048, o.smoke ? 2 : 5, threads);
      peaks.emplace_back(threads, peak);
      if (o.json)
        print_json_line(out, "peak",
                        "\"threads\": " + std::to_string(threads) + ", \"sgemm_gflops\": " +
                            fmt("%.1f", peak) + ", \"n\": " + (o.smoke ? "256" : "2048"));
      else
        s.note("sgemm peak (OpenBLAS, " + std::to_string(threads) + " threads): " + fmt("%.1f", peak) +
               " GFLOP/s");
    }
    for (const Case& shape : s.cases)
      for (const BenchCell& cell : s.cells) run_problem(s, shape, cell, threads);
    if (o.check_only) break;
    if (s.use_torch) run_torch_settings(s, threads);
  }
  if (!o.check_only) {
    fill_rates(s, peaks);
    if (o.json)
      print_json(out, s.results);
    else
      print_table(out, s.results);
    if (!o.json_file.empty()) {
      std::FILE* file = std::fopen(o.json_file.c_str(), "w");
      if (file == nullptr) throw Error("bench: cannot write --json-file '" + o.json_file + "'");
      for (const auto& [threads, peak] : peaks)
        print_json_line(
            file, "peak",
            "\"threads\": " + std::to_string(threads) + ", \"sgemm_gflops\": " + fmt("%.1f", peak));
      print_json(file, s.results);
      std::fclose(file);
    }
  }
  if (s.failures > 0)
    s.note("recur and oneDNN disagree on " + std::to_string(s.failures) + " case(s): not timed");
  std::fflush(out);
  return s.failures > 0 ? 1 : 0;
}

}  // namespace recur::bench
