// Temperature, top-k and top-p sampling (recur/sampling.hpp).
#include "recur/sampling.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "recur/error.hpp"

namespace recur {

void SamplingOptions::validate() const {
  if (!(temperature >= 0.0f) || !std::isfinite(temperature))
    throw Error("sampling: temperature must be >= 0, got " + std::to_string(temperature));
  if (top_k < 0) throw Error("sampling: top-k must be >= 0, got " + std::to_string(top_k));
  if (!(top_p > 0.0f && top_p <= 1.0f))
    throw Error("sampling: top-p " + std::to_string(top_p) + " outside (0, 1]");
}

int32_t sample_token(std::span<const float> logits, const SamplingOptions& options, std::mt19937_64& rng) {
  options.validate();
  if (logits.empty()) throw Error("sampling: no logits");
  const size_t V = logits.size();
  std::vector<int32_t> order(V);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return logits[size_t(a)] > logits[size_t(b)]; });
  if (options.temperature == 0.0f) return order[0];

  const double max = logits[size_t(order[0])];
  std::vector<double> p(V);
  double sum = 0;
  for (size_t i = 0; i < V; ++i)
    sum += p[i] = std::exp((double(logits[size_t(order[i])]) - max) / options.temperature);
  size_t keep = options.top_k > 0 ? std::min(V, size_t(options.top_k)) : V;
  if (options.top_p < 1.0f) {
    double mass = 0;
    for (size_t i = 0; i < keep; ++i) {
      mass += p[i] / sum;
      if (mass >= options.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  const double kept = std::accumulate(p.begin(), p.begin() + std::ptrdiff_t(keep), 0.0);
  const double u = double(rng() >> 11) * 0x1p-53 * kept;  // uniform in [0, kept)
  double cumulative = 0;
  for (size_t i = 0; i < keep; ++i) {
    cumulative += p[i];
    if (u < cumulative) return order[i];
  }
  return order[keep - 1];
}

}  // namespace recur
