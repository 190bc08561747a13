#pragma once
// ONNX's recurrent operators (RNN, GRU, LSTM; https://onnx.ai/onnx/operators/) mapped to recur's cells and
// weight layout. Gate orders: ONNX LSTM W/R/B rows i,o,f,c and P i,o,f; ONNX GRU z,r,h; recur LSTM i,f,g,o
// (coupled i,g,o), peephole i,f,o (coupled i,o), GRU r,z,n (docs/cells/*.md). ONNX's B is [Wb, Rb]: recur's
// b_x and b_h. One ONNX node is one layer; its directions are recur's layers[0..D).
#include <cstdint>
#include <string>
#include <vector>

#include "io/onnx_proto.hpp"
#include "recur/rnn.hpp"

namespace recur::onnx {

// The weights of one ONNX RNN/GRU/LSTM node in ONNX's shapes (G: RNN 1, GRU 3, LSTM 4 also when coupled):
//   w [D, G*H, I]   r [D, G*H, H]   b [D, 2*G*H] or empty (zeros)   p [D, 3*H] or empty (LSTM only)
struct OnnxRnnWeights {
  Tensor w;
  Tensor r;
  Tensor b;
  Tensor p;
};

// One LayerParameters per direction in recur's layout for `cell`. A coupled LSTM (ONNX input_forget=1)
// drops the f rows of W, R, B and p_f, which ONNX does not use. A cell with peepholes and an empty p gets
// zero peepholes; p given for a cell without peepholes throws unless it is all zero. Throws recur::Error
// naming the tensor, its shape and the expected one.
std::vector<LayerParameters> to_recur_parameters(const CellSpec& cell, const OnnxRnnWeights& weights);

// What a node's op type and attributes say, as recur's configuration (num_layers 1).
struct OnnxRnnNodeConfig {
  RnnConfig config;
  bool batch_first = false;  // ONNX layout = 1: X [B, T, I], Y [B, T, D, H], Y_h/Y_c/initial_* [B, D, H]
};

// Reads op_type (RNN, GRU, LSTM), hidden_size, direction (forward or bidirectional), layout,
// linear_before_reset, input_forget and activations (only recur's: RNN Tanh or Relu, LSTM Sigmoid/Tanh/Tanh,
// GRU Sigmoid/Tanh). input_size comes from W's shape [D, G*H, I]; peephole says whether the node has P.
// Throws recur::Error naming the node and the attribute for what recur does not run (direction reverse,
// clip, activation_alpha/beta, other activations).
OnnxRnnNodeConfig rnn_node_config(const OnnxNode& node, const Shape& w_shape, bool peephole);

}  // namespace recur::onnx
