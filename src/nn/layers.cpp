// Embedding, linear, dropout and softmax cross-entropy (recur/layers.hpp).
#include "recur/layers.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "kernels/gemm.hpp"
#include "recur/error.hpp"

namespace recur {
namespace {

void check_rank2(const Tensor& t, const char* what) {
  if (t.rank() != 2)
    throw Error(std::string(what) + ": expected a matrix, got shape " + shape_to_string(t.shape()));
}

void check_token(int32_t token, int64_t vocabulary, size_t position) {
  if (token < 0 || token >= vocabulary)
    throw Error("embedding: token " + std::to_string(token) + " at position " + std::to_string(position) +
                " is outside the vocabulary [0, " + std::to_string(vocabulary) + ")");
}

}  // namespace

void embedding_forward(const Tensor& table, std::span<const int32_t> tokens, Tensor& out) {
  check_rank2(table, "embedding table");
  const int64_t V = table.dim(0), E = table.dim(1), N = int64_t(tokens.size());
  if (out.shape() != Shape{N, E}) out = Tensor({N, E});
  for (size_t n = 0; n < tokens.size(); ++n) {
    check_token(tokens[n], V, n);
    std::copy_n(table.data() + tokens[n] * E, E, out.data() + int64_t(n) * E);
  }
}

void embedding_backward(std::span<const int32_t> tokens, const Tensor& dout, Tensor& dtable) {
  check_rank2(dtable, "embedding gradient");
  const int64_t V = dtable.dim(0), E = dtable.dim(1), N = int64_t(tokens.size());
  dout.check_shape("embedding dout", {N, E});
  for (size_t n = 0; n < tokens.size(); ++n) {
    check_token(tokens[n], V, n);
    float* row = dtable.data() + tokens[n] * E;
    const float* d = dout.data() + int64_t(n) * E;
    for (int64_t e = 0; e < E; ++e) row[e] += d[e];
  }
}

void linear_forward(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y) {
  check_rank2(x, "linear x");
  check_rank2(w, "linear weight");
  const int64_t N = x.dim(0), I = x.dim(1), O = w.dim(0);
  w.check_shape("linear weight [O, I]", {O, I});
  if (!b.empty()) b.check_shape("linear bias [O]", {O});
  if (y.shape() != Shape{N, O}) y = Tensor({N, O});
  if (!b.empty())
    for (int64_t n = 0; n < N; ++n) std::copy_n(b.data(), O, y.data() + n * O);
  kernels::gemm_nt(N, O, I, x.data(), I, w.data(), I, b.empty() ? 0.0f : 1.0f, y.data(), O);
}

void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor& dw, Tensor& db) {
  const int64_t N = x.dim(0), I = x.dim(1), O = w.dim(0);
  dy.check_shape("linear dy [N, O]", {N, O});
  dw.check_shape("linear dw [O, I]", {O, I});
  kernels::gemm_tn(O, I, N, dy.data(), O, x.data(), I, 1.0f, dw.data(), I);
  if (!db.empty()) {
    db.check_shape("linear db [O]", {O});
    for (int64_t n = 0; n < N; ++n) {
      const float* row = dy.data() + n * O;
      for (int64_t o = 0; o < O; ++o) db[o] += row[o];
    }
  }
  if (dx != nullptr) {
    if (dx->shape() != Shape{N, I}) *dx = Tensor({N, I});
    kernels::gemm_nn(N, I, O, dy.data(), O, w.data(), I, 0.0f, dx->data(), I);
  }
}

void dropout_forward(Tensor& x, float p, std::mt19937_64& rng, std::vector<float>& mask) {
  if (!(p >= 0.0f && p < 1.0f)) throw Error("dropout: probability " + std::to_string(p) + " outside [0, 1)");
  if (p == 0.0f) {
    mask.clear();
    return;
  }
  const float keep = 1.0f / (1.0f - p);
  mask.resize(size_t(x.size()));
  for (int64_t i = 0; i < x.size(); ++i) {
    const float u = float(rng() >> 40) * 0x1p-24f;  // 24 random bits: uniform in [0, 1), exactly
    mask[size_t(i)] = u < p ? 0.0f : keep;
    x[i] *= mask[size_t(i)];
  }
}

void dropout_backward(const std::vector<float>& mask, Tensor& dx) {
  if (mask.empty()) return;
  if (int64_t(mask.size()) != dx.size())
    throw Error("dropout backward: mask of " + std::to_string(mask.size()) + " values for a gradient of " +
                std::to_string(dx.size()));
  for (int64_t i = 0; i < dx.size(); ++i) dx[i] *= mask[size_t(i)];
}

double softmax_cross_entropy(const Tensor& logits, std::span<const int32_t> targets, Tensor* dlogits) {
  check_rank2(logits, "cross-entropy logits");
  const int64_t N = logits.dim(0), V = logits.dim(1);
  if (int64_t(targets.size()) != N)
    throw Error("cross-entropy: " + std::to_string(targets.size()) + " targets for " + std::to_string(N) +
                " rows");
  if (N == 0) throw Error("cross-entropy: no rows");
  if (dlogits != nullptr && dlogits->shape() != logits.shape()) *dlogits = Tensor(logits.shape());
  double total = 0;
  const float scale = 1.0f / float(N);
  for (int64_t n = 0; n < N; ++n) {
    const int32_t target = targets[size_t(n)];
    if (target < 0 || target >= V)
      throw Error("cross-entropy: target " + std::to_string(target) + " at row " + std::to_string(n) +
                  " is outside [0, " + std::to_string(V) + ")");
    const float* row = logits.data() + n * V;
    const float max = *std::max_element(row, row + V);
    float* d = dlogits != nullptr ? dlogits->data() + n * V : nullptr;
    double sum = 0;
    for (int64_t v = 0; v < V; ++v) {
      const float e = std::exp(row[v] - max);
      sum += e;
      if (d != nullptr) d[v] = e;
    }
    total += std::log(sum) - double(row[target] - max);
    if (d != nullptr) {
      const float factor = float(1.0 / sum) * scale;  // softmax / N
      for (int64_t v = 0; v < V; ++v) d[v] *= factor;
      d[target] -= scale;
    }
  }
  return total / double(N);
}

}  // namespace recur
