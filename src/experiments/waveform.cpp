// The clockwork RNN paper's sequence-generation task and the speed measurement (recur/waveform.hpp).
#include "recur/waveform.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <numbers>
#include <random>

#include "recur/clockwork.hpp"
#include "recur/error.hpp"
#include "recur/layers.hpp"
#include "recur/rnn.hpp"
#include "recur/stack_spec.hpp"

namespace recur {
namespace {

// SplitMix64: a fixed generator, so that the targets are the same with any standard library.
struct SplitMix {
  uint64_t state;
  double uniform() {  // [0, 1)
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return double((z ^ (z >> 31)) >> 11) * 0x1.0p-53;
  }
};

std::vector<int64_t> doubling_periods(int64_t modules) {
  std::vector<int64_t> periods;
  for (int64_t i = 0; i < modules; ++i) periods.push_back(int64_t(1) << i);
  return periods;
}

// The recurrent part of a net: a core stack (recur::Rnn) or a clockwork RNN.
std::unique_ptr<RecurrentStack> make_stack(const WaveformRunConfig& c) {
  switch (c.net) {
    case WaveformNet::rnn:
      return make_recurrent_stack(StackSpec(CellSpec::rnn_tanh()), 1, {c.hidden_size}, c.seed);
    case WaveformNet::lstm:
      return make_recurrent_stack(StackSpec(CellSpec::lstm()), 1, {c.hidden_size}, c.seed);
    case WaveformNet::clockwork:
      break;
  }
  ClockworkConfig cw;
  cw.input_size = 1;
  cw.hidden_size = c.hidden_size;
  cw.num_modules = c.modules;
  return std::make_unique<ClockworkRnn>(cw, c.seed);
}

double variance(const std::vector<float>& v) {
  double mean = 0, sum = 0;
  for (float x : v) mean += x;
  mean /= double(v.size());
  for (float x : v) sum += (x - mean) * (x - mean);
  return sum / double(v.size());
}

// The net and its output layer o = W h + b ([1, H], [1]).
class WaveformModel {
 public:
  explicit WaveformModel(const WaveformRunConfig& c) : stack_(make_stack(c)), rng_(c.seed) {
    const int64_t H = c.hidden_size;
    w_out_ = Tensor({1, H});
    b_out_ = Tensor({1});
    dw_out_ = Tensor({1, H});
    db_out_ = Tensor({1});
    std::uniform_real_distribution<float> uniform(-1.0f / std::sqrt(float(H)), 1.0f / std::sqrt(float(H)));
    for (float& v : w_out_.values()) v = uniform(rng_);
    parameters_ = stack_->parameters();
    parameters_.push_back({"out.weight", &w_out_, &dw_out_});
    parameters_.push_back({"out.bias", &b_out_, &db_out_});
  }

  const std::vector<Parameter>& parameters() const { return parameters_; }
  int64_t parameter_count() const {
    if (const auto* cw = dynamic_cast<const ClockworkRnn*>(stack_.get()))
      return cw->parameter_count() + w_out_.size() + 1;
    int64_t count = 0;
    for (const Parameter& p : parameters_) count += p.value->size();
    return count;
  }

  // The outputs [T] for zero inputs; with `target`, also the MSE's gradient, back through the net.
  std::vector<float> run(int64_t T, const std::vector<float>* target, double* mse) {
    const Tensor x({T, 1, 1});
    std::vector<Tensor> state = stack_->zero_state(1);
    Tensor h = target ? stack_->forward_train(x, state, {}, 0.0f, rng_) : stack_->forward(x, state, {});
    h.reshape({T, h.dim(2)});
    Tensor out;
    linear_forward(h, w_out_, b_out_, out);
    std::vector<float> o(out.values().begin(), out.values().end());
    if (target == nullptr) return o;
    Tensor dout({T, 1});
    double sum = 0;
    for (int64_t t = 0; t < T; ++t) {
      const double e = double(o[size_t(t)]) - (*target)[size_t(t)];
      sum += e * e;
      dout[t] = float(2 * e / double(T));
    }
    *mse = sum / double(T);
    Tensor dh;
    linear_backward(h, w_out_, dout, &dh, dw_out_, db_out_);
    dh.reshape({T, 1, dh.dim(1)});
    stack_->backward(dh);
    return o;
  }

  void zero_grad() {
    for (const Parameter& p : parameters_) p.grad->fill(0.0f);
  }

 private:
  std::unique_ptr<RecurrentStack> stack_;
  std::mt19937_64 rng_;
  Tensor w_out_, b_out_, dw_out_, db_out_;
  std::vector<Parameter> parameters_;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double milliseconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

std::vector<float> make_waveform(int index, int64_t length) {
  if (index < 0) throw Error("waveform target index must be >= 0, got " + std::to_string(index));
  if (length < 2) throw Error("waveform length must be at least 2, got " + std::to_string(length));
  constexpr double notes[] = {220.0, 261.63, 329.63, 392.0, 493.88};
  const double f0 = notes[index % 5], rate = 44100.0;
  SplitMix draw{0x5EEDull + uint64_t(index)};
  double weight[5], phase[5];
  for (int n = 0; n < 5; ++n)
    weight[n] = 0.5 + 0.5 * draw.uniform(), phase[n] = 2 * std::numbers::pi * draw.uniform();
  std::vector<double> v(static_cast<size_t>(length));
  double peak = 0;
  for (int64_t t = 0; t < length; ++t) {
    double sum = 0;
    for (int n = 1; n <= 5; ++n)
      sum += weight[n - 1] / n * std::exp(-double(t) * n / 600.0) *
             std::sin(2 * std::numbers::pi * n * f0 * double(t) / rate + phase[n - 1]);
    v[size_t(t)] = (1 - std::exp(-double(t) / 25.0)) * sum;
    peak = std::max(peak, std::abs(v[size_t(t)]));
  }
  std::vector<float> out;
  for (double x : v) out.push_back(float(x / peak));
  return out;
}

std::string waveform_net_name(WaveformNet net) {
  switch (net) {
    case WaveformNet::rnn:
      return "rnn";
    case WaveformNet::lstm:
      return "lstm";
    case WaveformNet::clockwork:
      return "clockwork";
  }
  return "?";
}

WaveformNet parse_waveform_net(const std::string& name) {
  for (WaveformNet net : {WaveformNet::rnn, WaveformNet::lstm, WaveformNet::clockwork})
    if (waveform_net_name(net) == name) return net;
  throw Error("waveform net '" + name + "': expected rnn, lstm or clockwork");
}

int64_t waveform_parameter_count(WaveformNet net, int64_t hidden, int64_t modules) {
  const int64_t H = hidden;
  switch (net) {
    case WaveformNet::rnn:
      return H * H + 4 * H + 1;
    case WaveformNet::lstm:
      return 4 * H * H + 13 * H + 1;
    case WaveformNet::clockwork:
      break;
  }
  const int64_t k = hidden / modules;
  return k * k * modules * (modules + 1) / 2 + 4 * H + 1;
}

WaveformNetSize waveform_net_size(WaveformNet net, int64_t parameters, int64_t modules) {
  if (parameters < 1)
    throw Error("waveform size: parameter count must be positive, got " + std::to_string(parameters));
  if (modules < 1) throw Error("waveform size: modules must be positive, got " + std::to_string(modules));
  const int64_t step = net == WaveformNet::clockwork ? modules : 1;
  WaveformNetSize best;
  for (int64_t H = step;; H += step) {
    const int64_t count = waveform_parameter_count(net, H, modules);
    if (best.hidden == 0 || std::abs(count - parameters) < std::abs(best.parameters - parameters))
      best = {H, net == WaveformNet::clockwork ? H / modules : 0, count};
    if (count >= parameters) break;
  }
  return best;
}

void WaveformRunConfig::validate() const {
  const auto fail = [](const std::string& m) { throw Error("waveform run: " + m); };
  if (hidden_size < 1) fail("hidden_size must be positive, got " + std::to_string(hidden_size));
  if (net == WaveformNet::clockwork && (modules < 1 || hidden_size % modules != 0))
    fail("clockwork hidden_size " + std::to_string(hidden_size) + " must be a positive multiple of modules " +
         std::to_string(modules));
  if (iterations < 0) fail("iterations must be >= 0, got " + std::to_string(iterations));
  if (length < 2) fail("length must be at least 2, got " + std::to_string(length));
  if (!(learning_rate > 0)) fail("learning rate must be positive, got " + std::to_string(learning_rate));
  optimizer.validate();
}

WaveformRunResult run_waveform(const WaveformRunConfig& c,
                               const std::function<void(const std::string&)>& progress) {
  c.validate();
  const auto start = std::chrono::steady_clock::now();
  WaveformRunResult result;
  result.target = make_waveform(c.target, c.length);
  const double var = variance(result.target);
  WaveformModel model(c);
  result.parameters = model.parameter_count();
  Optimizer optimizer(c.optimizer);
  const int64_t every = std::max<int64_t>(1, c.iterations / std::max<int64_t>(1, c.curve_points));
  for (int64_t i = 0; i < c.iterations; ++i) {
    model.zero_grad();
    double mse = 0;
    model.run(c.length, &result.target, &mse);
    if (i % every == 0 || i + 1 == c.iterations) {
      result.curve_iterations.push_back(i);
      result.curve_nmse.push_back(mse / var);
      if (progress && i % (every * 10) == 0)
        progress(waveform_net_name(c.net) + " H=" + std::to_string(c.hidden_size) + " iteration " +
                 std::to_string(i) + ": NMSE " + std::to_string(mse / var));
    }
    if (!std::isfinite(mse)) break;
    if (c.clip_norm > 0) clip_gradient_norm(model.parameters(), c.clip_norm);
    optimizer.step(model.parameters(), c.learning_rate);
  }
  result.output = model.run(c.length, nullptr, nullptr);
  double sum = 0;
  for (int64_t t = 0; t < c.length; ++t) {
    const double e = double(result.output[size_t(t)]) - result.target[size_t(t)];
    sum += e * e;
  }
  result.nmse = sum / double(c.length) / var;
  result.seconds = milliseconds_since(start) / 1000;
  return result;
}

std::vector<ClockworkSpeedRow> measure_clockwork_speed(const ClockworkSpeedConfig& c) {
  if (c.repeats < 1)
    throw Error("clockwork speed: repeats must be positive, got " + std::to_string(c.repeats));
  ClockworkConfig cw_config;
  cw_config.input_size = c.input_size;
  cw_config.hidden_size = c.hidden_size;
  cw_config.periods = doubling_periods(c.modules);
  ClockworkRnn clockwork(cw_config, 1);  // validates the sizes
  RnnConfig dense_config;
  dense_config.cell = CellSpec::rnn_tanh();
  dense_config.input_size = c.input_size;
  dense_config.hidden_size = c.hidden_size;
  const Rnn dense(dense_config, 1);
  RnnGradients dense_grads;
  dense_grads.parameters = RnnParameters::zeros(dense_config);
  Tape tape;
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<ClockworkSpeedRow> rows;
  for (int64_t B : c.batches) {
    if (B < 1) throw Error("clockwork speed: batch must be positive, got " + std::to_string(B));
    Tensor x({c.steps, B, c.input_size}), dy({c.steps, B, c.hidden_size});
    for (float& v : x.values()) v = uniform(rng);
    for (float& v : dy.values()) v = uniform(rng);
    std::vector<double> cw_total, cw_forward, dense_total, dense_forward;
    for (int r = 0; r <= c.repeats; ++r) {  // run 0 warms up
      auto t0 = std::chrono::steady_clock::now();
      std::vector<Tensor> state = clockwork.zero_state(B);
      clockwork.forward_train(x, state, {}, 0.0f, rng);
      const double forward_ms = milliseconds_since(t0);
      clockwork.backward(dy);
      if (r > 0) cw_forward.push_back(forward_ms), cw_total.push_back(milliseconds_since(t0));
      t0 = std::chrono::steady_clock::now();
      dense.forward(x, {}, tape);
      const double dense_forward_ms = milliseconds_since(t0);
      dense.backward(tape, dy, RnnState{}, dense_grads);
      if (r > 0) dense_forward.push_back(dense_forward_ms), dense_total.push_back(milliseconds_since(t0));
    }
    rows.push_back({B, median(cw_total), median(dense_total), median(cw_forward), median(dense_forward)});
  }
  return rows;
}

}  // namespace recur
