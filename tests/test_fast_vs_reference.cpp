// Level 2: the float32 engine (recur::Rnn, recur::RnnStream) against the double-precision reference
// (tests/reference/), on the same weights: outputs, final states and every gradient, for every cell, on
// shapes that cover B = 1, T = 1, long T, odd H, I != H, 1-3 layers, both directions, unsorted lengths
// (incl. 0), with and without initial states, both layouts. Errors are measured as
// max |engine - reference| / (1 + max |reference|) per tensor; each case prints its largest.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <regex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "numeric_checks.hpp"
#include "recur/error.hpp"
#include "recur/rnn.hpp"
#include "recur/runtime.hpp"
#include "recur/stream.hpp"
#include "reference/reference_rnn.hpp"

namespace recur::ref {
namespace {

constexpr double kForwardTol = 2e-6;   // float32 rounding through up to 55 steps and 3 layers; seen: 1e-7
constexpr double kGradientTol = 1e-5;  // sums over T*B terms on top of that; seen: 7e-7

struct FastCase {
  CellSpec cell;
  int64_t input_size, hidden_size;
  int num_layers;
  bool bidirectional;
  int64_t steps, batch;
  std::vector<int64_t> lengths;  // empty: every sequence has length T (the API's default)
  bool with_h0, with_c0, batch_first, with_final_grads;
};

std::string describe(const FastCase& c) {
  std::string lengths;
  for (int64_t len : c.lengths) lengths += (lengths.empty() ? "" : ",") + std::to_string(len);
  return cell_name_ref(c.cell) + " I=" + std::to_string(c.input_size) +
         " H=" + std::to_string(c.hidden_size) + " L=" + std::to_string(c.num_layers) +
         " D=" + (c.bidirectional ? "2" : "1") + " T=" + std::to_string(c.steps) +
         " B=" + std::to_string(c.batch) + " lengths={" + lengths + "}" + (c.with_h0 ? " h0" : "") +
         (c.with_c0 ? " c0" : "") + (c.batch_first ? " batch_first" : "") +
         (c.with_final_grads ? " dfinal" : "");
}

// Doubles that are exactly floats, so that both sides see the same numbers.
std::vector<double> float_values(size_t count, double scale, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> uniform(-scale, scale);
  std::vector<double> out(count);
  for (double& v : out) v = static_cast<float>(uniform(rng));
  return out;
}

struct ErrorLog {
  double forward = 0, gradient = 0;
};

void expect_close(const std::vector<double>& actual, const std::vector<double>& expected, double tol,
                  const std::string& what, double& worst) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  const double error = scaled_error(actual, expected);
  worst = std::max(worst, error);
  EXPECT_LE(error, tol) << what;
}

void expect_bitwise_equal(const Tensor& a, const Tensor& b, const std::string& what) {
  ASSERT_EQ(a.shape(), b.shape()) << what;
  for (int64_t j = 0; j < a.size(); ++j) {
    if (a[j] != b[j]) {
      ADD_FAILURE() << what << "[" << j << "]: " << a[j] << " vs " << b[j];
      return;
    }
  }
}

struct Prepared {
  RnnConfig config;
  RnnParametersRef<double> params;
  BatchRef<double> batch;              // time-major, lengths filled in
  std::vector<double> dy, dh_n, dc_n;  // dy time-major; dh_n/dc_n empty without final grads
};

Prepared prepare(const FastCase& c, std::mt19937_64& rng) {
  Prepared p;
  p.config = {c.cell, c.input_size, c.hidden_size, c.num_layers, c.bidirectional};
  const double scale = 1.0 / std::sqrt(static_cast<double>(c.hidden_size));  // PyTorch's init range
  p.params = random_parameters_ref<double>(p.config, rng, scale);
  for_each_parameter_ref(p.params, [](const std::string&, std::vector<double>& v) {
    for (double& value : v) value = static_cast<float>(value);
  });
  const auto state_size = static_cast<size_t>(c.num_layers * p.config.directions() * c.batch * c.hidden_size);
  p.batch.steps = c.steps;
  p.batch.batch = c.batch;
  p.batch.lengths = c.lengths.empty() ? std::vector<int64_t>(c.batch, c.steps) : c.lengths;
  p.batch.x = float_values(static_cast<size_t>(c.steps * c.batch * c.input_size), 1.0, rng);
  if (c.with_h0) p.batch.h0 = float_values(state_size, 0.8, rng);
  if (c.with_c0) p.batch.c0 = float_values(state_size, 1.0, rng);
  p.dy =
      float_values(static_cast<size_t>(c.steps * c.batch * p.config.directions() * c.hidden_size), 1.0, rng);
  if (c.with_final_grads) {
    p.dh_n = float_values(state_size, 1.0, rng);
    if (c.cell.has_cell_state()) p.dc_n = float_values(state_size, 1.0, rng);
  }
  return p;
}

// Between the reference's time-major layout and the API's layout of this case.
std::vector<double> to_api_layout(const std::vector<double>& time_major, const FastCase& c, int64_t inner) {
  return c.batch_first ? swap_leading_axes_ref(time_major, c.steps, c.batch, inner) : time_major;
}
std::vector<double> from_api_layout(const Tensor& api, const FastCase& c, int64_t inner) {
  const std::vector<double> values = values_from_tensor_ref<double>(api);
  return c.batch_first ? swap_leading_axes_ref(values, c.batch, c.steps, inner) : values;
}
Shape api_shape(const FastCase& c, int64_t inner) {
  return c.batch_first ? Shape{c.batch, c.steps, inner} : Shape{c.steps, c.batch, inner};
}

void compare_parameters(const RnnParameters& engine, const RnnParametersRef<double>& reference, double tol,
                        double scale_factor, double& worst) {
  RnnParametersRef<double> actual = parameters_from_recur_ref<double>(engine);
  RnnParametersRef<double> expected = reference;
  ASSERT_EQ(actual.layers.size(), expected.layers.size());
  std::vector<std::vector<double>*> expected_tensors;
  for_each_parameter_ref(expected, [&](const std::string&, std::vector<double>& v) {
    for (double& value : v) value *= scale_factor;
    expected_tensors.push_back(&v);
  });
  size_t k = 0;
  for_each_parameter_ref(actual, [&](const std::string& name, std::vector<double>& v) {
    ASSERT_LT(k, expected_tensors.size());
    expect_close(v, *expected_tensors[k++], tol, "d" + name, worst);
  });
  EXPECT_EQ(k, expected_tensors.size());
}

void run_case(const FastCase& c, uint64_t seed, ErrorLog& log) {
  SCOPED_TRACE(describe(c));
  std::mt19937_64 rng(seed);
  Prepared p = prepare(c, rng);
  // relu: keep pre-activations away from the kink, where float and double may take different sides.
  for (int attempt = 0; attempt < 50 && forward_ref(p.config, p.params, p.batch).min_abs_relu_pre < 1e-4;
       ++attempt) {
    p = prepare(c, rng);
  }
  const ForwardRef<double> expected = forward_ref(p.config, p.params, p.batch);
  const GradientsRef<double> expected_grads = backward_ref(p.config, p.params, p.batch, p.dy, p.dh_n, p.dc_n);

  const Rnn rnn(p.config, parameters_to_recur_ref(p.config, p.params));
  const int64_t hidden = c.hidden_size, width = p.config.directions() * hidden;
  const int64_t layer_directions = c.num_layers * p.config.directions();
  const Shape state_shape{layer_directions, c.batch, hidden};
  const Tensor x =
      tensor_from_values_ref(api_shape(c, c.input_size), to_api_layout(p.batch.x, c, c.input_size));
  const Tensor h0 = c.with_h0 ? tensor_from_values_ref(state_shape, p.batch.h0) : Tensor();
  const Tensor c0 = c.with_c0 ? tensor_from_values_ref(state_shape, p.batch.c0) : Tensor();
  SequenceOptions options;
  options.lengths = c.lengths;
  options.h0 = c.with_h0 ? &h0 : nullptr;
  options.c0 = c.with_c0 ? &c0 : nullptr;
  options.batch_first = c.batch_first;

  const RnnOutput inference = rnn.forward(x, options);
  Tape tape;
  const RnnOutput training = rnn.forward(x, options, tape);
  expect_bitwise_equal(inference.y, training.y, "training y vs inference y");
  expect_bitwise_equal(inference.final_state.h, training.final_state.h, "training h_n vs inference h_n");
  expect_bitwise_equal(inference.final_state.c, training.final_state.c, "training c_n vs inference c_n");

  ASSERT_EQ(training.y.shape(), api_shape(c, width));
  expect_close(from_api_layout(training.y, c, width), expected.y, kForwardTol, "y", log.forward);
  ASSERT_EQ(training.final_state.h.shape(), state_shape);
  expect_close(values_from_tensor_ref<double>(training.final_state.h), expected.h_n, kForwardTol, "h_n",
               log.forward);
  if (c.cell.has_cell_state()) {
    ASSERT_EQ(training.final_state.c.shape(), state_shape);
    expect_close(values_from_tensor_ref<double>(training.final_state.c), expected.c_n, kForwardTol, "c_n",
                 log.forward);
  }

  const Tensor dy = tensor_from_values_ref(api_shape(c, width), to_api_layout(p.dy, c, width));
  RnnState d_final;
  if (!p.dh_n.empty()) d_final.h = tensor_from_values_ref(state_shape, p.dh_n);
  if (!p.dc_n.empty()) d_final.c = tensor_from_values_ref(state_shape, p.dc_n);
  RnnGradients grads;
  grads.parameters = RnnParameters::zeros(p.config);
  rnn.backward(tape, dy, d_final, grads);

  compare_parameters(grads.parameters, expected_grads.parameters, kGradientTol, 1.0, log.gradient);
  ASSERT_EQ(grads.dx.shape(), x.shape());
  const std::vector<double> dx = from_api_layout(grads.dx, c, c.input_size);
  expect_close(dx, expected_grads.dx, kGradientTol, "dx", log.gradient);
  for (int64_t b = 0; b < c.batch; ++b) {
    for (int64_t t = p.batch.lengths[b]; t < c.steps; ++t) {
      for (int64_t j = 0; j < c.input_size; ++j) {
        EXPECT_EQ(dx[(t * c.batch + b) * c.input_size + j], 0.0) << "dx past the end: b=" << b << " t=" << t;
      }
    }
  }
  ASSERT_EQ(grads.initial_state.h.shape(), state_shape);
  expect_close(values_from_tensor_ref<double>(grads.initial_state.h), expected_grads.dh0, kGradientTol, "dh0",
               log.gradient);
  if (c.cell.has_cell_state()) {
    ASSERT_EQ(grads.initial_state.c.shape(), state_shape);
    expect_close(values_from_tensor_ref<double>(grads.initial_state.c), expected_grads.dc0, kGradientTol,
                 "dc0", log.gradient);
  }

  // A second backward adds the same weight gradients again, and overwrites dx, dh0, dc0.
  const RnnGradients first = grads;
  rnn.backward(tape, dy, d_final, grads);
  double unused = 0;
  compare_parameters(grads.parameters, parameters_from_recur_ref<double>(first.parameters), 1e-6, 2.0,
                     unused);
  expect_bitwise_equal(grads.dx, first.dx, "dx after a second backward");
  expect_bitwise_equal(grads.initial_state.h, first.initial_state.h, "dh0 after a second backward");
  expect_bitwise_equal(grads.initial_state.c, first.initial_state.c, "dc0 after a second backward");
}

std::vector<int64_t> random_lengths(int64_t steps, int64_t batch, std::mt19937_64& rng) {
  std::uniform_int_distribution<int64_t> length(0, steps);
  std::vector<int64_t> out(batch);
  for (int64_t& len : out) len = length(rng);
  out[rng() % out.size()] = steps;  // the longest reaches T, as with padded batches
  return out;
}

FastCase random_case(const CellSpec& cell, std::mt19937_64& rng) {
  auto pick = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  auto coin = [&] { return pick(0, 1) == 1; };
  FastCase c{cell,   pick(1, 8),  pick(1, 7), static_cast<int>(pick(1, 3)),
             coin(), pick(1, 12), pick(1, 6), {},
             coin(), false,       coin(),     coin()};
  if (coin()) c.lengths = random_lengths(c.steps, c.batch, rng);
  c.with_c0 = cell.has_cell_state() && coin();
  return c;
}

std::vector<FastCase> fast_cases(const CellSpec& cell) {
  const bool lstm = cell.has_cell_state();
  std::vector<FastCase> cases = {
      {cell, 3, 5, 1, false, 1, 1, {}, false, false, false, true},            // B = 1, T = 1
      {cell, 7, 5, 2, true, 50, 4, {17, 50, 3, 44}, true, lstm, true, true},  // long T, unsorted
      {cell, 4, 3, 3, false, 6, 3, {2, 6, 4}, true, false, false, false},     // 3 layers, no d final
      {cell, 2, 4, 1, true, 9, 5, {9, 0, 3, 9, 1}, true, lstm, true, true},   // a length-0 sequence
      {cell, 5, 6, 2, false, 55, 1, {}, true, lstm, false, true},             // long T, B = 1
      {cell, 1, 1, 1, true, 3, 2, {3, 1}, false, lstm, false, true},          // H = 1, I = 1, c0 only
      {cell, 6, 6, 1, true, 4, 3, {}, false, false, true, false},             // I = H, plain
      // Already longest first, time-major: x, y, dy and dx are read and written in place (rnn.cpp),
      // with dead rows at the end of the batch; the same batch-first is copied.
      {cell, 3, 4, 2, true, 6, 5, {6, 6, 4, 1, 0}, true, lstm, false, true},
      {cell, 3, 4, 2, false, 6, 5, {6, 5, 5, 2, 0}, false, false, true, true},
      // Sizes the AMX tile unit takes where the processor has it (kernels/amx_gemm.hpp): packed step
      // products of 19, 18 and 16 rows on tiles and of 10 on the float32 panels in one pass, then merged
      // GEMMs of over 4M multiply-adds.
      {cell,
       40,
       64,
       1,
       true,
       4,
       20,
       {4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 3, 3, 3, 3, 3, 3, 2, 1, 1, 0},
       true,
       lstm,
       false,
       true},
      {cell, 64, 64, 2, false, 16, 16, {}, false, false, false, true},
  };
  std::mt19937_64 rng(std::hash<std::string>{}(cell_name_ref(cell)));
  for (int k = 0; k < 3; ++k) cases.push_back(random_case(cell, rng));
  return cases;
}

void check_cell(const CellSpec& cell) {
  ErrorLog worst;
  uint64_t seed = 1;
  for (const FastCase& c : fast_cases(cell)) {
    ErrorLog log;
    run_case(c, seed++, log);
    std::printf("[fast vs ref] %-70s forward %.1e  gradient %.1e\n", describe(c).c_str(), log.forward,
                log.gradient);
    worst.forward = std::max(worst.forward, log.forward);
    worst.gradient = std::max(worst.gradient, log.gradient);
  }
  std::printf("[fast vs ref] %s: largest scaled error: forward %.2e, gradient %.2e\n",
              cell_name_ref(cell).c_str(), worst.forward, worst.gradient);
}

CellSpec peephole_cifg() {
  CellSpec cell = CellSpec::coupled_lstm();
  cell.peephole = true;
  return cell;
}

TEST(FastVsRef, RnnTanh) { check_cell(CellSpec::rnn_tanh()); }
TEST(FastVsRef, RnnRelu) { check_cell(CellSpec::rnn_relu()); }
TEST(FastVsRef, Lstm) { check_cell(CellSpec::lstm()); }
TEST(FastVsRef, PeepholeLstm) { check_cell(CellSpec::peephole_lstm()); }
TEST(FastVsRef, CoupledLstm) { check_cell(CellSpec::coupled_lstm()); }
TEST(FastVsRef, PeepholeCoupledLstm) { check_cell(peephole_cifg()); }
TEST(FastVsRef, GruResetAfter) { check_cell(CellSpec::gru(GruReset::after)); }
TEST(FastVsRef, GruResetBefore) { check_cell(CellSpec::gru(GruReset::before)); }

// A Tape, and the buffers each thread keeps between calls, are reused without clearing them: a first call
// whose values overflow to NaN and Inf, then a call with shorter sequences on the same tape, gives the
// same outputs and gradients, bit for bit, as that second call on a fresh tape in a fresh thread (the
// rows past a sequence's end are zeroed, not left from the first call).
TEST(FastVsRefTape, ReusedTapeGivesTheGradientsOfAFreshOne) {
  for (const CellSpec& cell : {CellSpec::lstm(), CellSpec::gru(GruReset::before), CellSpec::rnn_relu()}) {
    const int64_t T = 4, B = 6, I = 3, H = 5;
    const RnnConfig config{cell, I, H, 2, true};
    const Rnn rnn(config, 3);
    std::mt19937_64 rng(8);
    Tensor poisoned({T, B, I}), x({T, B, I}), dy({T, B, 2 * H});
    for (float& v : poisoned.values()) v = std::numeric_limits<float>::max();
    poisoned.values()[7] = std::numeric_limits<float>::quiet_NaN();
    const std::vector<double> xv = float_values(size_t(T * B * I), 1.0, rng),
                              dyv = float_values(size_t(T * B * 2 * H), 1.0, rng);
    std::copy(xv.begin(), xv.end(), x.values().begin());
    std::copy(dyv.begin(), dyv.end(), dy.values().begin());
    SequenceOptions short_rows;
    short_rows.lengths = {4, 1, 3, 0, 2, 4};
    struct Pass {
      RnnOutput output;
      RnnGradients grads;
    };
    const auto run = [&](Tape& tape) {
      Pass pass{rnn.forward(x, short_rows, tape), {}};
      pass.grads.parameters = RnnParameters::zeros(config);
      rnn.backward(tape, dy, {}, pass.grads);
      return pass;
    };
    Tape reused, fresh;
    rnn.forward(poisoned, {}, reused);
    RnnGradients poisoned_grads;
    poisoned_grads.parameters = RnnParameters::zeros(config);
    rnn.backward(reused, Tensor(dy.shape(), std::numeric_limits<float>::infinity()), {}, poisoned_grads);
    const Pass a = run(reused);
    Pass b;
    std::thread([&] { b = run(fresh); }).join();
    const auto same = [&](const Tensor& ta, const Tensor& tb, const std::string& what) {
      const std::vector<float> va(ta.values().begin(), ta.values().end()),
          vb(tb.values().begin(), tb.values().end());
      EXPECT_EQ(va, vb) << cell.name() << " " << what;
    };
    same(a.output.y, b.output.y, "y");
    same(a.output.final_state.h, b.output.final_state.h, "h_n");
    same(a.grads.dx, b.grads.dx, "dx");
    same(a.grads.initial_state.h, b.grads.initial_state.h, "dh0");
    for (size_t l = 0; l < a.grads.parameters.layers.size(); ++l) {
      const LayerParameters &pa = a.grads.parameters.layers[l], &pb = b.grads.parameters.layers[l];
      same(pa.w_x, pb.w_x, "dW_x");
      same(pa.w_h, pb.w_h, "dW_h");
      same(pa.b_x, pb.b_x, "db_x");
      same(pa.b_h, pb.b_h, "db_h");
    }
  }
}

// ---- RnnStream: step by step equals Rnn::forward on the whole sequence (unidirectional stacks).

Tensor random_tensor(Shape shape, double scale, std::mt19937_64& rng) {
  const std::vector<double> values =
      float_values(static_cast<size_t>(shape_element_count(shape)), scale, rng);
  return tensor_from_values_ref(std::move(shape), values);
}

// Row t of a [T, B, W] tensor as a [B, W] tensor.
Tensor time_slice(const Tensor& x, int64_t t) {
  const int64_t batch = x.dim(1), width = x.dim(2);
  std::vector<float> row(x.data() + t * batch * width, x.data() + (t + 1) * batch * width);
  return Tensor({batch, width}, std::move(row));
}

double tensor_error(const Tensor& actual, const Tensor& expected) {
  if (actual.shape() != expected.shape()) return std::numeric_limits<double>::infinity();
  return scaled_error(values_from_tensor_ref<double>(actual), values_from_tensor_ref<double>(expected));
}

// Streams x through `stream` and compares every step and the final state with rnn.forward(x, h0, c0).
double expect_stream_matches_forward(RnnStream& stream, const Rnn& rnn, const Tensor& x, const Tensor* h0,
                                     const Tensor* c0, const std::string& what) {
  SequenceOptions options;
  options.h0 = h0;
  options.c0 = c0;
  const RnnOutput expected = rnn.forward(x, options);
  double worst = 0;
  for (int64_t t = 0; t < x.dim(0); ++t) {
    const Tensor y_t = stream.step(time_slice(x, t));
    worst = std::max(worst, tensor_error(y_t, time_slice(expected.y, t)));
  }
  worst = std::max(worst, tensor_error(stream.state().h, expected.final_state.h));
  if (rnn.config().cell.has_cell_state())
    worst = std::max(worst, tensor_error(stream.state().c, expected.final_state.c));
  EXPECT_LE(worst, 1e-6) << what;
  return worst;
}

TEST(FastVsRefStream, StepByStepEqualsWholeSequence) {
  double worst = 0;
  for (const CellSpec& cell : all_cells_ref()) {
    SCOPED_TRACE(cell_name_ref(cell));
    const RnnConfig config{cell, 3, 5, 2, false};
    Rnn rnn(config, 42);
    const int64_t batch = 3, steps = 7;
    const bool lstm = cell.has_cell_state();
    std::mt19937_64 rng(5);
    const Tensor x1 = random_tensor({steps, batch, 3}, 1.0, rng),
                 x2 = random_tensor({steps, batch, 3}, 1.0, rng);
    RnnStream stream(rnn, batch);
    worst = std::max(worst, expect_stream_matches_forward(stream, rnn, x1, nullptr, nullptr, "from zero"));
    // The state carries over: a second sequence continues from where the first ended.
    const RnnState carried = stream.state();
    worst = std::max(worst, expect_stream_matches_forward(stream, rnn, x2, &carried.h,
                                                          lstm ? &carried.c : nullptr, "carried state"));
    RnnState state{random_tensor({2, batch, 5}, 0.8, rng),
                   lstm ? random_tensor({2, batch, 5}, 1.0, rng) : Tensor()};
    stream.set_state(state);
    worst = std::max(worst, expect_stream_matches_forward(stream, rnn, x1, &state.h,
                                                          lstm ? &state.c : nullptr, "after set_state"));
    stream.reset();
    worst = std::max(worst, expect_stream_matches_forward(stream, rnn, x2, nullptr, nullptr, "after reset"));
    // The stream reads the weights at every step (stream.hpp): changing them after construction counts.
    for (auto& layer : rnn.parameters().layers) {
      for (float& w : layer.w_h.values()) w *= 0.5f;
    }
    stream.reset();
    worst = std::max(
        worst, expect_stream_matches_forward(stream, rnn, x1, nullptr, nullptr, "after a weight change"));
  }
  std::printf("[fast vs ref] stream vs forward: largest scaled error %.2e\n", worst);
}

// FrozenRnn: the same forward on weights prepared once (bit for bit above 4 rows). Shapes large enough for
// the input products to run on the tile unit where there is one (kernels::gemm_uses_tiles), with lengths,
// both directions, two layers, an initial state, and batch-first input.
void expect_same_bits(const RnnOutput& a, const RnnOutput& b, const std::string& what) {
  EXPECT_EQ(a.y.shape(), b.y.shape()) << what;
  EXPECT_TRUE(std::equal(a.y.values().begin(), a.y.values().end(), b.y.values().begin())) << what << ": y";
  EXPECT_TRUE(std::equal(a.final_state.h.values().begin(), a.final_state.h.values().end(),
                         b.final_state.h.values().begin()))
      << what << ": h";
  EXPECT_TRUE(std::equal(a.final_state.c.values().begin(), a.final_state.c.values().end(),
                         b.final_state.c.values().begin()))
      << what << ": c";
}

TEST(FastVsRefFrozen, FrozenForwardIsRnnForwardBitForBitAndKeepsItsSnapshot) {
  for (const CellSpec& cell : all_cells_ref()) {
    SCOPED_TRACE(cell_name_ref(cell));
    const RnnConfig config{cell, 48, 64, 2, true};
    Rnn rnn(config, 7);
    const FrozenRnn frozen(rnn);
    const int64_t steps = 40, batch = 27;
    std::mt19937_64 rng(3);
    const Tensor x = random_tensor({steps, batch, 48}, 1.0, rng);
    SequenceOptions options;
    for (int64_t b = 0; b < batch; ++b) options.lengths.push_back(b % 3 == 0 ? steps : 1 + (b * 7) % steps);
    const RnnOutput before = rnn.forward(x, options);
    expect_same_bits(frozen.forward(x, options), before, "lengths");
    const Tensor h0 = random_tensor({4, batch, 64}, 0.5, rng), c0 = random_tensor({4, batch, 64}, 1.0, rng);
    SequenceOptions started{{}, &h0, cell.has_cell_state() ? &c0 : nullptr, true};
    const Tensor x_batch_first = random_tensor({batch, steps, 48}, 1.0, rng);
    expect_same_bits(frozen.forward(x_batch_first, started), rnn.forward(x_batch_first, started),
                     "initial state, batch first");
    // Batches of 1 to 4 rows: on W_h's panels packed once, where Rnn::forward takes the small-batch kernel
    // on W_h as it is; the same to float32's rounding.
    for (int64_t rows : {1, 2, 4}) {
      const Tensor small = random_tensor({steps, rows, 48}, 1.0, rng);
      const RnnOutput a = frozen.forward(small), b = rnn.forward(small);
      EXPECT_LE(tensor_error(a.y, b.y), 1e-6) << "batch " << rows;
      EXPECT_LE(tensor_error(a.final_state.h, b.final_state.h), 1e-6) << "batch " << rows;
      if (cell.has_cell_state())
        EXPECT_LE(tensor_error(a.final_state.c, b.final_state.c), 1e-6) << "batch " << rows;
    }
    // A snapshot: the Rnn's weights changing afterwards leaves the frozen copy as it was.
    for (auto& layer : rnn.parameters().layers)
      for (float& w : layer.w_x.values()) w *= 0.5f;
    expect_same_bits(frozen.forward(x, options), before, "after the Rnn's weights changed");
    EXPECT_FALSE(std::equal(before.y.values().begin(), before.y.values().end(),
                            rnn.forward(x, options).y.values().begin()));
  }
}

// FrozenRnn::forward from several threads at once (recur/rnn.hpp says it may): each call gives what it
// gives alone, while the pool serves one of them and the others run on their own threads.
TEST(FastVsRefFrozen, ForwardFromTwoThreadsAtOnceGivesEachItsOwnResult) {
  set_num_threads(2);
  const RnnConfig config{CellSpec::lstm(), 48, 64, 2, true};
  const FrozenRnn frozen(Rnn(config, 5));
  std::mt19937_64 rng(21);
  const Tensor a = random_tensor({30, 20, 48}, 1.0, rng), b = random_tensor({30, 3, 48}, 1.0, rng);
  const RnnOutput alone_a = frozen.forward(a), alone_b = frozen.forward(b);
  RnnOutput together_a, together_b;
  std::thread other([&] {
    for (int k = 0; k < 20; ++k) together_b = frozen.forward(b);
  });
  for (int k = 0; k < 20; ++k) together_a = frozen.forward(a);
  other.join();
  expect_same_bits(together_a, alone_a, "batch 20 beside another call");
  expect_same_bits(together_b, alone_b, "batch 3 beside another call");
  set_num_threads(1);
}

// A stream on a FrozenRnn: its steps on the packed weights (W_x's too, at 1-4 rows), against the whole
// sequence through Rnn::forward; later changes to the Rnn are not seen.
TEST(FastVsRefStream, FrozenStreamStepsOnItsSnapshot) {
  double worst = 0;
  for (const CellSpec& cell : all_cells_ref()) {
    SCOPED_TRACE(cell_name_ref(cell));
    const RnnConfig config{cell, 40, 48, 2, false};
    Rnn rnn(config, 11);
    const Rnn original = rnn;
    const FrozenRnn frozen(rnn);
    std::mt19937_64 rng(9);
    for (int64_t batch : {1, 3, 6}) {
      const Tensor x = random_tensor({6, batch, 40}, 1.0, rng);
      RnnStream stream(frozen, batch);
      worst = std::max(worst, expect_stream_matches_forward(stream, original, x, nullptr, nullptr,
                                                            "batch " + std::to_string(batch)));
      for (auto& layer : rnn.parameters().layers)
        for (float& w : layer.w_x.values()) w *= 0.5f;
      stream.reset();
      worst = std::max(worst, expect_stream_matches_forward(stream, original, x, nullptr, nullptr,
                                                            "after the Rnn's weights changed"));
    }
  }
  std::printf("[fast vs ref] frozen stream vs forward: largest scaled error %.2e\n", worst);
}

// ---- Errors at the API edge: recur::Error whose message names the thing and the value.

// True if `message` contains `word` not as part of a longer identifier ("x" but not "max").
bool mentions(const std::string& message, const std::string& word) {
  const std::regex pattern("(^|[^A-Za-z0-9_])" + word + "([^A-Za-z0-9_]|$)");
  return std::regex_search(message, pattern);
}

template <typename F>
void expect_error_mentioning(F&& f, const std::vector<std::string>& words) {
  try {
    f();
    ADD_FAILURE() << "no recur::Error thrown";
  } catch (const Error& e) {
    for (const std::string& word : words)
      EXPECT_TRUE(mentions(e.what(), word)) << "'" << e.what() << "' lacks " << word;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected recur::Error, got another exception: " << e.what();
  }
}

TEST(FastVsRefErrors, ForwardArgumentsAreCheckedAndNamed) {
  const Rnn gru(RnnConfig{CellSpec::gru(), 3, 4, 2, true}, 1);
  const Rnn lstm(RnnConfig{CellSpec::lstm(), 3, 4, 1, false}, 1);
  const Tensor x({5, 2, 3});  // T = 5, B = 2
  auto run = [&](const Rnn& rnn, const Tensor& input, SequenceOptions options) {
    rnn.forward(input, options);
  };
  expect_error_mentioning([&] { run(gru, Tensor({10, 3}), {}); }, {"x"});
  expect_error_mentioning([&] { run(gru, Tensor({5, 2, 4}), {}); }, {"x", "4"});
  expect_error_mentioning([&] { run(gru, x, {{5, 6}}); }, {"lengths", "6"});
  expect_error_mentioning([&] { run(gru, x, {{-2, 5}}); }, {"lengths", "-2"});
  expect_error_mentioning([&] { run(gru, x, {{5}}); }, {"lengths", "1"});
  expect_error_mentioning([&] { run(gru, x, {{5, 4, 3}}); }, {"lengths", "3"});
  const Tensor h0_bad({2, 2, 4}), h0_good({4, 2, 4}), c0({4, 2, 4});
  expect_error_mentioning([&] { run(gru, x, {{}, &h0_bad}); }, {"h0"});
  expect_error_mentioning([&] { run(gru, x, {{}, &h0_good, &c0}); }, {"c0"});
  const Tensor lstm_h0({1, 2, 4}), lstm_c0_bad({1, 3, 4});
  expect_error_mentioning([&] { run(lstm, x, {{}, &lstm_h0, &lstm_c0_bad}); }, {"c0"});
  // batch_first reads x as [B, T, I]: lengths are checked against T = 2 there.
  expect_error_mentioning([&] { run(gru, x, {{1, 2, 2, 2, 3}, nullptr, nullptr, true}); }, {"lengths", "3"});
}

TEST(FastVsRefErrors, BackwardArgumentsAreCheckedAndNamed) {
  const Rnn rnn(RnnConfig{CellSpec::gru(), 3, 4, 1, true}, 1);
  const Tensor x({5, 2, 3});
  RnnGradients grads;
  grads.parameters = RnnParameters::zeros(rnn.config());
  const Tensor dy({5, 2, 8});
  Tape empty_tape;
  expect_error_mentioning([&] { rnn.backward(empty_tape, dy, {}, grads); }, {"tape"});
  Tape tape;
  rnn.forward(x, {}, tape);
  expect_error_mentioning([&] { rnn.backward(tape, Tensor({5, 2, 4}), {}, grads); }, {"dy"});
  expect_error_mentioning([&] { rnn.backward(tape, dy, {Tensor({2, 2, 3}), Tensor()}, grads); }, {"h"});
  expect_error_mentioning([&] { rnn.backward(tape, dy, {Tensor(), Tensor({2, 2, 4})}, grads); }, {"c"});
  RnnGradients unshaped;
  expect_error_mentioning([&] { rnn.backward(tape, dy, {}, unshaped); }, {});
}

}  // namespace
}  // namespace recur::ref
