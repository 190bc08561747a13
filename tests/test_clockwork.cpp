// The clockwork RNN (recur/clockwork.hpp) at the three levels:
//   ReferenceClockwork*  the double reference (tests/reference/clockwork_ref.hpp) against central finite
//                        differences, for every parameter (structural zeros of W_h included: both 0), x, h0
//   FastVsRefClockwork*  the float fast path against the reference on random shapes: B = 1, odd module
//                        sizes, non-power-of-2 and repeated periods, unsorted lengths with 0, clocks out of
//                        phase, 2 layers; a state carried across two calls against one call
//   Clockwork*           independent checks: all periods 1 is a plain tanh recur::Rnn with the same
//                        block-triangular W_h; a two-unit case computed by hand from the equations; two
//                        layers with dropout against two one-layer networks and the same masks; errors
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "numeric_checks.hpp"
#include "recur/clockwork.hpp"
#include "recur/error.hpp"
#include "recur/layers.hpp"
#include "recur/optimizer.hpp"
#include "recur/rnn.hpp"
#include "reference/clockwork_ref.hpp"

namespace recur {
namespace {

using ref::ClockworkBatchRef;
using ref::ClockworkParamsRef;
using ref::ClockworkShapeRef;

std::vector<double> uniform_values(size_t count, double scale, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> uniform(-scale, scale);
  std::vector<double> out(count);
  for (double& v : out) v = float(uniform(rng));  // exactly floats, so that both paths see the same numbers
  return out;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double sum = 0;
  for (size_t j = 0; j < a.size(); ++j) sum += a[j] * b[j];
  return sum;
}

struct Case {
  int64_t input_size, hidden_size;
  std::vector<int64_t> periods;
  int num_layers;
  int64_t steps;
  std::vector<int64_t> lengths;  // batch = lengths.size()
  std::vector<int64_t> start;    // step counts at the start, one per sequence
};

struct Problem {
  ClockworkShapeRef shape;
  ClockworkParamsRef<double> params;
  ClockworkBatchRef<double> batch;
  std::vector<double> r_y, r_h;  // dL/dy, dL/dh_n
};

Problem draw(const Case& c, std::mt19937_64& rng, double scale, bool final_gradient) {
  Problem p;
  p.shape = {c.input_size, c.hidden_size, c.periods, c.num_layers};
  p.params = ref::random_clockwork_params_ref<double>(p.shape, rng, scale);
  for_each_clockwork_tensor_ref(p.params, [](const std::string&, std::vector<double>& v) {
    for (double& value : v) value = float(value);
  });
  const auto B = int64_t(c.lengths.size());
  p.batch.steps = c.steps;
  p.batch.batch = B;
  p.batch.lengths = c.lengths;
  p.batch.start = c.start;
  p.batch.x = uniform_values(size_t(c.steps * B * c.input_size), 1.0, rng);
  p.batch.h0 = uniform_values(size_t(c.num_layers * B * c.hidden_size), 0.8, rng);
  p.r_y = uniform_values(size_t(c.steps * B * c.hidden_size), 1.0, rng);
  if (final_gradient) p.r_h = uniform_values(p.batch.h0.size(), 1.0, rng);
  return p;
}

// ---- Level 1: the reference against finite differences ----

double loss(const Problem& p) {
  const auto out = ref::clockwork_forward_ref(p.shape, p.params, p.batch);
  return dot(out.y, p.r_y) + dot(out.h_n, p.r_h);
}

void check_entries(Problem& p, const std::string& name, std::vector<double>& values,
                   const std::vector<double>& analytic, std::mt19937_64& rng) {
  ASSERT_EQ(values.size(), analytic.size()) << name;
  std::vector<size_t> entries(values.size());
  std::iota(entries.begin(), entries.end(), size_t{0});
  std::shuffle(entries.begin(), entries.end(), rng);
  entries.resize(std::min(entries.size(), size_t{40}));  // a random subset keeps the sanitizer run fast
  constexpr double eps = 1e-6;
  for (size_t j : entries) {
    const double numeric = central_difference(values[j], eps, [&] { return loss(p); });
    EXPECT_NEAR(numeric, analytic[j], 1e-7 + 1e-6 * std::abs(analytic[j]))
        << name << "[" << j << "]: finite difference " << numeric << ", backward " << analytic[j];
  }
}

void gradcheck(const Case& c, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Problem p = draw(c, rng, 0.7, true);
  auto g = ref::clockwork_backward_ref(p.shape, p.params, p.batch, p.r_y, p.r_h);
  std::vector<std::pair<std::string, std::vector<double>*>> values, grads;
  for_each_clockwork_tensor_ref(p.params, [&](const std::string& n, std::vector<double>& v) {
    values.push_back({n, &v});
  });
  for_each_clockwork_tensor_ref(g.params, [&](const std::string& n, std::vector<double>& v) {
    grads.push_back({n, &v});
  });
  for (size_t t = 0; t < values.size(); ++t)
    check_entries(p, values[t].first, *values[t].second, *grads[t].second, rng);
  check_entries(p, "x", p.batch.x, g.dx, rng);
  check_entries(p, "h0", p.batch.h0, g.dh0, rng);
}

TEST(ReferenceClockwork, GradientsMatchFiniteDifferencesNestedPeriodsUnsortedLengths) {
  gradcheck({2, 6, {1, 2, 4}, 1, 7, {7, 3, 0, 5}, {0, 1, 3, 6}}, 11);
}

TEST(ReferenceClockwork, GradientsMatchFiniteDifferencesTwoLayersOddPeriods) {
  gradcheck({3, 6, {1, 3}, 2, 6, {6, 4}, {0, 2}}, 12);
}

TEST(ReferenceClockwork, GradientsMatchFiniteDifferencesRepeatedPeriodsOneSequence) {
  gradcheck({1, 3, {2, 2, 5}, 1, 9, {9}, {4}}, 13);
}

// ---- Level 2: the fast path against the reference ----

ClockworkConfig config_of(const ClockworkShapeRef& s) {
  ClockworkConfig c;
  c.input_size = s.input_size;
  c.hidden_size = s.hidden_size;
  c.periods = s.periods;
  c.num_layers = s.num_layers;
  return c;
}

void set_weights(ClockworkRnn& rnn, const ClockworkParamsRef<double>& p) {
  for (size_t l = 0; l < p.layers.size(); ++l) {
    LayerParameters& w = rnn.layer(int(l));
    const auto copy = [](const std::vector<double>& from, Tensor& to) {
      ASSERT_EQ(int64_t(from.size()), to.size());
      for (size_t j = 0; j < from.size(); ++j) to[int64_t(j)] = float(from[j]);
    };
    copy(p.layers[l].w_x, w.w_x);
    copy(p.layers[l].w_h, w.w_h);
    copy(p.layers[l].b_x, w.b_x);
    copy(p.layers[l].b_h, w.b_h);
  }
}

Tensor tensor_of(Shape shape, const std::vector<double>& values) {
  return Tensor(std::move(shape), std::vector<float>(values.begin(), values.end()));
}

std::vector<double> values_of(const Tensor& t) {
  return std::vector<double>(t.values().begin(), t.values().end());
}

// The caller's state: h0 rows of each layer, then the step counts.
std::vector<Tensor> state_of(const Problem& p) {
  const int64_t B = p.batch.batch, H = p.shape.hidden_size;
  std::vector<Tensor> state;
  for (int l = 0; l < p.shape.num_layers; ++l)
    state.push_back(tensor_of({1, B, H}, std::vector<double>(p.batch.h0.begin() + l * B * H,
                                                             p.batch.h0.begin() + (l + 1) * B * H)));
  state.push_back(tensor_of({B}, std::vector<double>(p.batch.start.begin(), p.batch.start.end())));
  return state;
}

void fast_vs_reference(const Case& c, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const Problem p = draw(c, rng, 1.0 / std::sqrt(double(c.hidden_size)), false);
  const auto expected = ref::clockwork_forward_ref(p.shape, p.params, p.batch);
  const auto expected_grads = ref::clockwork_backward_ref(p.shape, p.params, p.batch, p.r_y, {});

  ClockworkRnn rnn(config_of(p.shape), 1);
  set_weights(rnn, p.params);
  const int64_t T = c.steps, B = p.batch.batch, H = c.hidden_size, L = c.num_layers;
  std::vector<Tensor> state = state_of(p);
  std::mt19937_64 dropout_rng(0);
  const Tensor y = rnn.forward_train(tensor_of({T, B, c.input_size}, p.batch.x), state, p.batch.lengths, 0.0f,
                                     dropout_rng);
  EXPECT_LE(scaled_error(values_of(y), expected.y), 2e-6) << "y";
  std::vector<double> h_n;
  for (int l = 0; l < L; ++l) {
    const std::vector<double> h = values_of(state[size_t(l)]);
    h_n.insert(h_n.end(), h.begin(), h.end());
  }
  EXPECT_LE(scaled_error(h_n, expected.h_n), 2e-6) << "final h";
  const int64_t cycle = config_of(p.shape).cycle();
  for (int64_t b = 0; b < B; ++b) EXPECT_EQ(state.back()[b], float(expected.steps_n[size_t(b)] % cycle)) << b;

  std::vector<Tensor> d_initial;
  const Tensor dx = rnn.backward(tensor_of({T, B, H}, p.r_y), &d_initial);
  EXPECT_LE(scaled_error(values_of(dx), expected_grads.dx), 1e-5) << "dx";
  std::vector<double> dh0;
  for (int l = 0; l < L; ++l) {
    const std::vector<double> d = values_of(d_initial[size_t(l)]);
    dh0.insert(dh0.end(), d.begin(), d.end());
  }
  EXPECT_LE(scaled_error(dh0, expected_grads.dh0), 1e-5) << "dh0";
  for (int l = 0; l < L; ++l) {
    const LayerParameters& d = rnn.layer_gradients(l);
    const auto& e = expected_grads.params.layers[size_t(l)];
    EXPECT_LE(scaled_error(values_of(d.w_x), e.w_x), 1e-5) << "dW_x " << l;
    EXPECT_LE(scaled_error(values_of(d.w_h), e.w_h), 1e-5) << "dW_h " << l;
    EXPECT_LE(scaled_error(values_of(d.b_x), e.b_x), 1e-5) << "db_x " << l;
    EXPECT_LE(scaled_error(values_of(d.b_h), e.b_h), 1e-5) << "db_h " << l;
    const int64_t k = rnn.config().module_size();
    for (int64_t u = 0; u < H; ++u)  // structural zeros get exactly zero gradient
      for (int64_t v = 0; v < u / k * k; ++v) ASSERT_EQ(d.w_h[u * H + v], 0.0f) << u << "," << v;
  }
}

TEST(FastVsRefClockwork, OneSequenceDefaultPeriods) {
  fast_vs_reference({1, 8, {1, 2, 4, 8}, 1, 20, {20}, {0}}, 21);
}

TEST(FastVsRefClockwork, OddModuleSizeWithEmptySequence) {
  fast_vs_reference({5, 15, {1, 2, 4, 8, 16}, 1, 33, {33, 0, 17}, {0, 0, 0}}, 22);
}

TEST(FastVsRefClockwork, NonPowerOfTwoPeriodsClocksOutOfPhase) {
  fast_vs_reference({4, 12, {1, 3, 5, 7}, 1, 25, {9, 25, 0, 14, 25, 3}, {0, 4, 2, 11, 104, 7}}, 23);
}

TEST(FastVsRefClockwork, TwoLayersRepeatedPeriodsSamePhase) {
  fast_vs_reference({3, 10, {1, 2, 6, 6, 9}, 2, 19, {11, 19, 0, 19, 6, 2, 19}, {5, 5, 5, 5, 5, 5, 5}}, 24);
}

TEST(FastVsRefClockwork, TwoLayersOutOfPhaseUnitModules) {
  fast_vs_reference({2, 4, {1, 2, 3, 4}, 2, 13, {13, 5}, {3, 0}}, 25);
}

// Two calls, the second continuing each sequence's state (after different lengths, so that the clocks
// are out of phase in the second call), against one call over each sequence's concatenated steps.
TEST(FastVsRefClockwork, StateCarriedAcrossCallsEqualsOneCall) {
  ClockworkConfig c;
  c.input_size = 3, c.hidden_size = 12, c.num_modules = 4, c.num_layers = 2;
  ClockworkRnn rnn(c, 5);
  std::mt19937_64 rng(26);
  const int64_t T1 = 7, T2 = 9, B = 3, H = 12, I = 3;
  const std::vector<int64_t> first_lengths{7, 3, 5};
  const Tensor x1 = tensor_of({T1, B, I}, uniform_values(size_t(T1 * B * I), 1.0, rng));
  const Tensor x2 = tensor_of({T2, B, I}, uniform_values(size_t(T2 * B * I), 1.0, rng));
  std::vector<Tensor> state = rnn.zero_state(B);
  const Tensor y1 = rnn.forward(x1, state, first_lengths);
  const Tensor y2 = rnn.forward(x2, state, {});

  Tensor x({T1 + T2, B, I});
  std::vector<int64_t> lengths;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n1 = first_lengths[size_t(b)];
    for (int64_t t = 0; t < n1; ++t) std::copy_n(x1.data() + (t * B + b) * I, I, x.data() + (t * B + b) * I);
    for (int64_t t = 0; t < T2; ++t)
      std::copy_n(x2.data() + (t * B + b) * I, I, x.data() + ((n1 + t) * B + b) * I);
    lengths.push_back(n1 + T2);
  }
  std::vector<Tensor> one_state = rnn.zero_state(B);
  const Tensor y = rnn.forward(x, one_state, lengths);
  double worst = 0;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n1 = first_lengths[size_t(b)];
    for (int64_t t = 0; t < n1 + T2; ++t)
      for (int64_t j = 0; j < H; ++j) {
        const float split = t < n1 ? y1[(t * B + b) * H + j] : y2[((t - n1) * B + b) * H + j];
        worst = std::max(worst, double(std::abs(split - y[(t * B + b) * H + j])));
      }
    EXPECT_EQ(state.back()[b], one_state.back()[b]);
    EXPECT_EQ(state.back()[b], float((n1 + T2) % 8));
  }
  for (int l = 0; l < 2; ++l)
    for (int64_t j = 0; j < B * H; ++j)
      worst = std::max(worst, double(std::abs(state[l][j] - one_state[l][j])));
  EXPECT_LE(worst, 1e-6);
}

// ---- Independent checks ----

// With every period 1 every module updates at every step: a tanh recur::Rnn with the same weights.
TEST(Clockwork, AllPeriodsOneEqualsPlainRnnWithBlockTriangularWeights) {
  ClockworkConfig c;
  c.input_size = 4, c.hidden_size = 9, c.periods = {1, 1, 1}, c.num_layers = 2;
  ClockworkRnn cw(c, 7);
  RnnConfig rc;
  rc.cell = CellSpec::rnn_tanh();
  rc.input_size = 4, rc.hidden_size = 9, rc.num_layers = 2;
  RnnParameters weights = RnnParameters::zeros(rc);
  for (int l = 0; l < 2; ++l) {
    weights.layers[size_t(l)].w_x = cw.layer(l).w_x, weights.layers[size_t(l)].w_h = cw.layer(l).w_h;
    weights.layers[size_t(l)].b_x = cw.layer(l).b_x, weights.layers[size_t(l)].b_h = cw.layer(l).b_h;
  }
  const Rnn rnn(rc, weights);
  std::mt19937_64 rng(31);
  const int64_t T = 11, B = 4, H = 9;
  const std::vector<int64_t> lengths{6, 11, 0, 9};
  const Tensor x = tensor_of({T, B, 4}, uniform_values(size_t(T * B * 4), 1.0, rng));
  const Tensor h0 = tensor_of({2, B, H}, uniform_values(size_t(2 * B * H), 0.8, rng));
  const Tensor dy = tensor_of({T, B, H}, uniform_values(size_t(T * B * H), 1.0, rng));

  std::vector<Tensor> state = cw.zero_state(B);
  for (int l = 0; l < 2; ++l) std::copy_n(h0.data() + l * B * H, B * H, state[size_t(l)].data());
  std::mt19937_64 dropout_rng(0);
  const Tensor y = cw.forward_train(x, state, lengths, 0.0f, dropout_rng);
  std::vector<Tensor> d_initial;
  const Tensor dx = cw.backward(dy, &d_initial);

  SequenceOptions options;
  options.lengths = lengths;
  options.h0 = &h0;
  Tape tape;
  const RnnOutput out = rnn.forward(x, options, tape);
  RnnGradients grads;
  grads.parameters = RnnParameters::zeros(rc);
  rnn.backward(tape, dy, RnnState{}, grads);

  EXPECT_LE(scaled_error(values_of(y), values_of(out.y)), 1e-6);
  for (int l = 0; l < 2; ++l)
    for (int64_t j = 0; j < B * H; ++j) {
      EXPECT_NEAR(state[size_t(l)][j], out.final_state.h[l * B * H + j], 1e-6);
      EXPECT_NEAR(d_initial[size_t(l)][j], grads.initial_state.h[l * B * H + j], 1e-5);
    }
  EXPECT_LE(scaled_error(values_of(dx), values_of(grads.dx)), 1e-5);
  for (int l = 0; l < 2; ++l) {
    const LayerParameters& mine = cw.layer_gradients(l);
    const LayerParameters& dense = grads.parameters.layers[size_t(l)];
    EXPECT_LE(scaled_error(values_of(mine.w_x), values_of(dense.w_x)), 1e-5);
    EXPECT_LE(scaled_error(values_of(mine.b_x), values_of(dense.b_x)), 1e-5);
    EXPECT_LE(scaled_error(values_of(mine.b_h), values_of(dense.b_h)), 1e-5);
    for (int64_t u = 0; u < H; ++u)
      for (int64_t v = 0; v < H; ++v) {
        if (v / 3 >= u / 3)
          EXPECT_NEAR(mine.w_h[u * H + v], dense.w_h[u * H + v], 1e-5 * (1 + std::abs(dense.w_h[u * H + v])));
        else
          EXPECT_EQ(mine.w_h[u * H + v], 0.0f);  // no connection from a faster module: no gradient
      }
  }
}

// Two one-unit modules, periods 1 and 16, computed by hand: the fast unit f and the slow unit s,
//   f(t) = tanh(wx_f x(t) + b_f + w_ff f(t-1) + w_fs s(t-1)),   s(t) = tanh(wx_s x(t) + b_s + w_ss s(t-1))
// when its step count is a multiple of 16, else s(t-1). A module whose period exceeds the steps left
// before its next multiple never changes from h0.
TEST(Clockwork, HandComputedSlowModuleHoldsItsState) {
  ClockworkConfig c;
  c.input_size = 1, c.hidden_size = 2, c.periods = {1, 16};
  ClockworkRnn rnn(c, 3);
  const LayerParameters& w = rnn.layer(0);
  const double wx_f = w.w_x[0], wx_s = w.w_x[1], b_f = w.b_x[0] + w.b_h[0], b_s = w.b_x[1] + w.b_h[1];
  const double w_ff = w.w_h[0], w_fs = w.w_h[1], w_ss = w.w_h[3];
  EXPECT_EQ(w.w_h[2], 0.0f);  // the slow unit does not read the fast one
  const std::vector<float> xs{0.5f, -1.0f, 0.25f, 0.75f, -0.5f, 1.0f};
  const int64_t T = int64_t(xs.size());
  for (int start : {0, 1}) {
    std::vector<Tensor> state = rnn.zero_state(1);
    state[0][0] = 0.3f, state[0][1] = -0.6f;
    state[1][0] = float(start);
    const Tensor y = rnn.forward(Tensor({T, 1, 1}, xs), state, {});
    double f = 0.3, s = -0.6;
    for (int64_t t = 0; t < T; ++t) {
      const double next_s = (start + t) % 16 == 0 ? std::tanh(wx_s * xs[size_t(t)] + b_s + w_ss * s) : s;
      f = std::tanh(wx_f * xs[size_t(t)] + b_f + w_ff * f + w_fs * s);
      s = next_s;
      EXPECT_NEAR(y[t * 2], f, 1e-6) << "start " << start << " t " << t;
      EXPECT_NEAR(y[t * 2 + 1], s, 1e-6) << "start " << start << " t " << t;
      if (start == 1) EXPECT_EQ(y[t * 2 + 1], -0.6f) << "the slow module never reaches step 16";
    }
    EXPECT_EQ(state[1][0], float(start + T));
  }
}

// Two layers with dropout between them are the two one-layer networks with the same masks in between.
TEST(Clockwork, DropoutBetweenLayersMatchesTwoOneLayerNetworks) {
  ClockworkConfig c;
  c.input_size = 3, c.hidden_size = 6, c.periods = {1, 2, 5}, c.num_layers = 2;
  ClockworkRnn two(c, 9);
  c.num_layers = 1;
  ClockworkRnn bottom(c, 0);
  c.input_size = 6;
  ClockworkRnn top(c, 0);
  bottom.layer(0) = two.layer(0);
  top.layer(0) = two.layer(1);
  std::mt19937_64 rng(41);
  const int64_t T = 8, B = 2, H = 6;
  const Tensor x = tensor_of({T, B, 3}, uniform_values(size_t(T * B * 3), 1.0, rng));
  const Tensor dy = tensor_of({T, B, H}, uniform_values(size_t(T * B * H), 1.0, rng));
  const float p = 0.4f;
  std::mt19937_64 masks_rng(77), model_rng(77);
  Tensor ones({T * B, H}, 1.0f);
  std::vector<float> mask;
  dropout_forward(ones, p, masks_rng, mask);  // the draws the model makes (no lengths: caller's order)

  std::vector<Tensor> state = two.zero_state(B);
  const Tensor y = two.forward_train(x, state, {}, p, model_rng);
  const Tensor dx = two.backward(dy);

  std::vector<Tensor> s1 = bottom.zero_state(B), s2 = top.zero_state(B);
  std::mt19937_64 unused(0);
  Tensor middle = bottom.forward_train(x, s1, {}, 0.0f, unused);
  for (int64_t j = 0; j < middle.size(); ++j) middle[j] *= mask[size_t(j)];
  const Tensor y_split = top.forward_train(middle, s2, {}, 0.0f, unused);
  Tensor d_middle = top.backward(dy);
  for (int64_t j = 0; j < d_middle.size(); ++j) d_middle[j] *= mask[size_t(j)];
  const Tensor dx_split = bottom.backward(d_middle);
  EXPECT_LE(scaled_error(values_of(y), values_of(y_split)), 1e-6);
  EXPECT_LE(scaled_error(values_of(dx), values_of(dx_split)), 1e-6);
  EXPECT_LE(scaled_error(values_of(two.layer_gradients(1).w_h), values_of(top.layer_gradients(0).w_h)), 1e-6);
}

TEST(Clockwork, StructuralZerosStayZeroUnderTraining) {
  ClockworkConfig c;
  c.input_size = 2, c.hidden_size = 8, c.num_modules = 4;
  ClockworkRnn rnn(c, 4);
  EXPECT_EQ(rnn.periods(), (std::vector<int64_t>{1, 2, 4, 8}));
  EXPECT_EQ(rnn.parameter_count(), 8 * 2 + 10 * 2 * 2 + 8 + 8);  // W_x, 10 blocks of 2x2 in W_h, b_x, b_h
  const std::vector<Parameter> params = rnn.parameters();
  ASSERT_EQ(params.size(), 4u);
  EXPECT_EQ(params[1].name, "clockwork.weight_hh_l0");
  Optimizer adam({});
  std::mt19937_64 rng(5);
  for (int step = 0; step < 3; ++step) {
    std::vector<Tensor> state = rnn.zero_state(3);
    const Tensor x = tensor_of({10, 3, 2}, uniform_values(60, 1.0, rng));
    const Tensor y = rnn.forward_train(x, state, {}, 0.0f, rng);
    rnn.backward(y);  // L = |y|^2 / 2
    adam.step(params, 0.1f);
  }
  const Tensor& w_h = rnn.layer(0).w_h;
  int moved = 0;
  for (int64_t u = 0; u < 8; ++u)
    for (int64_t v = 0; v < 8; ++v) {
      if (v / 2 < u / 2) EXPECT_EQ(w_h[u * 8 + v], 0.0f) << u << "," << v;
      moved += v / 2 >= u / 2 && rnn.layer_gradients(0).w_h[u * 8 + v] != 0.0f;
    }
  EXPECT_EQ(moved, 40);
}

void expect_error(const ClockworkConfig& c, const std::string& part) {
  try {
    c.validate();
    ADD_FAILURE() << "no error for " << part;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

TEST(Clockwork, BadConfigsAndCallsAreErrors) {
  const ClockworkConfig good{3, 12, {1, 2, 4}, 0, 1};
  EXPECT_NO_THROW(good.validate());
  ClockworkConfig c = good;
  c.hidden_size = 10;
  expect_error(c, "hidden_size 10 must be divisible by the module count 3");
  c = good, c.periods = {1, 0, 4};
  expect_error(c, "periods[1] must be positive, got 0");
  c = good, c.periods = {1, 4, 2};
  expect_error(c, "periods[2] = 2 after 4");
  c = good, c.num_modules = 4;
  expect_error(c, "num_modules 4 does not match the 3 periods");
  c = good, c.periods = {};
  expect_error(c, "num_modules must be positive when no periods are given");
  c = good, c.periods = {}, c.num_modules = 26;
  expect_error(c, "num_modules 26");
  c = good, c.periods = {4093, 4096, 4099};
  expect_error(c, "lcm(periods) exceeds 2^24");
  c = good, c.input_size = 0;
  expect_error(c, "input_size must be positive, got 0");
  c = good, c.num_layers = 0;
  expect_error(c, "num_layers must be positive, got 0");

  ClockworkRnn rnn(good, 1);
  std::vector<Tensor> state = rnn.zero_state(2);
  const Tensor x({4, 2, 3});
  EXPECT_THROW(rnn.backward(Tensor({4, 2, 12})), Error);  // no forward_train yet
  state.back()[1] = 2.5f;
  EXPECT_THROW(rnn.forward(x, state, {}), Error);
  state = rnn.zero_state(2);
  const std::vector<int64_t> too_long{4, 5};
  EXPECT_THROW(rnn.forward(x, state, too_long), Error);
  std::vector<Tensor> short_state(state.begin(), state.end() - 1);
  EXPECT_THROW(rnn.forward(x, short_state, {}), Error);
  EXPECT_THROW(rnn.forward(Tensor({4, 2, 5}), state, {}), Error);
}

}  // namespace
}  // namespace recur
