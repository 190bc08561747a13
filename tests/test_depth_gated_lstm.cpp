// The depth-gated LSTM (recur/depth_gated_lstm.hpp), at every level:
//   ReferenceDepthGated*    the double reference (reference/depth_gated_lstm_ref.hpp) vs central finite
//                           differences, for every parameter, x, h0 and c0
//   FastVsRefDepthGated*    the float engine vs the reference on random shapes; state carried across calls;
//                           dropout's gradient; names, initialisation; argument errors
//   IndependentDepthGated*  a second implementation written from the paper's equations unit by unit, and the
//                           identity "depth gate shut (d = 0) = recur::Rnn's peephole LSTM stack"
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "numeric_checks.hpp"
#include "recur/depth_gated_lstm.hpp"
#include "recur/error.hpp"
#include "recur/rnn.hpp"
#include "reference/depth_gated_lstm_ref.hpp"

namespace recur::ref {
namespace {

using Params = DepthGatedParamsRef<double>;

std::vector<double> uniform_values(size_t count, double scale, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> uniform(-scale, scale);
  std::vector<double> out(count);
  for (double& v : out) v = uniform(rng);
  return out;
}

// Doubles that are exactly floats, so that the engine and the reference see the same numbers.
std::vector<double> float_values(size_t count, double scale, std::mt19937_64& rng) {
  std::vector<double> out = uniform_values(count, scale, rng);
  for (double& v : out) v = static_cast<float>(v);
  return out;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double sum = 0;
  for (size_t j = 0; j < a.size(); ++j) sum += a[j] * b[j];
  return sum;
}

Tensor to_tensor(const Shape& shape, const std::vector<double>& values) {
  return Tensor(shape, std::vector<float>(values.begin(), values.end()));
}

std::vector<double> to_values(const Tensor& t) {
  return std::vector<double>(t.values().begin(), t.values().end());
}

// ---- Level 1: the reference against central finite differences ----

struct GradcheckCase {
  int64_t input_size, hidden_size, num_layers, steps;
  std::vector<int64_t> lengths;  // batch = lengths.size()
};

TEST(ReferenceDepthGated, GradientsMatchFiniteDifferences) {
  const GradcheckCase cases[] = {{3, 2, 3, 4, {4, 1, 0, 3}}, {2, 3, 2, 3, {3, 2}}, {2, 2, 1, 2, {2}}};
  std::mt19937_64 rng(11);
  double worst = 0;
  int64_t entries = 0;
  for (const GradcheckCase& c : cases) {
    const DepthGatedShapeRef shape{c.input_size, c.hidden_size, c.num_layers};
    const auto B = int64_t(c.lengths.size());
    const auto state_size = size_t(c.num_layers * B * c.hidden_size);
    Params params = random_depth_gated_parameters_ref<double>(shape, rng, 0.7);
    DepthGatedBatchRef<double> batch{c.steps,
                                     B,
                                     uniform_values(size_t(c.steps * B * c.input_size), 1.0, rng),
                                     c.lengths,
                                     uniform_values(state_size, 0.8, rng),
                                     uniform_values(state_size, 1.0, rng)};
    const std::vector<double> r_y = uniform_values(size_t(c.steps * B * c.hidden_size), 1.0, rng);
    const std::vector<double> r_h = uniform_values(state_size, 1.0, rng),
                              r_c = uniform_values(state_size, 1.0, rng);
    // L = sum(y R_y) + sum(h_n R_h) + sum(c_n R_c): its gradients are what backward is given.
    auto loss = [&] {
      const auto out = depth_gated_forward_ref(shape, params, batch);
      return dot(out.y, r_y) + dot(out.h_n, r_h) + dot(out.c_n, r_c);
    };
    auto grads = depth_gated_backward_ref(shape, params, batch, r_y, r_h, r_c);

    std::vector<std::pair<std::string, std::vector<double>*>> values;
    std::vector<std::vector<double>*> analytic;
    for_each_depth_gated_parameter_ref(params, [&](const std::string& n, std::vector<double>& v) {
      values.push_back({n, &v});
    });
    for_each_depth_gated_parameter_ref(
        grads.parameters, [&](const std::string&, std::vector<double>& v) { analytic.push_back(&v); });
    values.push_back({"x", &batch.x});
    values.push_back({"h0", &batch.h0});
    values.push_back({"c0", &batch.c0});
    analytic.push_back(&grads.dx);
    analytic.push_back(&grads.dh0);
    analytic.push_back(&grads.dc0);
    ASSERT_EQ(values.size(), analytic.size());
    constexpr double kEps = 1e-6;
    for (size_t k = 0; k < values.size(); ++k) {
      std::vector<double>& v = *values[k].second;
      ASSERT_EQ(v.size(), analytic[k]->size()) << values[k].first;
      for (size_t j = 0; j < v.size(); ++j) {
        const double numeric = central_difference(v[j], kEps, loss), expected = (*analytic[k])[j];
        worst = std::max(worst, std::abs(numeric - expected));
        ++entries;
        EXPECT_LE(std::abs(numeric - expected), 1e-7 + 1e-6 * std::abs(expected))
            << values[k].first << "[" << j << "]: finite difference " << numeric << ", backward " << expected;
      }
    }
  }
  std::printf("[dglstm gradcheck] %lld entries, largest |finite difference - backward| %.1e\n",
              static_cast<long long>(entries), worst);
}

// ---- Between the reference's parameters and the engine's, matched by name ----

void load_parameters(DepthGatedLstm& model, Params& params) {
  std::map<std::string, std::vector<double>*> by_name;
  for_each_depth_gated_parameter_ref(params,
                                     [&](const std::string& n, std::vector<double>& v) { by_name[n] = &v; });
  const std::vector<Parameter> list = model.parameters();
  ASSERT_EQ(list.size(), by_name.size());
  for (const Parameter& p : list) {
    ASSERT_TRUE(by_name.count(p.name)) << p.name;
    const std::vector<double>& v = *by_name[p.name];
    ASSERT_EQ(size_t(p.value->size()), v.size()) << p.name;
    std::copy(v.begin(), v.end(), p.value->data());
  }
}

void expect_close(const std::vector<double>& actual, const std::vector<double>& expected, double tol,
                  const std::string& what, double& worst) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  const double error = scaled_error(actual, expected);
  worst = std::max(worst, error);
  EXPECT_LE(error, tol) << what;
}

// Layer l's tensors of a [1, B, H]-per-layer state list stacked as [L, B, H] (even: h, odd: c).
std::vector<double> stacked_state(const std::vector<Tensor>& state, int which) {
  std::vector<double> out;
  for (size_t k = size_t(which); k < state.size(); k += 2)
    out.insert(out.end(), state[k].values().begin(), state[k].values().end());
  return out;
}

std::vector<Tensor> split_state(const std::vector<double>& h, const std::vector<double>& c, int64_t L,
                                int64_t B, int64_t H) {
  std::vector<Tensor> state;
  for (int64_t l = 0; l < L; ++l)
    for (const std::vector<double>* v : {&h, &c})
      state.push_back(
          to_tensor({1, B, H}, std::vector<double>(v->begin() + l * B * H, v->begin() + (l + 1) * B * H)));
  return state;
}

// ---- Level 2: the engine against the reference ----

struct FastCase {
  int64_t input_size, hidden_size, num_layers, steps, batch;
  std::vector<int64_t> lengths;  // empty: all T
  bool with_state;
};

constexpr double kForwardTol = 2e-6;
constexpr double kGradientTol = 1e-5;

void run_fast_case(const FastCase& c, uint64_t seed, double& forward_error, double& gradient_error) {
  std::mt19937_64 rng(seed);
  const int64_t L = c.num_layers, H = c.hidden_size, T = c.steps, B = c.batch, I = c.input_size;
  const DepthGatedShapeRef shape{I, H, L};
  Params params = random_depth_gated_parameters_ref<double>(shape, rng, 1.0 / std::sqrt(double(H)));
  for_each_depth_gated_parameter_ref(params, [](const std::string&, std::vector<double>& v) {
    for (double& value : v) value = static_cast<float>(value);
  });
  DepthGatedBatchRef<double> batch{T, B, float_values(size_t(T * B * I), 1.0, rng),
                                   c.lengths.empty() ? std::vector<int64_t>(size_t(B), T) : c.lengths};
  if (c.with_state) {
    batch.h0 = float_values(size_t(L * B * H), 0.8, rng);
    batch.c0 = float_values(size_t(L * B * H), 1.0, rng);
  }
  const std::vector<double> dy = float_values(size_t(T * B * H), 1.0, rng);
  const auto expected = depth_gated_forward_ref(shape, params, batch);
  const auto expected_grads = depth_gated_backward_ref(shape, params, batch, dy, {}, {});

  DepthGatedLstm model({I, H, L}, seed);
  load_parameters(model, params);
  const Tensor x = to_tensor({T, B, I}, batch.x);
  std::vector<Tensor> state = c.with_state ? split_state(batch.h0, batch.c0, L, B, H) : model.zero_state(B);
  std::vector<Tensor> inference_state = state;
  std::mt19937_64 dropout_rng(1);
  const Tensor y = model.forward_train(x, state, c.lengths, 0.0f, dropout_rng);
  const Tensor y_inference = model.forward(x, inference_state, c.lengths);
  EXPECT_EQ(to_values(y), to_values(y_inference)) << "forward_train (dropout 0) vs forward";
  ASSERT_EQ(y.shape(), (Shape{T, B, H}));
  expect_close(to_values(y), expected.y, kForwardTol, "y", forward_error);
  expect_close(stacked_state(state, 0), expected.h_n, kForwardTol, "h_n", forward_error);
  expect_close(stacked_state(state, 1), expected.c_n, kForwardTol, "c_n", forward_error);

  std::vector<Tensor> d_initial;
  const Tensor dx = model.backward(to_tensor({T, B, H}, dy), &d_initial);
  ASSERT_EQ(dx.shape(), x.shape());
  expect_close(to_values(dx), expected_grads.dx, kGradientTol, "dx", gradient_error);
  ASSERT_EQ(d_initial.size(), size_t(2 * L));
  expect_close(stacked_state(d_initial, 0), expected_grads.dh0, kGradientTol, "dh0", gradient_error);
  expect_close(stacked_state(d_initial, 1), expected_grads.dc0, kGradientTol, "dc0", gradient_error);
  std::map<std::string, std::vector<double>*> expected_by_name;
  Params expected_params = expected_grads.parameters;
  for_each_depth_gated_parameter_ref(
      expected_params, [&](const std::string& n, std::vector<double>& v) { expected_by_name[n] = &v; });
  for (const Parameter& p : model.parameters())
    expect_close(to_values(*p.grad), *expected_by_name.at(p.name), kGradientTol, "d " + p.name,
                 gradient_error);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = batch.lengths[size_t(b)]; t < T; ++t)
      for (int64_t k = 0; k < I; ++k) EXPECT_EQ(dx[(t * B + b) * I + k], 0.0f) << "dx past the end, b=" << b;
}

TEST(FastVsRefDepthGated, RandomShapesAgreeWithReference) {
  const FastCase cases[] = {
      {3, 5, 2, 4, 3, {}, false},                 // I != H, odd H
      {4, 4, 1, 1, 1, {}, true},                  // B = 1, T = 1, one layer
      {2, 7, 3, 6, 4, {3, 6, 0, 5}, true},        // 3 layers, unsorted lengths with a 0
      {5, 3, 2, 9, 2, {9, 4}, true},              // longer T
      {1, 1, 2, 3, 1, {2}, false},                // H = 1, I = 1, B = 1 shorter than T
      {6, 9, 3, 5, 6, {1, 5, 5, 0, 2, 3}, true},  // B > 4: the packed step products
      {8, 16, 2, 7, 5, {7, 7, 2, 6, 7}, false},   // H a multiple of the vector width
  };
  double forward = 0, gradient = 0;
  uint64_t seed = 100;
  for (const FastCase& c : cases) {
    SCOPED_TRACE("I=" + std::to_string(c.input_size) + " H=" + std::to_string(c.hidden_size) +
                 " L=" + std::to_string(c.num_layers) + " T=" + std::to_string(c.steps) +
                 " B=" + std::to_string(c.batch));
    run_fast_case(c, seed++, forward, gradient);
  }
  std::printf("[dglstm fast vs ref] largest scaled error: forward %.1e, gradient %.1e\n", forward, gradient);
}

Tensor slice_steps(const Tensor& x, int64_t begin, int64_t end) {
  const int64_t row = x.dim(1) * x.dim(2);
  Tensor out({end - begin, x.dim(1), x.dim(2)});
  std::copy(x.data() + begin * row, x.data() + end * row, out.data());
  return out;
}

TEST(FastVsRefDepthGated, StateCarriedAcrossTwoCallsEqualsOneCall) {
  const int64_t I = 3, H = 5, L = 3, T = 7, split = 3, B = 4;
  const std::vector<int64_t> lengths = {7, 2, 0, 5};
  std::mt19937_64 rng(5);
  DepthGatedLstm model({I, H, L}, 17);
  const Tensor x = to_tensor({T, B, I}, float_values(size_t(T * B * I), 1.0, rng));
  const std::vector<Tensor> initial = split_state(float_values(size_t(L * B * H), 0.8, rng),
                                                  float_values(size_t(L * B * H), 1.0, rng), L, B, H);

  std::vector<Tensor> whole_state = initial;
  const Tensor whole = model.forward(x, whole_state, lengths);
  std::vector<int64_t> first_lengths, second_lengths;
  for (int64_t len : lengths) {
    first_lengths.push_back(std::min(len, split));
    second_lengths.push_back(std::max<int64_t>(len - split, 0));
  }
  std::vector<Tensor> state = initial;
  const Tensor first = model.forward(slice_steps(x, 0, split), state, first_lengths);
  const Tensor second = model.forward(slice_steps(x, split, T), state, second_lengths);
  std::vector<double> joined = to_values(first), second_values = to_values(second);
  joined.insert(joined.end(), second_values.begin(), second_values.end());
  double worst = 0;
  // The GEMMs run on other row counts (and kernels) in the two calls: equal up to float rounding.
  expect_close(joined, to_values(whole), 1e-6, "y", worst);
  for (size_t k = 0; k < state.size(); ++k)
    expect_close(to_values(state[k]), to_values(whole_state[k]), 1e-6, "state " + std::to_string(k), worst);
  // The sequence of length 0 kept its initial state; y is 0 past each end.
  EXPECT_EQ(to_values(whole_state[0]).at(2 * H), initial[0][2 * H]);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t b = 0; b < B; ++b)
      if (t >= lengths[size_t(b)])
        for (int64_t j = 0; j < H; ++j) EXPECT_EQ(whole[(t * B + b) * H + j], 0.0f);
}

// Dropout: forward_train with a fixed rng is a deterministic function of the weights and x, so its
// directional derivative by central differences (in float, hence the loose tolerance) must equal what
// backward gives. A backward that ignored the masks would be off by a factor of about 2.
TEST(FastVsRefDepthGated, DropoutGradientMatchesDirectionalDifference) {
  const int64_t I = 3, H = 4, L = 3, T = 5, B = 3;
  const std::vector<int64_t> lengths = {5, 3, 4};
  std::mt19937_64 rng(8);
  DepthGatedLstm model({I, H, L}, 23);
  Tensor x = to_tensor({T, B, I}, float_values(size_t(T * B * I), 1.0, rng));
  const Tensor r = to_tensor({T, B, H}, float_values(size_t(T * B * H), 1.0, rng));
  const std::mt19937_64 dropout_rng(99);
  auto loss = [&] {
    std::vector<Tensor> state = model.zero_state(B);
    std::mt19937_64 masks = dropout_rng;
    return dot(to_values(model.forward_train(x, state, lengths, 0.5f, masks)), to_values(r));
  };
  std::vector<Tensor> state = model.zero_state(B);
  EXPECT_NE(loss(), dot(to_values(model.forward(x, state, lengths)), to_values(r)))
      << "dropout changed nothing";
  loss();
  const Tensor dx = model.backward(r);

  // A random direction v over every weight and x; the analytic derivative is sum(grad * v).
  std::vector<Tensor*> tensors{&x};
  std::vector<const Tensor*> grads{&dx};
  for (const Parameter& p : model.parameters()) {
    tensors.push_back(p.value);
    grads.push_back(p.grad);
  }
  std::vector<std::vector<double>> direction;
  double analytic = 0;
  for (size_t k = 0; k < tensors.size(); ++k) {
    direction.push_back(uniform_values(size_t(tensors[k]->size()), 1.0, rng));
    analytic += dot(to_values(*grads[k]), direction.back());
  }
  auto step_along = [&](double step) {
    for (size_t k = 0; k < tensors.size(); ++k)
      for (int64_t j = 0; j < tensors[k]->size(); ++j)
        (*tensors[k])[j] += float(step * direction[k][size_t(j)]);
  };
  const double eps = 1e-3;
  const std::vector<Tensor> saved = [&] {
    std::vector<Tensor> copy;
    for (Tensor* t : tensors) copy.push_back(*t);
    return copy;
  }();
  step_along(eps);
  const double plus = loss();
  for (size_t k = 0; k < tensors.size(); ++k) *tensors[k] = saved[k];
  step_along(-eps);
  const double minus = loss();
  const double numeric = (plus - minus) / (2 * eps);
  std::printf("[dglstm dropout] directional derivative: backward %.6f, central difference %.6f\n", analytic,
              numeric);
  EXPECT_NEAR(numeric, analytic, 1e-2 * (1 + std::abs(analytic)));
}

TEST(FastVsRefDepthGated, ParametersAreNamedShapedAndInitialised) {
  const int64_t I = 3, H = 4;
  DepthGatedLstm model({I, H, 3}, 7);
  const std::vector<std::pair<std::string, Shape>> expected = {
      {"dglstm.weight_ih_l0", {4 * H, I}},    {"dglstm.weight_hh_l0", {4 * H, H}},
      {"dglstm.bias_ih_l0", {4 * H}},         {"dglstm.bias_hh_l0", {4 * H}},
      {"dglstm.weight_peephole_l0", {3 * H}}, {"dglstm.weight_ih_l1", {5 * H, H}},
      {"dglstm.weight_hh_l1", {4 * H, H}},    {"dglstm.bias_ih_l1", {5 * H}},
      {"dglstm.bias_hh_l1", {4 * H}},         {"dglstm.weight_peephole_l1", {3 * H}},
      {"dglstm.weight_depth_l1", {2 * H}},    {"dglstm.weight_ih_l2", {5 * H, H}},
      {"dglstm.weight_hh_l2", {4 * H, H}},    {"dglstm.bias_ih_l2", {5 * H}},
      {"dglstm.bias_hh_l2", {4 * H}},         {"dglstm.weight_peephole_l2", {3 * H}},
      {"dglstm.weight_depth_l2", {2 * H}}};
  const std::vector<Parameter> list = model.parameters();
  ASSERT_EQ(list.size(), expected.size());
  DepthGatedLstm same({I, H, 3}, 7), other({I, H, 3}, 8);
  for (size_t k = 0; k < list.size(); ++k) {
    EXPECT_EQ(list[k].name, expected[k].first);
    EXPECT_EQ(list[k].value->shape(), expected[k].second) << list[k].name;
    EXPECT_EQ(list[k].grad->shape(), expected[k].second) << list[k].name;
    float largest = 0;
    for (float v : list[k].value->values()) largest = std::max(largest, std::abs(v));
    EXPECT_LE(largest, 1.0f / std::sqrt(float(H))) << list[k].name;
    EXPECT_GT(largest, 0.2f / std::sqrt(float(H))) << list[k].name << " looks unset";
    EXPECT_EQ(to_values(*list[k].value), to_values(*same.parameters()[k].value))
        << "same seed, " << list[k].name;
    EXPECT_NE(to_values(*list[k].value), to_values(*other.parameters()[k].value))
        << "other seed, " << list[k].name;
  }
  EXPECT_EQ(model.kind(), "dglstm");
  EXPECT_EQ(model.input_size(), I);
  EXPECT_EQ(model.output_size(), H);
}

TEST(FastVsRefDepthGated, SecondBackwardAccumulates) {
  const int64_t I = 2, H = 3, L = 2, T = 4, B = 2;
  std::mt19937_64 rng(3);
  DepthGatedLstm model({I, H, L}, 29);
  const Tensor x = to_tensor({T, B, I}, float_values(size_t(T * B * I), 1.0, rng));
  const Tensor dy = to_tensor({T, B, H}, float_values(size_t(T * B * H), 1.0, rng));
  std::vector<Tensor> state = model.zero_state(B);
  model.forward_train(x, state, std::vector<int64_t>{4, 3}, 0.0f, rng);
  const Tensor dx1 = model.backward(dy);
  std::vector<std::vector<double>> first;
  for (const Parameter& p : model.parameters()) first.push_back(to_values(*p.grad));
  const Tensor dx2 = model.backward(dy);
  EXPECT_EQ(to_values(dx1), to_values(dx2)) << "dx is overwritten, not accumulated";
  const std::vector<Parameter> list = model.parameters();
  for (size_t k = 0; k < list.size(); ++k) {
    std::vector<double> twice = first[k];
    for (double& v : twice) v *= 2;
    double worst = 0;
    expect_close(to_values(*list[k].grad), twice, 1e-6, "2 x d " + list[k].name, worst);
  }
}

// ---- Level 3: independent checks ----

TEST(IndependentDepthGated, PaperEquationsUnitByUnitAgree) {
  const int64_t I = 3, H = 4, L = 2, T = 5, B = 3;
  const std::vector<int64_t> lengths = {5, 2, 4};
  std::mt19937_64 rng(31);
  DepthGatedLstm model({I, H, L}, 41);
  const DepthGatedBatchRef<double> batch{T, B, float_values(size_t(T * B * I), 1.0, rng), lengths};
  // The engine's own weights, by name: the second implementation reads W_x*, W_h*, b_*, p_*, w_cd, w_ld
  // out of the documented layout.
  Params params = zero_depth_gated_parameters_ref<double>({I, H, L});
  std::map<std::string, const Tensor*> by_name;
  for (const Parameter& p : model.parameters()) by_name[p.name] = p.value;
  for_each_depth_gated_parameter_ref(
      params, [&](const std::string& n, std::vector<double>& v) { v = to_values(*by_name.at(n)); });
  const auto paper = depth_gated_paper_forward_ref({I, H, L}, params, batch);

  std::vector<Tensor> state = model.zero_state(B);
  const Tensor y = model.forward(to_tensor({T, B, I}, batch.x), state, lengths);
  double worst = 0;
  expect_close(to_values(y), paper.y, kForwardTol, "engine y vs paper", worst);
  expect_close(stacked_state(state, 0), paper.h_n, kForwardTol, "engine h_n vs paper", worst);
  expect_close(stacked_state(state, 1), paper.c_n, kForwardTol, "engine c_n vs paper", worst);
  // The reference, in double on the same weights: only the order of the sums differs.
  const auto reference = depth_gated_forward_ref({I, H, L}, params, batch);
  expect_close(reference.y, paper.y, 1e-12, "reference y vs paper", worst);
  expect_close(reference.h_n, paper.h_n, 1e-12, "reference h_n vs paper", worst);
  expect_close(reference.c_n, paper.c_n, 1e-12, "reference c_n vs paper", worst);
}

// With b_d = -10^4 the depth gate is shut (d < 1e-38; recur's sigmoid saturates instead of reaching 0): the
// stack is then recur's own peephole LSTM stack (recur::Rnn, src/cells/lstm_cell.cpp) on the same weights,
// forward and backward.
TEST(IndependentDepthGated, ShutDepthGateEqualsPeepholeLstmStack) {
  const int64_t I = 3, H = 5, L = 3, T = 4, B = 3;
  const std::vector<int64_t> lengths = {4, 0, 2};
  std::mt19937_64 rng(13);
  DepthGatedLstm model({I, H, L}, 43);
  RnnConfig config{CellSpec::peephole_lstm(), I, H, int(L), false};
  RnnParameters rnn_params = RnnParameters::zeros(config);
  for (int64_t l = 0; l < L; ++l) {
    DepthGatedLstm::LayerTensors& w = model.layers()[size_t(l)];
    if (l > 0) std::fill(w.bias_ih.data() + 4 * H, w.bias_ih.data() + 5 * H, -1e4f);
    LayerParameters& r = rnn_params.layers[size_t(l)];
    std::copy_n(w.weight_ih.data(), r.w_x.size(), r.w_x.data());  // rows i, f, g, o
    std::copy_n(w.bias_ih.data(), 4 * H, r.b_x.data());
    r.w_h = w.weight_hh;
    r.b_h = w.bias_hh;
    r.peephole = w.weight_peephole;
  }
  const Rnn rnn(config, rnn_params);
  const std::vector<double> h0 = float_values(size_t(L * B * H), 0.8, rng),
                            c0 = float_values(size_t(L * B * H), 1.0, rng);
  const Tensor x = to_tensor({T, B, I}, float_values(size_t(T * B * I), 1.0, rng));
  const Tensor dy = to_tensor({T, B, H}, float_values(size_t(T * B * H), 1.0, rng));

  std::vector<Tensor> state = split_state(h0, c0, L, B, H);
  const Tensor y = model.forward_train(x, state, lengths, 0.0f, rng);
  std::vector<Tensor> d_initial;
  const Tensor dx = model.backward(dy, &d_initial);

  const Tensor rnn_h0 = to_tensor({L, B, H}, h0), rnn_c0 = to_tensor({L, B, H}, c0);
  SequenceOptions options;
  options.lengths = lengths;
  options.h0 = &rnn_h0;
  options.c0 = &rnn_c0;
  Tape tape;
  const RnnOutput expected = rnn.forward(x, options, tape);
  RnnGradients grads;
  grads.parameters = RnnParameters::zeros(config);
  rnn.backward(tape, dy, RnnState{}, grads);

  double worst = 0;
  expect_close(to_values(y), to_values(expected.y), 1e-6, "y", worst);
  expect_close(stacked_state(state, 0), to_values(expected.final_state.h), 1e-6, "h_n", worst);
  expect_close(stacked_state(state, 1), to_values(expected.final_state.c), 1e-6, "c_n", worst);
  expect_close(to_values(dx), to_values(grads.dx), 1e-5, "dx", worst);
  expect_close(stacked_state(d_initial, 0), to_values(grads.initial_state.h), 1e-5, "dh0", worst);
  expect_close(stacked_state(d_initial, 1), to_values(grads.initial_state.c), 1e-5, "dc0", worst);
  const std::vector<Parameter> list = model.parameters();
  for (int64_t l = 0; l < L; ++l) {
    const LayerParameters& r = grads.parameters.layers[size_t(l)];
    auto grad = [&](const std::string& field) {
      for (const Parameter& p : list)
        if (p.name == "dglstm." + field + "_l" + std::to_string(l)) return to_values(*p.grad);
      ADD_FAILURE() << "no " << field;
      return std::vector<double>();
    };
    const std::vector<double> d_ih = grad("weight_ih"), db_ih = grad("bias_ih");
    const size_t gate_rows = size_t(4 * H * (l == 0 ? I : H));
    expect_close(std::vector<double>(d_ih.begin(), d_ih.begin() + gate_rows), to_values(r.w_x), 1e-5,
                 "d weight_ih i,f,g,o", worst);
    expect_close(std::vector<double>(db_ih.begin(), db_ih.begin() + 4 * H), to_values(r.b_x), 1e-5,
                 "d bias_ih", worst);
    expect_close(grad("weight_hh"), to_values(r.w_h), 1e-5, "d weight_hh", worst);
    expect_close(grad("bias_hh"), to_values(r.b_h), 1e-5, "d bias_hh", worst);
    expect_close(grad("weight_peephole"), to_values(r.peephole), 1e-5, "d weight_peephole", worst);
    if (l == 0) continue;
    // A shut gate passes (next to) no gradient to its own weights: d(1-d) < 1e-38.
    for (size_t k = gate_rows; k < d_ih.size(); ++k)
      EXPECT_LT(std::abs(d_ih[k]), 1e-30) << "d W_xd, layer " << l;
    for (size_t k = size_t(4 * H); k < db_ih.size(); ++k)
      EXPECT_LT(std::abs(db_ih[k]), 1e-30) << "d b_d, layer " << l;
    for (double v : grad("weight_depth")) EXPECT_LT(std::abs(v), 1e-30) << "d weight_depth, layer " << l;
  }
  std::printf("[dglstm shut gate vs peephole Rnn] largest scaled difference %.1e\n", worst);
}

// ---- Errors: named, with the value and the limit ----

void expect_error(const std::function<void()>& call, const std::vector<std::string>& parts) {
  try {
    call();
    ADD_FAILURE() << "no error; expected one naming " << parts.front();
  } catch (const Error& e) {
    for (const std::string& part : parts)
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos)
          << "'" << e.what() << "' lacks '" << part << "'";
  }
}

TEST(FastVsRefDepthGatedErrors, BadConfigsAndShapesAreNamed) {
  expect_error([] { DepthGatedLstmConfig{0, 4, 2}.validate(); }, {"input_size", "0", "at least 1"});
  expect_error([] { DepthGatedLstm({3, -2, 2}, 1); }, {"hidden_size", "-2", "at least 1"});
  expect_error([] { DepthGatedLstm({3, 4, 0}, 1); }, {"num_layers", "0", "at least 1"});

  DepthGatedLstm model({3, 4, 2}, 1);
  std::mt19937_64 rng(1);
  const Tensor x({5, 2, 3});
  std::vector<Tensor> state = model.zero_state(2);
  const std::vector<int64_t> none;
  expect_error([&] { model.backward(Tensor({5, 2, 4})); }, {"backward", "forward_train"});
  expect_error([&] { model.forward(Tensor({5, 3}), state, none); }, {"input x", "[5, 3]"});
  expect_error(
      [&] {
        model.forward(Tensor({5, 2, 4}), state, none);
      },
      {"input x", "input_size 3", "[5, 2, 4]"});
  expect_error([&] { model.forward(Tensor({0, 2, 3}), state, none); }, {"input x", "[0, 2, 3]"});
  expect_error([&] { model.forward(x, state, std::vector<int64_t>{5}); }, {"lengths", "(2)", "got 1"});
  expect_error([&] { model.forward(x, state, std::vector<int64_t>{5, 6}); }, {"lengths[1] = 6", "T = 5"});
  expect_error([&] { model.forward(x, state, std::vector<int64_t>{-1, 2}); }, {"lengths[0] = -1"});
  std::vector<Tensor> short_state(3, Tensor({1, 2, 4}));
  expect_error([&] { model.forward(x, short_state, none); }, {"state", "expected 4", "got 3"});
  std::vector<Tensor> wrong_state = model.zero_state(3);
  expect_error([&] { model.forward(x, wrong_state, none); },
               {"state h of layer 0", "[1, 2, 4]", "[1, 3, 4]"});
  expect_error([&] { model.forward_train(x, state, none, 1.0f, rng); }, {"dropout", "1.0", "[0, 1)"});
  expect_error([&] { model.zero_state(0); }, {"batch", "0"});
  model.forward_train(x, state, none, 0.0f, rng);
  expect_error([&] { model.backward(Tensor({5, 2, 3})); }, {"dy", "[5, 2, 4]", "[5, 2, 3]"});
}

}  // namespace
}  // namespace recur::ref
