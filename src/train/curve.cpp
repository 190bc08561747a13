// The learning curve as an SVG picture, written directly (no plotting dependency).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "io/file_util.hpp"
#include "recur/error.hpp"
#include "recur/training.hpp"

namespace recur {
namespace {

constexpr double width = 800, height = 480, left = 70, right = 20, top = 40, bottom = 60;

std::string format(const char* pattern, double v) {
  char text[64];
  std::snprintf(text, sizeof text, pattern, v);
  return text;
}

std::string escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else if (c == '&')
      out += "&amp;";
    else
      out += c;
  }
  return out;
}

// A "nice" tick step (1, 2 or 5 times a power of ten) giving about `count` ticks over `span`.
double tick_step(double span, int count) {
  const double raw = span / count, power = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0})
    if (raw <= m * power) return m * power;
  return 10 * power;
}

}  // namespace

void write_loss_curve_svg(const std::string& path, const std::vector<HistoryPoint>& history,
                          const std::string& title) {
  double x_max = 1, y_min = INFINITY, y_max = -INFINITY;
  for (const HistoryPoint& p : history) {
    x_max = std::max(x_max, double(p.tokens));
    for (double y : {p.loss, p.valid_loss})
      if (std::isfinite(y)) y_min = std::min(y_min, y), y_max = std::max(y_max, y);
  }
  if (!std::isfinite(y_min)) y_min = 0, y_max = 1;
  if (y_max - y_min < 1e-6) y_max = y_min + 1;
  const double pad = 0.05 * (y_max - y_min);
  y_min = std::max(0.0, y_min - pad), y_max += pad;
  const double plot_w = width - left - right, plot_h = height - top - bottom;
  const auto px = [&](double x) { return left + x / x_max * plot_w; };
  const auto py = [&](double y) { return top + (1 - (y - y_min) / (y_max - y_min)) * plot_h; };

  std::string svg =
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"800\" height=\"480\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  svg += "<text x=\"400\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">" + escape(title) + "</text>\n";
  const double xs = tick_step(x_max, 6), ys = tick_step(y_max - y_min, 6);
  for (double x = 0; x <= x_max * 1.0001; x += xs)
    svg += "<line x1=\"" + format("%.1f", px(x)) + "\" y1=\"" + format("%.1f", top) + "\" x2=\"" +
           format("%.1f", px(x)) + "\" y2=\"" + format("%.1f", top + plot_h) +
           "\" stroke=\"#ddd\"/><text x=\"" + format("%.1f", px(x)) + "\" y=\"" +
           format("%.1f", top + plot_h + 18) + "\" text-anchor=\"middle\">" + format("%.3g", x) + "</text>\n";
  for (double y = std::ceil(y_min / ys) * ys; y <= y_max; y += ys)
    svg += "<line x1=\"" + format("%.1f", left) + "\" y1=\"" + format("%.1f", py(y)) + "\" x2=\"" +
           format("%.1f", left + plot_w) + "\" y2=\"" + format("%.1f", py(y)) +
           "\" stroke=\"#ddd\"/><text x=\"" + format("%.1f", left - 6) + "\" y=\"" +
           format("%.1f", py(y) + 4) + "\" text-anchor=\"end\">" + format("%.3g", y) + "</text>\n";
  svg += "<rect x=\"" + format("%.1f", left) + "\" y=\"" + format("%.1f", top) + "\" width=\"" +
         format("%.1f", plot_w) + "\" height=\"" + format("%.1f", plot_h) +
         "\" fill=\"none\" stroke=\"black\"/>\n";
  svg +=
      "<text x=\"400\" y=\"" + format("%.1f", height - 16) + "\" text-anchor=\"middle\">tokens seen</text>\n";
  svg += "<text transform=\"translate(18 " + format("%.1f", top + plot_h / 2) +
         ") rotate(-90)\" text-anchor=\"middle\">loss (nats per token)</text>\n";
  const char* colors[] = {"#1f77b4", "#d62728"};
  const char* names[] = {"training", "validation"};
  for (int series = 0; series < 2; ++series) {
    std::string points;
    for (const HistoryPoint& p : history) {
      const double y = series == 0 ? p.loss : p.valid_loss;
      if (std::isfinite(y)) points += format("%.1f,", px(double(p.tokens))) + format("%.1f ", py(y));
    }
    if (!points.empty())
      svg += std::string("<polyline fill=\"none\" stroke-width=\"") + (series == 0 ? "1.2" : "2") +
             "\" stroke=\"" + colors[series] + "\" points=\"" + points + "\"/>\n";
    const double ly = top + 16 + 18 * series;
    svg += std::string("<line x1=\"") + format("%.1f", left + plot_w - 130) + "\" y1=\"" +
           format("%.1f", ly) + "\" x2=\"" + format("%.1f", left + plot_w - 105) + "\" y2=\"" +
           format("%.1f", ly) + "\" stroke=\"" + colors[series] + "\" stroke-width=\"2\"/><text x=\"" +
           format("%.1f", left + plot_w - 98) + "\" y=\"" + format("%.1f", ly + 4) + "\">" + names[series] +
           "</text>\n";
  }
  svg += "</svg>\n";
  io::write_file_atomic(path,
                        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(svg.data()), svg.size()));
}

}  // namespace recur
