// Line charts as SVG for the long-gap experiment (recur/long_gap.hpp), in the manner of
// src/train/curve.cpp: written directly, axes with "nice" ticks, optional log axes.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <span>
#include <string>

#include "io/file_util.hpp"
#include "recur/long_gap.hpp"

namespace recur {
namespace {

constexpr double width = 800, height = 480, left = 80, right = 170, top = 40, bottom = 60;
const char* const colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"};

std::string num(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", v);
  return text;
}

std::string label(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3g", v);
  return text;
}

std::string escape(const std::string& text) {
  std::string out;
  for (char c : text) out += c == '<' ? "&lt;" : c == '>' ? "&gt;" : c == '&' ? "&amp;" : std::string(1, c);
  return out;
}

// Maps data to pixels along one axis (log10 when asked) and lists tick values.
struct Axis {
  double lo, hi;
  bool log;
  double pixel_lo, pixel_hi;
  double map(double v) const {
    const double a = log ? std::log10(v) : v;
    return pixel_lo + (a - lo) / (hi - lo) * (pixel_hi - pixel_lo);
  }
  std::vector<double> ticks() const {
    std::vector<double> t;
    if (log) {
      const double every = std::max(1.0, std::ceil((hi - lo) / 8));  // at most about 8 decades labelled
      for (double e = std::floor(lo); e <= hi + 1e-9; e += every)
        if (e >= lo - 1e-9) t.push_back(std::pow(10.0, e));
      return t;
    }
    const double raw = (hi - lo) / 6, power = std::pow(10.0, std::floor(std::log10(raw)));
    double step = 10 * power;
    for (double m : {1.0, 2.0, 5.0})
      if (raw <= m * power) {
        step = m * power;
        break;
      }
    for (double v = std::ceil(lo / step) * step; v <= hi + 1e-9 * step; v += step) t.push_back(v);
    return t;
  }
};

bool usable(double v, bool log) { return std::isfinite(v) && (!log || v > 0); }

Axis make_axis(const std::vector<ChartSeries>& series, bool x, bool log, double fixed_lo, double fixed_hi,
               double pixel_lo, double pixel_hi) {
  double lo = INFINITY, hi = -INFINITY;
  for (const ChartSeries& s : series)
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      const double v = x ? s.x[i] : s.y[i];
      if (usable(s.x[i], x && log) && usable(s.y[i], !x && log))
        lo = std::min(lo, log ? std::log10(v) : v), hi = std::max(hi, log ? std::log10(v) : v);
    }
  if (std::isfinite(fixed_lo)) lo = log ? std::log10(fixed_lo) : fixed_lo;
  if (std::isfinite(fixed_hi)) hi = log ? std::log10(fixed_hi) : fixed_hi;
  if (!std::isfinite(lo) || !std::isfinite(hi)) lo = 0, hi = 1;
  if (hi - lo < 1e-12) lo -= 0.5, hi += 0.5;
  if (log) lo = std::floor(lo), hi = std::ceil(hi);
  return {lo, hi, log, pixel_lo, pixel_hi};
}

}  // namespace

void write_line_chart_svg(const std::string& path, const std::vector<ChartSeries>& series,
                          const ChartOptions& o) {
  const double plot_w = width - left - right, plot_h = height - top - bottom;
  const Axis ax = make_axis(series, true, o.log_x, NAN, NAN, left, left + plot_w);
  const Axis ay = make_axis(series, false, o.log_y, o.y_min, o.y_max, top + plot_h, top);
  std::string svg =
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"800\" height=\"480\" font-family=\"sans-serif\" "
      "font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  svg += "<text x=\"" + num(left + plot_w / 2) + "\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">" +
         escape(o.title) + "</text>\n";
  for (double t : ax.ticks())
    svg += "<line x1=\"" + num(ax.map(t)) + "\" y1=\"" + num(top) + "\" x2=\"" + num(ax.map(t)) + "\" y2=\"" +
           num(top + plot_h) + "\" stroke=\"#ddd\"/><text x=\"" + num(ax.map(t)) + "\" y=\"" +
           num(top + plot_h + 18) + "\" text-anchor=\"middle\">" + label(t) + "</text>\n";
  for (double t : ay.ticks())
    svg += "<line x1=\"" + num(left) + "\" y1=\"" + num(ay.map(t)) + "\" x2=\"" + num(left + plot_w) +
           "\" y2=\"" + num(ay.map(t)) + "\" stroke=\"#ddd\"/><text x=\"" + num(left - 6) + "\" y=\"" +
           num(ay.map(t) + 4) + "\" text-anchor=\"end\">" + label(t) + "</text>\n";
  svg += "<rect x=\"" + num(left) + "\" y=\"" + num(top) + "\" width=\"" + num(plot_w) + "\" height=\"" +
         num(plot_h) + "\" fill=\"none\" stroke=\"black\"/>\n";
  svg += "<text x=\"" + num(left + plot_w / 2) + "\" y=\"" + num(height - 16) + "\" text-anchor=\"middle\">" +
         escape(o.x_label) + "</text>\n";
  svg += "<text transform=\"translate(20 " + num(top + plot_h / 2) +
         ") rotate(-90)\" text-anchor=\"middle\">" + escape(o.y_label) + "</text>\n";
  for (size_t k = 0; k < series.size(); ++k) {
    const ChartSeries& s = series[k];
    const std::string color = colors[k % std::size(colors)];
    const std::string dash = s.dashed ? "\" stroke-dasharray=\"6 4" : "";
    std::string points;
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i)
      if (usable(s.x[i], o.log_x) && usable(s.y[i], o.log_y))
        points += num(ax.map(s.x[i])) + "," +
                  num(ay.map(std::clamp(s.y[i], o.log_y ? std::pow(10.0, ay.lo) : ay.lo,
                                        o.log_y ? std::pow(10.0, ay.hi) : ay.hi))) +
                  " ";
    if (!points.empty()) {
      svg += "<polyline fill=\"none\" stroke-width=\"2\" stroke=\"" + color + dash + "\" points=\"" + points +
             "\"/>\n";
      if (std::count(points.begin(), points.end(), ' ') <= 12)  // few points: mark them
        for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i)
          if (usable(s.x[i], o.log_x) && usable(s.y[i], o.log_y))
            svg += "<circle cx=\"" + num(ax.map(s.x[i])) + "\" cy=\"" + num(ay.map(s.y[i])) +
                   "\" r=\"3\" fill=\"" + color + "\"/>\n";
    }
    const double ly = top + 14 + 20 * double(k), lx = left + plot_w + 12;
    svg += "<line x1=\"" + num(lx) + "\" y1=\"" + num(ly) + "\" x2=\"" + num(lx + 26) + "\" y2=\"" + num(ly) +
           "\" stroke-width=\"2\" stroke=\"" + color + dash + "\"/><text x=\"" + num(lx + 32) + "\" y=\"" +
           num(ly + 4) + "\">" + escape(s.name) + "</text>\n";
  }
  svg += "</svg>\n";
  io::write_file_atomic(path,
                        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(svg.data()), svg.size()));
}

}  // namespace recur
