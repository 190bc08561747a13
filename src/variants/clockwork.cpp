// The clockwork RNN (recur/clockwork.hpp; docs/cells/clockwork.md). One layer's schedule:
//   gates = x W_x^T + b_x                       one GEMM over all T*B rows, before the time loop
//   step t, module i = 0 .. g-1 (increasing), rows that update i at t:
//     gates[:, i] += h[:, i*k:] W_h[i, i*k:]^T  one GEMM over the k rows of block row i and only the column
//                                               blocks j >= i (the zero blocks are never read)
//     h[:, i] = tanh(gates[:, i] + b_h[i])      in place: later modules i' > i read blocks j >= i' only,
//                                               which this step has not changed yet
// backward, steps in reverse, module i = g-1 .. 0 (decreasing), rows that updated i at t:
//     da[:, i] = dh[:, i] (1 - h(t)[:, i]^2);  dh[:, i] = 0;  dh[:, i*k:] += da[:, i] W_h[i, i*k:]
//     (modules that did not update pass dh through unchanged; decreasing order means that the
//     contributions into blocks j >= i land after those blocks' own da was taken)
//   then once over all steps: dW_x += da^T x, dx = da W_x, db += column sums of da (da is 0 where a module
//   kept its h), and per module dW_h[i, i*k:] += da_i^T h(t-1)[:, i*k:] over the packed rows that updated i.
// Rows: the batch sorted by length (driver::SequenceLayout), so the live rows of a step are a prefix. When
// every sequence's clock is in the same phase (the common case: a fresh state, or equal lengths before),
// a module updates on all live rows or none; otherwise its rows are gathered, multiplied, scattered back.
#include "recur/clockwork.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "driver/layer.hpp"
#include "kernels/activations.hpp"
#include "kernels/gemm.hpp"
#include "kernels/post_gemm.hpp"
#include "recur/error.hpp"
#include "recur/layers.hpp"

namespace recur {

// ---- Configuration ----

void ClockworkConfig::validate() const {
  const auto fail = [](const std::string& message) { throw Error("clockwork config: " + message); };
  const auto text = [](int64_t v) { return std::to_string(v); };
  if (input_size <= 0) fail("input_size must be positive, got " + text(input_size));
  if (hidden_size <= 0) fail("hidden_size must be positive, got " + text(hidden_size));
  if (num_layers <= 0) fail("num_layers must be positive, got " + text(num_layers));
  if (num_modules < 0)
    fail("num_modules must be positive (or 0 with periods given), got " + text(num_modules));
  if (periods.empty()) {
    if (num_modules == 0) fail("num_modules must be positive when no periods are given, got 0");
    if (num_modules > 25)
      fail("num_modules " + text(num_modules) + " gives the period 2^" + text(num_modules - 1) +
           ", above the largest clock cycle 2^24 that a float step count holds exactly");
  } else {
    if (num_modules != 0 && num_modules != int64_t(periods.size()))
      fail("num_modules " + text(num_modules) + " does not match the " + text(int64_t(periods.size())) +
           " periods given");
    int64_t cycle = 1;
    for (size_t i = 0; i < periods.size(); ++i) {
      const std::string name = "periods[" + std::to_string(i) + "]";
      if (periods[i] <= 0) fail(name + " must be positive, got " + text(periods[i]));
      if (i > 0 && periods[i] < periods[i - 1])
        fail(
            "periods must be non-decreasing (modules ordered by increasing period, slower modules feeding "
            "faster ones), got " +
            name + " = " + text(periods[i]) + " after " + text(periods[i - 1]));
      const int64_t factor = periods[i] / std::gcd(cycle, periods[i]);
      if (cycle > kClockworkMaxCycle / factor)
        fail("the clock cycle lcm(periods) exceeds 2^24 = " + text(kClockworkMaxCycle) + " at " + name +
             " = " + text(periods[i]) + " (a float step count holds whole numbers exactly up to there)");
      cycle *= factor;
    }
  }
  if (hidden_size % module_count() != 0)
    fail("hidden_size " + text(hidden_size) + " must be divisible by the module count " +
         text(module_count()));
}

std::vector<int64_t> ClockworkConfig::module_periods() const {
  if (!periods.empty()) return periods;
  std::vector<int64_t> out;
  for (int64_t i = 0; i < num_modules; ++i) out.push_back(int64_t(1) << i);
  return out;
}

int64_t ClockworkConfig::module_count() const {
  return periods.empty() ? num_modules : int64_t(periods.size());
}

int64_t ClockworkConfig::cycle() const {
  int64_t cycle = 1;
  for (int64_t period : module_periods()) cycle = std::lcm(cycle, period);
  return cycle;
}

// ---- The two passes of one layer ----

struct ClockworkRnn::Workspace {
  // Temporary buffers of one call, kept so that calls of the same shapes reuse their memory.
  struct Scratch {
    std::vector<float> gates, packed_a, packed_c, da;
    std::vector<std::vector<float>> pack_da, pack_h;  // per module: the rows that updated it, over all steps
    std::vector<int64_t> pack_rows;                   // per module: rows packed so far
    std::vector<int64_t> rows;
  };
  Scratch scratch;
  bool recorded = false;
  driver::SequenceLayout layout;
  std::vector<int64_t> phases;                      // [B] sorted: each sequence's step count at the start
  std::vector<std::vector<float>> inputs, outputs;  // per layer, sorted time-major: [T*B, I_l], [T*B, H]
  std::vector<std::vector<float>> h0;               // per layer [B, H]
  std::vector<std::vector<float>> masks;            // dropout on layer l's output, l < L-1 (empty: none)
};

namespace {

// Which rows of a step update module i: rows r < live with (phase[r] + t) mod T_i == 0.
class Clock {
 public:
  enum class Rows { none, all, some };

  Clock(const std::vector<int64_t>& periods, const std::vector<int64_t>& phases)
      : periods_(periods), phases_(phases) {
    uniform_ = std::all_of(phases.begin(), phases.end(), [&](int64_t p) { return p == phases.front(); });
  }

  // Rows::some fills `list` (ascending); Rows::all means every row of [0, live).
  Rows active(int64_t module, int64_t t, int64_t live, std::vector<int64_t>& list) const {
    const int64_t period = periods_[size_t(module)];
    if (uniform_) return (phases_.front() + t) % period == 0 ? Rows::all : Rows::none;
    list.clear();
    for (int64_t r = 0; r < live; ++r)
      if ((phases_[size_t(r)] + t) % period == 0) list.push_back(r);
    if (list.empty()) return Rows::none;
    return int64_t(list.size()) == live ? Rows::all : Rows::some;
  }

 private:
  const std::vector<int64_t>& periods_;
  const std::vector<int64_t>& phases_;
  bool uniform_ = true;
};

using Scratch = ClockworkRnn::Workspace::Scratch;

struct LayerPass {
  const LayerParameters* w = nullptr;
  LayerParameters* grads = nullptr;  // backward only
  const driver::SequenceLayout* layout = nullptr;
  const Clock* clock = nullptr;
  int64_t input_size = 0, hidden = 0, module = 0;  // I_l, H, k
  const float* x = nullptr;                        // [T*B, I_l]
  float* y = nullptr;                              // [T*B, H]: forward writes it (zero on entry)
  float* h = nullptr;                              // [B, H] forward: in h0, out final h
  const float* h0 = nullptr;                       // [B, H] backward: the forward's h0
  const float* dy = nullptr;                       // [T*B, H] backward
  float* dh = nullptr;                             // [B, H] backward: in 0, out dL/dh0
  float* dx = nullptr;                             // [T*B, I_l] backward, overwritten
};

// h[0..k) = tanh(pre[0..k) + b_h[0..k)), with the vectorised kernel of the plain RNN.
void activate(const float* pre, const float* b_h, float* h, int64_t k) {
  kernels::RnnForwardRows rows;
  rows.rows = 1;
  rows.hidden = k;
  rows.b_h = b_h;
  rows.gates = pre;
  rows.h = h;
  kernels::post_gemm().rnn_forward(rows);
}

void layer_forward(const LayerPass& p, Scratch& s) {
  const int64_t T = p.layout->steps, B = p.layout->batch, H = p.hidden, I = p.input_size, k = p.module;
  const float* w_h = p.w->w_h.data();
  const float* b_h = p.w->b_h.data();
  s.gates.resize(size_t(T * B * H));
  for (int64_t row = 0; row < T * B; ++row) std::copy_n(p.w->b_x.data(), H, s.gates.data() + row * H);
  kernels::recurrent_gemm_nt(T * B, H, I, p.x, I, p.w->w_x.data(), I, 1.0f, s.gates.data(), H);
  for (int64_t t = 0; t < T; ++t) {
    const int64_t live = p.layout->live_rows[size_t(t)];
    if (live == 0) continue;
    float* gates = s.gates.data() + t * B * H;
    for (int64_t i = 0; i < H / k; ++i) {
      const int64_t c0 = i * k, width = H - c0;
      const float* w = w_h + c0 * H + c0;  // block row i, column blocks j >= i
      const Clock::Rows which = p.clock->active(i, t, live, s.rows);
      if (which == Clock::Rows::none) continue;
      if (which == Clock::Rows::all) {
        kernels::recurrent_gemm_nt(live, k, width, p.h + c0, H, w, H, 1.0f, gates + c0, H);
        for (int64_t r = 0; r < live; ++r) activate(gates + r * H + c0, b_h + c0, p.h + r * H + c0, k);
        continue;
      }
      const auto m = int64_t(s.rows.size());
      s.packed_a.resize(size_t(m * width));
      s.packed_c.resize(size_t(m * k));
      for (int64_t n = 0; n < m; ++n) {
        const int64_t r = s.rows[size_t(n)];
        std::copy_n(p.h + r * H + c0, width, s.packed_a.data() + n * width);
        std::copy_n(gates + r * H + c0, k, s.packed_c.data() + n * k);
      }
      kernels::recurrent_gemm_nt(m, k, width, s.packed_a.data(), width, w, H, 1.0f, s.packed_c.data(), k);
      for (int64_t n = 0; n < m; ++n)
        activate(s.packed_c.data() + n * k, b_h + c0, p.h + s.rows[size_t(n)] * H + c0, k);
    }
    std::copy_n(p.h, live * H, p.y + t * B * H);
  }
}

// Step t of the backward pass for module i on the rows that updated it (all of [0, live), or s.rows).
void module_backward(const LayerPass& p, Scratch& s, int64_t t, int64_t i, int64_t live, Clock::Rows which) {
  const int64_t B = p.layout->batch, H = p.hidden, k = p.module, c0 = i * k, width = H - c0;
  const float* y = p.y + t * B * H;
  const float* h_prev = t == 0 ? p.h0 : p.y + (t - 1) * B * H;
  const float* w = p.w->w_h.data() + c0 * H + c0;
  float* da = s.da.data() + t * B * H;
  const int64_t m = which == Clock::Rows::all ? live : int64_t(s.rows.size());
  int64_t& first = s.pack_rows[size_t(i)];
  float* pack_da = s.pack_da[size_t(i)].data() + first * k;
  float* pack_h = s.pack_h[size_t(i)].data() + first * width;
  first += m;
  for (int64_t n = 0; n < m; ++n) {
    const int64_t r = which == Clock::Rows::all ? n : s.rows[size_t(n)];
    float* dh = p.dh + r * H + c0;
    for (int64_t j = 0; j < k; ++j) {
      da[r * H + c0 + j] = dh[j] * kernels::tanh_grad_from_output(y[r * H + c0 + j]);
      dh[j] = 0.0f;  // h(t) of an updated module does not carry h(t-1) of itself
    }
    std::copy_n(da + r * H + c0, k, pack_da + n * k);
    std::copy_n(h_prev + r * H + c0, width, pack_h + n * width);
  }
  if (which == Clock::Rows::all) {
    kernels::gemm_nn(live, width, k, da + c0, H, w, H, 1.0f, p.dh + c0, H);
    return;
  }
  s.packed_c.resize(size_t(m * width));
  kernels::gemm_nn(m, width, k, pack_da, k, w, H, 0.0f, s.packed_c.data(), width);
  for (int64_t n = 0; n < m; ++n) {
    float* dh = p.dh + s.rows[size_t(n)] * H + c0;
    const float* add = s.packed_c.data() + n * width;
    for (int64_t j = 0; j < width; ++j) dh[j] += add[j];
  }
}

// Per module, the rows of all steps that update it (the packed rows of its weight gradient).
std::vector<int64_t> updated_rows(const LayerPass& p, std::vector<int64_t>& list) {
  const int64_t g = p.hidden / p.module;
  std::vector<int64_t> count(size_t(g), 0);
  for (int64_t t = 0; t < p.layout->steps; ++t) {
    const int64_t live = p.layout->live_rows[size_t(t)];
    for (int64_t i = 0; i < g && live > 0; ++i) {
      const Clock::Rows which = p.clock->active(i, t, live, list);
      count[size_t(i)] += which == Clock::Rows::all    ? live
                          : which == Clock::Rows::some ? int64_t(list.size())
                                                       : 0;
    }
  }
  return count;
}

void layer_backward(const LayerPass& p, Scratch& s) {
  const int64_t T = p.layout->steps, B = p.layout->batch, H = p.hidden, I = p.input_size, k = p.module;
  const int64_t g = H / k;
  s.da.assign(size_t(T * B * H), 0.0f);
  const std::vector<int64_t> counts = updated_rows(p, s.rows);
  s.pack_da.resize(size_t(g));
  s.pack_h.resize(size_t(g));
  s.pack_rows.assign(size_t(g), 0);
  for (int64_t i = 0; i < g; ++i) {
    s.pack_da[size_t(i)].resize(size_t(counts[size_t(i)] * k));
    s.pack_h[size_t(i)].resize(size_t(counts[size_t(i)] * (H - i * k)));
  }
  for (int64_t t = T - 1; t >= 0; --t) {
    const int64_t live = p.layout->live_rows[size_t(t)];
    if (live == 0) continue;
    const float* dy = p.dy + t * B * H;
    for (int64_t j = 0; j < live * H; ++j) p.dh[j] += dy[j];
    for (int64_t i = g - 1; i >= 0; --i) {
      const Clock::Rows which = p.clock->active(i, t, live, s.rows);
      if (which != Clock::Rows::none) module_backward(p, s, t, i, live, which);
    }
  }
  LayerParameters& d = *p.grads;
  kernels::gemm_tn(H, I, T * B, s.da.data(), H, p.x, I, 1.0f, d.w_x.data(), I);
  for (int64_t i = 0; i < g; ++i) {
    const int64_t c0 = i * k, width = H - c0, n = s.pack_rows[size_t(i)];
    kernels::gemm_tn(k, width, n, s.pack_da[size_t(i)].data(), k, s.pack_h[size_t(i)].data(), width, 1.0f,
                     d.w_h.data() + c0 * H + c0, H);
  }
  // Bias sums in a fixed order, so that runs are bit-reproducible.
  for (int64_t row = 0; row < T * B; ++row) {
    const float* da = s.da.data() + row * H;
    for (int64_t j = 0; j < H; ++j) d.b_x[j] += da[j], d.b_h[j] += da[j];
  }
  kernels::gemm_nn(T * B, I, H, s.da.data(), H, p.w->w_x.data(), I, 0.0f, p.dx, I);
}

// ---- Between the caller's layout and the sorted one ----

std::vector<float> gather_rows(const Tensor& x, const driver::SequenceLayout& layout) {
  const int64_t T = layout.steps, B = layout.batch, W = x.dim(2);
  std::vector<float> sorted(size_t(T * B * W));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t k = 0; k < B; ++k)
      std::copy_n(x.data() + (t * B + layout.order[size_t(k)]) * W, W, sorted.data() + (t * B + k) * W);
  return sorted;
}

Tensor scatter_rows(const std::vector<float>& sorted, const driver::SequenceLayout& layout, int64_t width) {
  const int64_t T = layout.steps, B = layout.batch;
  Tensor out({T, B, width});
  for (int64_t t = 0; t < T; ++t)
    for (int64_t k = 0; k < B; ++k)
      std::copy_n(sorted.data() + (t * B + k) * width, width,
                  out.data() + (t * B + layout.order[size_t(k)]) * width);
  return out;
}

std::string layer_name(const char* field, int l) {
  return std::string("clockwork.") + field + "_l" + std::to_string(l);
}

}  // namespace

// ---- ClockworkRnn ----

ClockworkRnn::ClockworkRnn(const ClockworkConfig& config, uint64_t seed)
    : config_(config), tape_(std::make_unique<Workspace>()) {
  config_.validate();
  periods_ = config_.module_periods();
  const int64_t H = config_.hidden_size, k = config_.module_size();
  // recur::Rnn's initialisation (PyTorch's range), the uniform draw written out for reproducibility.
  std::mt19937_64 generator(seed);
  const float bound = 1.0f / std::sqrt(static_cast<float>(H));
  for (int64_t l = 0; l < config_.num_layers; ++l) {
    const int64_t I = l == 0 ? config_.input_size : H;
    LayerParameters p{Tensor({H, I}), Tensor({H, H}), Tensor({H}), Tensor({H}), Tensor()};
    for (Tensor* t : {&p.w_x, &p.w_h, &p.b_x, &p.b_h})
      for (float& v : t->values()) {
        const float unit = static_cast<float>(generator() >> 40) * (1.0f / 16777216.0f);
        v = (2.0f * unit - 1.0f) * bound;
      }
    for (int64_t row = 0; row < H; ++row)
      for (int64_t col = 0; col < H; ++col)
        if (!connected(row / k, col / k)) p.w_h[row * H + col] = 0.0f;
    grads_.push_back({Tensor({H, I}), Tensor({H, H}), Tensor({H}), Tensor({H}), Tensor()});
    layers_.push_back(std::move(p));
  }
}

ClockworkRnn::~ClockworkRnn() = default;
ClockworkRnn::ClockworkRnn(ClockworkRnn&&) noexcept = default;
ClockworkRnn& ClockworkRnn::operator=(ClockworkRnn&&) noexcept = default;

int64_t ClockworkRnn::parameter_count() const {
  const int64_t g = config_.module_count(), k = config_.module_size();
  int64_t count = 0;
  for (const LayerParameters& p : layers_)
    count += p.w_x.size() + p.w_h.size() + p.b_x.size() + p.b_h.size() - k * k * g * (g - 1) / 2;
  return count;
}

std::vector<Tensor> ClockworkRnn::zero_state(int64_t batch) const {
  std::vector<Tensor> state;
  for (int64_t l = 0; l < config_.num_layers; ++l) state.emplace_back(Shape{1, batch, config_.hidden_size});
  state.emplace_back(Shape{batch});
  return state;
}

Tensor ClockworkRnn::forward(const Tensor& x, std::vector<Tensor>& state, std::span<const int64_t> lengths) {
  return run(x, state, lengths, 0.0f, nullptr);
}

Tensor ClockworkRnn::forward_train(const Tensor& x, std::vector<Tensor>& state,
                                   std::span<const int64_t> lengths, float dropout, std::mt19937_64& rng) {
  return run(x, state, lengths, dropout, &rng);
}

namespace {

struct CallShape {
  int64_t steps, batch;
};

CallShape check_call(const ClockworkConfig& c, const Tensor& x, const std::vector<Tensor>& state,
                     std::span<const int64_t> lengths) {
  if (x.rank() != 3 || x.dim(2) != c.input_size)
    throw Error("clockwork input x: expected [T, B, " + std::to_string(c.input_size) + "], got " +
                shape_to_string(x.shape()));
  const int64_t T = x.dim(0), B = x.dim(1);
  if (T < 1 || B < 1)
    throw Error("clockwork input x: needs at least one step and one sequence, got " +
                shape_to_string(x.shape()));
  if (!lengths.empty() && int64_t(lengths.size()) != B)
    throw Error("clockwork lengths: expected one per sequence (" + std::to_string(B) + "), got " +
                std::to_string(lengths.size()));
  for (size_t b = 0; b < lengths.size(); ++b)
    if (lengths[b] < 0 || lengths[b] > T)
      throw Error("clockwork lengths[" + std::to_string(b) + "] = " + std::to_string(lengths[b]) +
                  " is outside [0, T = " + std::to_string(T) + "]");
  if (int64_t(state.size()) != c.num_layers + 1)
    throw Error("clockwork state: expected " + std::to_string(c.num_layers + 1) + " tensors (h of " +
                std::to_string(c.num_layers) + " layers, then the step counts), got " +
                std::to_string(state.size()));
  for (int64_t l = 0; l < c.num_layers; ++l)
    state[size_t(l)].check_shape("clockwork state h of layer " + std::to_string(l), {1, B, c.hidden_size});
  state.back().check_shape("clockwork state step counts", {B});
  for (int64_t b = 0; b < B; ++b) {
    const float s = state.back()[b];
    if (!(s >= 0.0f && s < float(kClockworkMaxCycle) && s == std::floor(s)))
      throw Error("clockwork state step counts[" + std::to_string(b) + "] = " + std::to_string(s) +
                  " is not a whole number in [0, 2^24)");
  }
  return {T, B};
}

}  // namespace

Tensor ClockworkRnn::run(const Tensor& x, std::vector<Tensor>& state, std::span<const int64_t> lengths,
                         float dropout, std::mt19937_64* rng) {
  const CallShape shape = check_call(config_, x, state, lengths);
  const int64_t T = shape.steps, B = shape.batch, H = config_.hidden_size, L = config_.num_layers;
  const int64_t cycle = config_.cycle();
  const bool train = rng != nullptr;
  Workspace local;
  Workspace& w = train ? *tape_ : local;
  w.recorded = false;
  w.layout = driver::SequenceLayout::make(T, B, std::vector<int64_t>(lengths.begin(), lengths.end()));
  w.phases.resize(size_t(B));
  for (int64_t k = 0; k < B; ++k)
    w.phases[size_t(k)] = int64_t(state.back()[w.layout.order[size_t(k)]]) % cycle;
  const Clock clock(periods_, w.phases);
  w.inputs.resize(size_t(L));
  w.outputs.resize(size_t(L));
  w.h0.resize(size_t(L));
  w.masks.assign(size_t(L), {});

  Scratch& scratch = tape_->scratch;
  std::vector<float> input = gather_rows(x, w.layout), h(size_t(B * H));
  for (int64_t l = 0; l < L; ++l) {
    for (int64_t k = 0; k < B; ++k)
      std::copy_n(state[size_t(l)].data() + w.layout.order[size_t(k)] * H, H, h.data() + k * H);
    std::vector<float>& y = w.outputs[size_t(l)];
    y.assign(size_t(T * B * H), 0.0f);
    if (train) w.h0[size_t(l)] = h;
    LayerPass p;
    p.w = &layers_[size_t(l)];
    p.layout = &w.layout;
    p.clock = &clock;
    p.input_size = l == 0 ? config_.input_size : H;
    p.hidden = H;
    p.module = config_.module_size();
    p.x = input.data();
    p.y = y.data();
    p.h = h.data();
    layer_forward(p, scratch);
    for (int64_t k = 0; k < B; ++k)
      std::copy_n(h.data() + k * H, H, state[size_t(l)].data() + w.layout.order[size_t(k)] * H);
    if (train) w.inputs[size_t(l)] = std::move(input);
    if (l + 1 == L) break;
    input = y;
    if (train && dropout > 0.0f) {
      Tensor dropped({T * B, H}, std::move(input));
      dropout_forward(dropped, dropout, *rng, w.masks[size_t(l)]);
      input.assign(dropped.values().begin(), dropped.values().end());
    }
  }
  for (int64_t b = 0; b < B; ++b) {
    const int64_t length = lengths.empty() ? T : lengths[size_t(b)];
    state.back()[b] = float((int64_t(state.back()[b]) + length) % cycle);
  }
  w.recorded = train;
  return scatter_rows(w.outputs.back(), w.layout, H);
}

Tensor ClockworkRnn::backward(const Tensor& dy, std::vector<Tensor>* d_initial_state) {
  Workspace& w = *tape_;
  if (!w.recorded) throw Error("clockwork backward: no forward_train to take the gradient of");
  const int64_t T = w.layout.steps, B = w.layout.batch, H = config_.hidden_size, L = config_.num_layers;
  dy.check_shape("clockwork backward dy (the shape of y)", {T, B, H});
  const Clock clock(periods_, w.phases);
  if (d_initial_state != nullptr) d_initial_state->assign(size_t(L + 1), Tensor());
  Scratch& scratch = w.scratch;
  std::vector<float> d_output = gather_rows(dy, w.layout), d_input, dh;
  for (int64_t l = L - 1; l >= 0; --l) {
    const int64_t I = l == 0 ? config_.input_size : H;
    dh.assign(size_t(B * H), 0.0f);
    d_input.assign(size_t(T * B * I), 0.0f);
    LayerPass p;
    p.w = &layers_[size_t(l)];
    p.grads = &grads_[size_t(l)];
    p.layout = &w.layout;
    p.clock = &clock;
    p.input_size = I;
    p.hidden = H;
    p.module = config_.module_size();
    p.x = w.inputs[size_t(l)].data();
    p.y = w.outputs[size_t(l)].data();
    p.h0 = w.h0[size_t(l)].data();
    p.dy = d_output.data();
    p.dh = dh.data();
    p.dx = d_input.data();
    layer_backward(p, scratch);
    if (d_initial_state != nullptr) {
      Tensor& d = (*d_initial_state)[size_t(l)];
      d = Tensor({1, B, H});
      for (int64_t k = 0; k < B; ++k)
        std::copy_n(dh.data() + k * H, H, d.data() + w.layout.order[size_t(k)] * H);
    }
    if (l > 0 && !w.masks[size_t(l - 1)].empty()) {
      Tensor masked({T * B, I}, std::move(d_input));
      dropout_backward(w.masks[size_t(l - 1)], masked);
      d_input.assign(masked.values().begin(), masked.values().end());
    }
    d_output.swap(d_input);
  }
  if (d_initial_state != nullptr) d_initial_state->back() = Tensor({B});  // step counts: no gradient
  return scatter_rows(d_output, w.layout, config_.input_size);
}

std::vector<Parameter> ClockworkRnn::parameters() {
  std::vector<Parameter> list;
  for (size_t l = 0; l < layers_.size(); ++l) {
    LayerParameters& p = layers_[l];
    LayerParameters& d = grads_[l];
    list.push_back({layer_name("weight_ih", int(l)), &p.w_x, &d.w_x});
    list.push_back({layer_name("weight_hh", int(l)), &p.w_h, &d.w_h});
    list.push_back({layer_name("bias_ih", int(l)), &p.b_x, &d.b_x});
    list.push_back({layer_name("bias_hh", int(l)), &p.b_h, &d.b_h});
  }
  return list;
}

}  // namespace recur
