#include "check.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "recur/error.hpp"

namespace recur::bench {

namespace {

// Folds tensor a vs b into the entry `name` (several layers share one entry).
void add(Agreement& agreement, const std::string& name, const Tensor& a, const Tensor& b) {
  if (a.empty() && b.empty()) return;
  if (a.shape() != b.shape())
    throw Error("bench check: " + name + " has shape " + shape_to_string(a.shape()) + " in recur but " +
                shape_to_string(b.shape()) + " in the peer");
  double diff = 0, scale = 1;
  for (int64_t k = 0; k < a.size(); ++k) {
    diff = std::max(diff, double(std::fabs(a[k] - b[k])));
    scale = std::max(scale, double(std::fabs(b[k])));
  }
  if (std::isnan(diff)) diff = INFINITY;
  auto it = std::find_if(agreement.tensors.begin(), agreement.tensors.end(),
                         [&](const TensorAgreement& t) { return t.name == name; });
  if (it == agreement.tensors.end()) it = agreement.tensors.insert(agreement.tensors.end(), {name, 0.0, 0.0});
  it->max_abs_diff = std::max(it->max_abs_diff, diff);
  it->relative = std::max(it->relative, diff / scale);
}

}  // namespace

Agreement compare(const Computed& recur, const Computed& peer, double tolerance) {
  Agreement agreement;
  add(agreement, "y", recur.output.y, peer.output.y);
  add(agreement, "h_n", recur.output.final_state.h, peer.output.final_state.h);
  add(agreement, "c_n", recur.output.final_state.c, peer.output.final_state.c);
  if (recur.has_gradients && peer.has_gradients) {
    add(agreement, "dx", recur.gradients.dx, peer.gradients.dx);
    add(agreement, "dh0", recur.gradients.initial_state.h, peer.gradients.initial_state.h);
    add(agreement, "dc0", recur.gradients.initial_state.c, peer.gradients.initial_state.c);
    const auto& a = recur.gradients.parameters.layers;
    const auto& b = peer.gradients.parameters.layers;
    for (size_t l = 0; l < std::min(a.size(), b.size()); ++l) {
      add(agreement, "dW_x", a[l].w_x, b[l].w_x);
      add(agreement, "dW_h", a[l].w_h, b[l].w_h);
      add(agreement, "db_x", a[l].b_x, b[l].b_x);
      add(agreement, "db_h", a[l].b_h, b[l].b_h);
    }
  }
  for (const TensorAgreement& t : agreement.tensors)
    agreement.worst_relative = std::max(agreement.worst_relative, t.relative);
  agreement.ok = agreement.worst_relative <= tolerance;
  return agreement;
}

std::string describe(const Agreement& agreement) {
  std::string out;
  for (const TensorAgreement& t : agreement.tensors) {
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%s %.1e", t.name.c_str(), t.max_abs_diff);
    out += (out.empty() ? "" : ", ") + std::string(buffer);
  }
  return out;
}

}  // namespace recur::bench
