#pragma once
// The feed-forward pieces around a recurrent network, each a forward/backward pair (llm.c's shape):
// gradients are d-prefixed; weight gradients accumulate (+=), input gradients are overwritten.
// N rows (tokens), V vocabulary, E embedding width, I input, O output.
#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "recur/tensor.hpp"

namespace recur {

// out [N, E] = table [V, E] rows of tokens [N]; throws recur::Error on a token outside [0, V).
void embedding_forward(const Tensor& table, std::span<const int32_t> tokens, Tensor& out);
// dtable [V, E] += dout [N, E] rows scattered to tokens [N] (a repeated token sums its rows, in order).
void embedding_backward(std::span<const int32_t> tokens, const Tensor& dout, Tensor& dtable);

// y [N, O] = x [N, I] w[O, I]^T + b [O] (b may be empty: no bias).
void linear_forward(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y);
// dx [N, I] = dy w (skipped when dx is null); dw [O, I] += dy^T x; db [O] += sum over rows of dy
// (skipped when db is empty).
void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor& dw, Tensor& db);

// Inverted dropout: each value is zeroed with probability p, the others are scaled by 1 / (1 - p), so
// that inference needs no change. mask receives the factors (0 or 1 / (1 - p)); the draws come from rng
// (one 64-bit draw per value) so that a seed gives the same masks again. p = 0 copies nothing: mask empty.
void dropout_forward(Tensor& x, float p, std::mt19937_64& rng, std::vector<float>& mask);
void dropout_backward(const std::vector<float>& mask, Tensor& dx);

// Softmax cross-entropy, mean over the N rows: loss = -1/N sum_n log softmax(logits_n)[targets_n].
// Computed stably (max subtracted). When dlogits is not null it receives dloss/dlogits =
// (softmax - onehot) / N, shape [N, V]. Returns the loss; the sum in double, in row order.
double softmax_cross_entropy(const Tensor& logits, std::span<const int32_t> targets, Tensor* dlogits);

}  // namespace recur
