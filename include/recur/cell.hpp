#pragma once
// Which recurrent cell a layer uses. Variants are options of one family, not separate cells:
//   rnn   h = act(W_x x + b_x + W_h h + b_h), act = tanh or relu              gates: 1
//   lstm  gates i, f, g, o (recur's order; PyTorch's too); options:
//           peephole: i, f look at c(t-1), o at c(t) (Gers & Schmidhuber 2000; ONNX's P)
//           coupled_gates: f = 1 - i, so the f rows are absent                gates: 4, or 3 (i, g, o)
//   gru   gates r, z, n (PyTorch's order); h = (1 - z) * n + z * h(t-1)        gates: 3
//           reset after:  n = tanh(W_xn x + b_xn + r * (W_hn h + b_hn))  (PyTorch, cuDNN, ONNX lbr=1)
//           reset before: n = tanh(W_xn x + b_xn + W_hn (r * h) + b_hn)  (Cho et al. 2014, ONNX lbr=0)
// docs/cells/*.md give the forward and backward equations of each.
#include <string>

namespace recur {

enum class CellFamily { rnn, lstm, gru };
enum class Activation { tanh, relu };
enum class GruReset { before, after };

struct CellSpec {
  CellFamily family = CellFamily::lstm;
  Activation activation = Activation::tanh;  // rnn only
  bool peephole = false;                     // lstm only
  bool coupled_gates = false;                // lstm only: f = 1 - i
  GruReset gru_reset = GruReset::after;      // gru only

  static CellSpec rnn_tanh() { return {CellFamily::rnn, Activation::tanh}; }
  static CellSpec rnn_relu() { return {CellFamily::rnn, Activation::relu}; }
  static CellSpec lstm() { return {CellFamily::lstm}; }
  static CellSpec peephole_lstm() { return {CellFamily::lstm, Activation::tanh, true}; }
  static CellSpec coupled_lstm() { return {CellFamily::lstm, Activation::tanh, false, true}; }
  static CellSpec gru(GruReset reset = GruReset::after) {
    return {CellFamily::gru, Activation::tanh, false, false, reset};
  }

  // Gate rows per hidden unit in W_x, W_h, b_x, b_h: rnn 1, lstm 4 (3 coupled), gru 3.
  int gate_count() const;
  // Peephole vectors of length H: 3 (i, f, o), 2 (i, o) when coupled, 0 without peepholes.
  int peephole_count() const;
  // True for cells with a cell state c beside h (the lstm family).
  bool has_cell_state() const { return family == CellFamily::lstm; }

  // Canonical name: rnn_tanh, rnn_relu, lstm, peephole, cifg, peephole_cifg, gru, gru_reset_before.
  std::string name() const;
  // Inverse of name(); also accepts "rnn" (= rnn_tanh). Throws recur::Error naming the accepted names.
  static CellSpec parse(const std::string& name);

  bool operator==(const CellSpec&) const = default;
};

}  // namespace recur
