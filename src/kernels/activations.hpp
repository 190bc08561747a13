#pragma once
// Scalar activations and their derivatives written in terms of the activation's output, which is
// what the training workspace keeps: sigmoid' = s (1 - s), tanh' = 1 - t^2, relu' = [y > 0].
#include <cmath>

namespace recur::kernels {

inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }
inline float sigmoid_grad_from_output(float s) { return s * (1.0f - s); }
inline float tanh_grad_from_output(float t) { return 1.0f - t * t; }
inline float relu(float x) { return x > 0.0f ? x : 0.0f; }
inline float relu_grad_from_output(float y) { return y > 0.0f ? 1.0f : 0.0f; }

}  // namespace recur::kernels
