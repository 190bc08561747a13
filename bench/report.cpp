#include "report.hpp"

#include <cmath>
#include <nlohmann/json.hpp>

namespace recur::bench {

double ratio_to(const std::vector<Result>& results, const Result& r, const std::string& impl,
                const std::string& setting) {
  for (const Result& peer : results)
    if (peer.case_name == r.case_name && peer.cell == r.cell && peer.mode == r.mode &&
        peer.threads == r.threads && peer.impl == impl && peer.setting == setting && peer.ms > 0)
      return r.ms / peer.ms;
  return NAN;
}

namespace {

std::string impl_label(const Result& r) { return r.setting.empty() ? r.impl : r.impl + ":" + r.setting; }

void print_ratio(std::FILE* out, double ratio, bool self) {
  if (self || std::isnan(ratio))
    std::fprintf(out, " %9s", "-");
  else
    std::fprintf(out, " %8.2fx", ratio);
}

}  // namespace

void print_table(std::FILE* out, const std::vector<Result>& results) {
  std::fprintf(
      out,
      "\nms: median per call (step mode: per step); x peer: this time / the peer's time (< 1: faster)\n");
  std::fprintf(out, "%-12s %-16s %-5s %-13s %3s %11s %9s %6s %9s %9s %9s\n", "case", "cell", "mode", "impl",
               "thr", "ms", "GFLOP/s", "%peak", "x onednn", "x torch", "x t:def");
  std::string previous;
  for (const Result& r : results) {
    const std::string group = r.case_name + r.cell + std::to_string(r.threads);
    if (!previous.empty() && group != previous) std::fprintf(out, "\n");
    previous = group;
    std::fprintf(out, "%-12s %-16s %-5s %-13s %3d %11.4g %9.1f %5.1f%%", r.case_name.c_str(), r.cell.c_str(),
                 r.mode.c_str(), impl_label(r).c_str(), r.threads, r.ms, r.gflops, 100.0 * r.peak_fraction);
    print_ratio(out, ratio_to(results, r, "onednn", ""), r.impl == "onednn");
    print_ratio(out, ratio_to(results, r, "torch", "best"), r.impl == "torch" && r.setting == "best");
    print_ratio(out, ratio_to(results, r, "torch", "default"), r.impl == "torch" && r.setting == "default");
    std::fprintf(out, "\n");
  }
}

void print_json(std::FILE* out, const std::vector<Result>& results) {
  for (const Result& r : results) {
    nlohmann::ordered_json j{
        {"kind", "time"},       {"case", r.case_name}, {"cell", r.cell},
        {"mode", r.mode},       {"impl", r.impl},      {"threads", r.threads},
        {"ms", r.ms},           {"min_ms", r.min_ms},  {"max_ms", r.max_ms},
        {"repeats", r.repeats}, {"gflops", r.gflops},  {"peak_fraction", r.peak_fraction}};
    if (!r.setting.empty()) j["setting"] = r.setting;
    for (const auto& [key, impl, setting] : {std::tuple{"ratio_onednn", "onednn", ""},
                                             {"ratio_torch", "torch", "best"},
                                             {"ratio_torch_default", "torch", "default"}}) {
      const double ratio = ratio_to(results, r, impl, setting);
      if (!std::isnan(ratio) && !(r.impl == impl && r.setting == setting)) j[key] = ratio;
    }
    std::fprintf(out, "%s\n", j.dump().c_str());
  }
}

void print_json_line(std::FILE* out, const std::string& kind, const std::string& fields) {
  std::fprintf(out, "{\"kind\": %s%s%s}\n", json_string(kind).c_str(), fields.empty() ? "" : ", ",
               fields.c_str());
}

std::string json_string(const std::string& s) { return nlohmann::json(s).dump(); }

}  // namespace recur::bench
