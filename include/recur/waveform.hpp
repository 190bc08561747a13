#pragma once
// The sequence-generation task of the clockwork RNN paper (Koutnik et al. 2014, section 4.1), on a
// synthetic waveform, and a speed measurement of the clockwork RNN against a dense tanh RNN
// (`recur experiment waveform`; docs/cells/clockwork.md has the protocol and results).
//
// Task: a network with no input (input size 1, fed zeros at every step) and one linear output must
// produce the 320-sample target; it is trained on that one sequence (full-batch, one update per pass) and
// scored by the normalised mean squared error NMSE = mean_t (o_t - v_t)^2 / var(v).
// Nets (every parameter counted, the output layer's H + 1 included; the clockwork's structural zeros not):
//   rnn        recur::Rnn, tanh                        H^2 + 4H + 1
//   lstm       recur::Rnn, LSTM                        4H^2 + 13H + 1
//   clockwork  recur::ClockworkRnn, g modules of k     k^2 g(g+1)/2 + 4gk + 1
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "recur/optimizer.hpp"

namespace recur {

// Target number `index` (0, 1, ...): `length` samples of a synthetic note at 44.1 kHz (the paper sampled
// 7 ms of music at 44.1 kHz: 320 samples), scaled so that max |v| = 1:
//   v(t) = (1 - exp(-t / 25)) sum_{n=1..5} a_n exp(-t / tau_n) sin(2 pi n f0 t / 44100 + phi_n)
// f0 cycles through A3, C4, E4, G4, B4 (220 .. 494 Hz: fundamental periods of 89 .. 200 samples);
// a_n = w_n / n, tau_n = 600 / n samples, with w_n in [0.5, 1] and phi_n drawn from a generator seeded
// by `index` (a fixed draw, independent of the standard library).
std::vector<float> make_waveform(int index, int64_t length = 320);

enum class WaveformNet { rnn, lstm, clockwork };
std::string waveform_net_name(WaveformNet net);
// "rnn", "lstm", "clockwork"; throws recur::Error naming them.
WaveformNet parse_waveform_net(const std::string& name);

// The size of one net: H (rnn, lstm) or the module size k (clockwork, H = k g).
struct WaveformNetSize {
  int64_t hidden = 0;       // H
  int64_t module_size = 0;  // clockwork k; 0 otherwise
  int64_t parameters = 0;
};
// The size whose parameter count is nearest `parameters` (ties: the smaller), for clockwork with
// `modules` modules (periods 2^0 .. 2^(modules-1)).
WaveformNetSize waveform_net_size(WaveformNet net, int64_t parameters, int64_t modules);
int64_t waveform_parameter_count(WaveformNet net, int64_t hidden, int64_t modules);

struct WaveformRunConfig {
  WaveformNet net = WaveformNet::clockwork;
  int64_t hidden_size = 9;  // H; clockwork: a multiple of `modules`
  int64_t modules = 9;      // clockwork: periods 2^0 .. 2^(modules-1)
  int target = 0;           // make_waveform(target, length)
  int64_t length = 320;
  uint64_t seed = 0;
  int64_t iterations = 2000;  // updates, each from one pass over the whole sequence
  OptimizerConfig optimizer;  // adam by default
  float learning_rate = 3e-3f;
  double clip_norm = 1.0;  // global gradient-norm clipping; 0: none
  int64_t curve_points = 50;
  void validate() const;
};

struct WaveformRunResult {
  double nmse = 0;  // of the trained net, from a fresh forward pass
  int64_t parameters = 0;
  std::vector<float> target, output;  // [length]
  std::vector<int64_t> curve_iterations;
  std::vector<double> curve_nmse;  // training NMSE before the update of each curve iteration
  double seconds = 0;
};

// Trains one net from scratch. `progress` (may be empty) hears a line now and then.
WaveformRunResult run_waveform(const WaveformRunConfig& config,
                               const std::function<void(const std::string&)>& progress = {});

// Forward + backward wall time of a clockwork RNN (H units in `modules` modules, periods 2^0 ..) and of a
// dense tanh recur::Rnn of the same H and input size, on x [T, B, I]; medians over `repeats` after one
// warm-up run each.
struct ClockworkSpeedConfig {
  int64_t hidden_size = 512, modules = 8, input_size = 64, steps = 256;
  std::vector<int64_t> batches{16, 32};
  int repeats = 7;
};
struct ClockworkSpeedRow {
  int64_t batch = 0;
  double clockwork_ms = 0, dense_ms = 0;  // medians, forward + backward
  double clockwork_forward_ms = 0, dense_forward_ms = 0;
  double ratio() const { return dense_ms / clockwork_ms; }  // > 1: the clockwork RNN is faster
};
std::vector<ClockworkSpeedRow> measure_clockwork_speed(const ClockworkSpeedConfig& config);

}  // namespace recur
