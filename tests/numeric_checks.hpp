#pragma once
// Comparisons the tests share: a scaled error between two value lists, and a central difference.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

// max |actual - expected| / (1 + max |expected|): absolute for small values, relative for large ones.
inline double scaled_error(const std::vector<double>& actual, const std::vector<double>& expected) {
  if (actual.size() != expected.size()) return std::numeric_limits<double>::infinity();
  double diff = 0, scale = 0;
  for (size_t j = 0; j < actual.size(); ++j) {
    diff = std::max(diff, std::abs(actual[j] - expected[j]));
    scale = std::max(scale, std::abs(expected[j]));
  }
  return diff / (1 + scale);
}

// (loss(v + eps) - loss(v - eps)) / (2 eps), with `value` restored afterwards.
template <class Value, class Loss>
double central_difference(Value& value, double eps, Loss&& loss) {
  const Value saved = value;
  value = Value(saved + eps);
  const double plus = loss();
  value = Value(saved - eps);
  const double minus = loss();
  value = saved;
  return (plus - minus) / (2 * eps);
}
