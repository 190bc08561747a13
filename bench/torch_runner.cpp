#include "torch_runner.hpp"

#include <sys/wait.h>

#include <cstdio>
#include <nlohmann/json.hpp>

namespace recur::bench {

namespace {

std::string quoted(const std::string& s) {  // for /bin/sh: '...' with embedded quotes escaped
  std::string out = "'";
  for (char ch : s) out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return out + "'";
}

std::string command_line(const BenchOptions& options, const std::vector<Case>& cases,
                         const std::vector<BenchCell>& cells, int threads, const std::string& setting) {
  std::string case_list, cell_list;
  for (const Case& c : cases)
    case_list += (case_list.empty() ? "" : ",") + c.name + ":" + mode_name(c.mode) + ":" +
                 std::to_string(c.input) + ":" + std::to_string(c.hidden) + ":" + std::to_string(c.layers) +
                 ":" + std::to_string(c.batch) + ":" + std::to_string(c.steps);
  for (const BenchCell& cell : cells)
    if (cell.torch_has_it) cell_list += (cell_list.empty() ? "" : ",") + cell.name;
  std::string env = "env -u OMP_NUM_THREADS -u OPENBLAS_NUM_THREADS -u MKL_NUM_THREADS -u GOTO_NUM_THREADS";
  if (setting == "best") env += " OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=" + std::to_string(threads);
#ifdef RECUR_BENCH_TORCH_SCRIPT
  const std::string script = options.torch_script.empty() ? RECUR_BENCH_TORCH_SCRIPT : options.torch_script;
#else
  const std::string script = options.torch_script;
#endif
  return env + " " + quoted(options.python) + " " + quoted(script) + " --cases " + case_list + " --cells " +
         cell_list + " --repeats " + std::to_string(options.repeats) + " --warmup " +
         std::to_string(options.warmup) + " --max-seconds " + std::to_string(options.max_seconds) +
         " --threads " + std::to_string(threads) + " --setting " + setting + " --seed " +
         std::to_string(options.seed);
}

}  // namespace

TorchRun run_torch(const BenchOptions& options, const std::vector<Case>& cases,
                   const std::vector<BenchCell>& cells, int threads, const std::string& setting) {
  TorchRun run;
  const std::string command = command_line(options, cases, cells, threads, setting);
  std::FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    run.error = "cannot start: " + command;
    return run;
  }
  std::string line;
  char buffer[4096];
  while (std::fgets(buffer, sizeof buffer, pipe) != nullptr) {
    line += buffer;
    if (line.empty() || line.back() != '\n') continue;
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    line.clear();
    if (j.is_discarded() || !j.is_object()) continue;  // not ours (a stray print)
    const std::string kind = j.value("kind", "");
    if (kind == "error") run.error = j.value("error", "unknown error");
    if (kind == "info")
      run.info = "torch " + j.value("torch_version", "?") + ", get_num_threads() " +
                 std::to_string(j.value("torch_threads", 0)) + ", environment " + j["env"].dump();
    if (kind != "time") continue;
    Result r;
    r.case_name = j.value("case", "");
    r.cell = j.value("cell", "");
    r.mode = j.value("mode", "");
    r.impl = "torch";
    r.setting = setting;
    r.threads = threads;
    r.ms = j.value("ms", 0.0);
    r.min_ms = j.value("min_ms", 0.0);
    r.max_ms = j.value("max_ms", 0.0);
    r.repeats = j.value("repeats", 0);
    run.results.push_back(r);
  }
  const int status = pclose(pipe);
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (code != 0 && run.error.empty()) run.error = "exit status " + std::to_string(code) + " from: " + command;
  return run;
}

}  // namespace recur::bench
