// The Grid LSTM (recur/grid_lstm.hpp) at the three levels:
//   ReferenceGridLstm*    the double reference (reference/grid_lstm_ref.hpp) against central differences:
//                         the block (N = 1..3, shared or not), the 1-LSTM, the 2-LSTM (time x depth)
//   FastVsRefGridLstm*    the float engine against the reference on random shapes (B = 1, tied, shared,
//                         unsorted lengths with 0), state carried across calls, dropout's backward
//   IndependentGridLstm*  a hand-computed block from the paper's equations in scalar code; a 1-dimensional
//                         block against the core's LSTM cell (same c, h = tanh(o c) instead of o tanh(c));
//                         tied = untied with equal layers, shared = unshared with equal dimensions
//   GridLstmErrors*       bad configurations and arguments throw recur::Error naming the thing
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "numeric_checks.hpp"
#include "recur/error.hpp"
#include "recur/grid_lstm.hpp"
#include "recur/rnn.hpp"
#include "reference/grid_lstm_ref.hpp"

namespace recur::ref {
namespace {

using Transforms = std::vector<GridTransformRef<double>>;

// Doubles that are exactly floats, so that the engine and the reference see the same numbers.
std::vector<double> draw(size_t count, double scale, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> uniform(-scale, scale);
  std::vector<double> out(count);
  for (double& v : out) v = static_cast<float>(uniform(rng));
  return out;
}

Tensor to_tensor(const Shape& shape, const std::vector<double>& values) {
  return Tensor(shape, std::vector<float>(values.begin(), values.end()));
}

std::vector<double> to_double(const Tensor& t) { return {t.values().begin(), t.values().end()}; }

// Every parameter of an engine drawn afresh (uniform in [-scale, scale]), gradients zeroed.
void randomize(const std::vector<Parameter>& parameters, double scale, std::mt19937_64& rng) {
  for (const Parameter& p : parameters) {
    const std::vector<double> v = draw(size_t(p.value->size()), scale, rng);
    std::copy(v.begin(), v.end(), p.value->data());
    p.grad->fill(0.0f);
  }
}

// Pairs (weight, bias) of parameters[first..] as reference transforms (values or gradients).
Transforms transforms_of(const std::vector<Parameter>& p, size_t first, bool grads) {
  Transforms out;
  for (size_t j = first; j + 1 < p.size(); j += 2)
    out.push_back(
        {to_double(grads ? *p[j].grad : *p[j].value), to_double(grads ? *p[j + 1].grad : *p[j + 1].value)});
  return out;
}

// An engine's parameters [weight_input, bias_input, (weight, bias)...] as a reference network.
GridNetworkRef<double> network_of(const std::vector<Parameter>& p, bool grads) {
  return {to_double(grads ? *p[0].grad : *p[0].value), to_double(grads ? *p[1].grad : *p[1].value),
          transforms_of(p, 2, grads)};
}

constexpr double kForwardTol = 2e-6;
constexpr double kGradientTol = 1e-5;

void expect_close(const std::vector<double>& actual, const std::vector<double>& expected, double tol,
                  const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  EXPECT_LE(scaled_error(actual, expected), tol) << what;
}

void expect_transforms_close(const Transforms& actual, const Transforms& expected, const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  for (size_t k = 0; k < actual.size(); ++k) {
    expect_close(actual[k].w, expected[k].w, kGradientTol, what + " dW transform " + std::to_string(k));
    expect_close(actual[k].b, expected[k].b, kGradientTol, what + " db transform " + std::to_string(k));
  }
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  return std::inner_product(a.begin(), a.end(), b.begin(), 0.0);
}

// ---- level 1: the reference against central differences ----

// Perturbs every entry of `values` (which `loss` reads) and compares with `analytic`.
void gradcheck(const std::string& name, std::vector<double>& values, const std::vector<double>& analytic,
               const std::function<double()>& loss) {
  ASSERT_EQ(values.size(), analytic.size()) << name;
  constexpr double eps = 1e-6;
  for (size_t j = 0; j < values.size(); ++j) {
    const double numeric = central_difference(values[j], eps, loss);
    EXPECT_NEAR(analytic[j], numeric, 1e-7 + 1e-6 * std::abs(numeric)) << name << "[" << j << "]";
  }
}

void gradcheck_transforms(const std::string& what, Transforms& values, const Transforms& analytic,
                          const std::function<double()>& loss) {
  for (size_t k = 0; k < values.size(); ++k) {
    gradcheck(what + " W" + std::to_string(k), values[k].w, analytic[k].w, loss);
    gradcheck(what + " b" + std::to_string(k), values[k].b, analytic[k].b, loss);
  }
}

TEST(ReferenceGridLstm, BlockGradientsMatchFiniteDifferences) {
  std::mt19937_64 rng(11);
  for (int64_t dims : {1, 2, 3})
    for (bool shared : {false, true}) {
      const int64_t d = 2, width = dims * d;
      const size_t count = shared ? 1 : size_t(dims);
      Transforms transforms;
      for (size_t k = 0; k < count; ++k)
        transforms.push_back({draw(size_t(4 * d * width), 0.8, rng), draw(size_t(4 * d), 0.8, rng)});
      std::vector<size_t> use;
      for (int64_t k = 0; k < dims; ++k) use.push_back(shared ? 0 : size_t(k));
      std::vector<double> h = draw(size_t(width), 1.0, rng), m = draw(size_t(width), 1.5, rng);
      const std::vector<double> r_h = draw(size_t(width), 1.0, rng), r_m = draw(size_t(width), 1.0, rng);
      const auto loss = [&] {
        const GridBlockRowRef<double> s = grid_block_forward_ref(dims, d, transforms, use, h, m);
        return dot(s.h_out, r_h) + dot(s.m_out, r_m);
      };
      Transforms grads = grid_zero_transforms_ref<double>(count, dims, d);
      std::vector<double> dh, dm;
      grid_block_backward_ref(dims, d, transforms, use,
                              grid_block_forward_ref(dims, d, transforms, use, h, m), r_h, r_m, grads, dh,
                              dm);
      const std::string what = "N=" + std::to_string(dims) + (shared ? " shared" : "");
      gradcheck_transforms(what, transforms, grads, loss);
      gradcheck(what + " h", h, dh, loss);
      gradcheck(what + " m", m, dm, loss);
    }
}

TEST(ReferenceGridLstm, OneDimensionalGradientsMatchFiniteDifferences) {
  std::mt19937_64 rng(12);
  for (bool tied : {false, true}) {
    const GridLstm1dConfig c{3, 2, 3, tied};
    const int64_t B = 2;
    GridNetworkRef<double> p{draw(size_t(2 * 2 * 3), 0.8, rng), draw(4, 0.5, rng), {}};
    for (int64_t l = 0; l < (tied ? 1 : c.num_layers); ++l)
      p.transforms.push_back({draw(16, 0.9, rng), draw(8, 0.9, rng)});
    std::vector<double> x = draw(size_t(B * c.input_size), 1.0, rng);
    const std::vector<double> r = draw(size_t(B * c.hidden_size), 1.0, rng);
    const auto loss = [&] { return dot(grid1d_forward_ref(c, p, x, B).y, r); };
    GridNetworkRef<double> g = grid_zero_network_ref(p);
    std::vector<double> dx;
    grid1d_backward_ref(c, p, x, grid1d_forward_ref(c, p, x, B), r, g, dx);
    const std::string what = tied ? "tied 1-LSTM" : "1-LSTM";
    gradcheck(what + " w_in", p.w_in, g.w_in, loss);
    gradcheck(what + " b_in", p.b_in, g.b_in, loss);
    gradcheck_transforms(what, p.transforms, g.transforms, loss);
    gradcheck(what + " x", x, dx, loss);
  }
}

TEST(ReferenceGridLstm, TimeDepthGradientsMatchFiniteDifferences) {
  std::mt19937_64 rng(13);
  for (const auto& [tied, shared] :
       std::vector<std::pair<bool, bool>>{{false, false}, {true, false}, {false, true}}) {
    const GridLstmConfig c{2, 2, 2, tied, shared};
    const int64_t T = 3, B = 3, H = c.hidden_size, L = c.num_layers;
    const std::vector<int64_t> lengths{2, 0, 3};
    GridNetworkRef<double> p{draw(size_t(2 * H * c.input_size), 0.8, rng), draw(size_t(2 * H), 0.5, rng), {}};
    const size_t count = size_t((tied ? 1 : L) * (shared ? 1 : 2));
    for (size_t k = 0; k < count; ++k)
      p.transforms.push_back({draw(size_t(8 * H * H), 0.8, rng), draw(size_t(4 * H), 0.8, rng)});
    std::vector<double> x = draw(size_t(T * B * c.input_size), 1.0, rng);
    std::vector<double> h0 = draw(size_t(L * B * H), 0.8, rng), m0 = draw(size_t(L * B * H), 1.0, rng);
    const std::vector<double> r_y = draw(size_t(T * B * H), 1.0, rng), r_h = draw(h0.size(), 1.0, rng),
                              r_m = draw(h0.size(), 1.0, rng);
    const auto loss = [&] {
      const Grid2dForwardRef<double> f = grid2d_forward_ref(c, p, x, T, B, lengths, h0, m0);
      return dot(f.y, r_y) + dot(f.h_n, r_h) + dot(f.m_n, r_m);
    };
    Grid2dGradientsRef<double> g{grid_zero_network_ref(p)};
    grid2d_backward_ref(c, p, x, T, B, grid2d_forward_ref(c, p, x, T, B, lengths, h0, m0), r_y, r_h, r_m, g);
    const std::string what = std::string("2-LSTM") + (tied ? " tied" : "") + (shared ? " shared" : "");
    gradcheck(what + " w_in", p.w_in, g.params.w_in, loss);
    gradcheck(what + " b_in", p.b_in, g.params.b_in, loss);
    gradcheck_transforms(what, p.transforms, g.params.transforms, loss);
    gradcheck(what + " x", x, g.dx, loss);
    gradcheck(what + " h0", h0, g.dh0, loss);
    gradcheck(what + " m0", m0, g.dm0, loss);
  }
}

// ---- level 2: the float engine against the reference ----

TEST(FastVsRefGridLstm, BlockMatchesReference) {
  std::mt19937_64 rng(21);
  for (int64_t dims : {1, 2, 3})
    for (bool shared : {false, true})
      for (int64_t B : {1, 4}) {
        const int64_t d = dims == 2 ? 5 : 3, width = dims * d;
        GridBlock block({dims, d, shared}, 7);
        randomize(block.parameters(), 0.6, rng);
        const std::vector<double> h = draw(size_t(B * width), 1.0, rng),
                                  m = draw(size_t(B * width), 1.5, rng);
        const std::vector<double> dh_out = draw(h.size(), 1.0, rng), dm_out = draw(h.size(), 1.0, rng);
        const GridBlock::State out = block.forward_train(to_tensor({B, width}, h), to_tensor({B, width}, m));
        const GridBlock::State in =
            block.backward(to_tensor({B, width}, dh_out), to_tensor({B, width}, dm_out));
        const Transforms transforms = transforms_of(block.parameters(), 0, false);
        Transforms grads = grid_zero_transforms_ref<double>(transforms.size(), dims, d);
        std::vector<size_t> use;
        for (int64_t k = 0; k < dims; ++k) use.push_back(shared ? 0 : size_t(k));
        std::vector<double> h_out, m_out, dh, dm;
        for (int64_t r = 0; r < B; ++r) {
          const auto row = [&](const std::vector<double>& v) {
            return std::vector<double>(v.begin() + r * width, v.begin() + (r + 1) * width);
          };
          const GridBlockRowRef<double> s = grid_block_forward_ref(dims, d, transforms, use, row(h), row(m));
          h_out.insert(h_out.end(), s.h_out.begin(), s.h_out.end());
          m_out.insert(m_out.end(), s.m_out.begin(), s.m_out.end());
          std::vector<double> dh_row, dm_row;
          grid_block_backward_ref(dims, d, transforms, use, s, row(dh_out), row(dm_out), grads, dh_row,
                                  dm_row);
          dh.insert(dh.end(), dh_row.begin(), dh_row.end());
          dm.insert(dm.end(), dm_row.begin(), dm_row.end());
        }
        const std::string what =
            "N=" + std::to_string(dims) + " B=" + std::to_string(B) + (shared ? " shared" : "");
        expect_close(to_double(out.h), h_out, kForwardTol, what + " h'");
        expect_close(to_double(out.m), m_out, kForwardTol, what + " m'");
        expect_close(to_double(in.h), dh, kGradientTol, what + " dh");
        expect_close(to_double(in.m), dm, kGradientTol, what + " dm");
        expect_transforms_close(transforms_of(block.parameters(), 0, true), grads, what);
      }
}

TEST(FastVsRefGridLstm, OneDimensionalMatchesReference) {
  std::mt19937_64 rng(22);
  for (const GridLstm1dConfig& c :
       {GridLstm1dConfig{5, 4, 1, false}, GridLstm1dConfig{3, 7, 4, false}, GridLstm1dConfig{6, 3, 5, true}})
    for (int64_t B : {1, 5}) {
      GridLstm1d net(c, 3);
      randomize(net.parameters(), 0.5, rng);
      const std::vector<double> x = draw(size_t(B * c.input_size), 1.0, rng),
                                dy = draw(size_t(B * c.hidden_size), 1.0, rng);
      const Tensor y = net.forward_train(to_tensor({B, c.input_size}, x));
      const Tensor dx = net.backward(to_tensor({B, c.hidden_size}, dy));
      const GridNetworkRef<double> p = network_of(net.parameters(), false);
      const Grid1dForwardRef<double> f = grid1d_forward_ref(c, p, x, B);
      GridNetworkRef<double> g = grid_zero_network_ref(p);
      std::vector<double> dx_ref;
      grid1d_backward_ref(c, p, x, f, dy, g, dx_ref);
      const std::string what =
          "L=" + std::to_string(c.num_layers) + " B=" + std::to_string(B) + (c.tie_weights ? " tied" : "");
      expect_close(to_double(y), f.y, kForwardTol, what + " y");
      expect_close(to_double(net.forward(to_tensor({B, c.input_size}, x))), f.y, kForwardTol,
                   what + " inference y");
      expect_close(to_double(dx), dx_ref, kGradientTol, what + " dx");
      const GridNetworkRef<double> fast = network_of(net.parameters(), true);
      expect_close(fast.w_in, g.w_in, kGradientTol, what + " dW_in");
      expect_close(fast.b_in, g.b_in, kGradientTol, what + " db_in");
      expect_transforms_close(fast.transforms, g.transforms, what);
    }
}

struct TimeDepthCase {
  GridLstmConfig config;
  int64_t steps, batch;
  std::vector<int64_t> lengths;  // empty: all T
  bool random_state;
};

TEST(FastVsRefGridLstm, TimeDepthMatchesReference) {
  std::mt19937_64 rng(23);
  const std::vector<TimeDepthCase> cases{
      {{3, 4, 2, false, false}, 5, 1, {}, true},        {{2, 3, 3, true, false}, 4, 4, {4, 0, 2, 3}, true},
      {{5, 5, 1, false, true}, 1, 3, {1, 0, 1}, false}, {{4, 6, 2, true, true}, 7, 5, {3, 7, 0, 7, 1}, true},
      {{2, 2, 2, false, false}, 3, 1, {0}, true},
  };
  for (const TimeDepthCase& k : cases) {
    const GridLstmConfig& c = k.config;
    const int64_t T = k.steps, B = k.batch, H = c.hidden_size, L = c.num_layers, I = c.input_size;
    GridLstm net(c, 5);
    randomize(net.parameters(), 0.5, rng);
    const std::vector<double> x = draw(size_t(T * B * I), 1.0, rng), dy = draw(size_t(T * B * H), 1.0, rng);
    const std::vector<double> h0 =
        k.random_state ? draw(size_t(L * B * H), 0.8, rng) : std::vector<double>(size_t(L * B * H));
    const std::vector<double> m0 =
        k.random_state ? draw(size_t(L * B * H), 1.0, rng) : std::vector<double>(size_t(L * B * H));
    std::vector<Tensor> state{to_tensor({L, B, H}, h0), to_tensor({L, B, H}, m0)};
    std::mt19937_64 dropout_rng(1);
    const Tensor y = net.forward_train(to_tensor({T, B, I}, x), state, k.lengths, 0.0f, dropout_rng);
    std::vector<Tensor> d_state;
    const Tensor dx = net.backward(to_tensor({T, B, H}, dy), &d_state);

    const std::vector<int64_t> lengths = k.lengths.empty() ? std::vector<int64_t>(size_t(B), T) : k.lengths;
    const GridNetworkRef<double> p = network_of(net.parameters(), false);
    const Grid2dForwardRef<double> f = grid2d_forward_ref(c, p, x, T, B, lengths, h0, m0);
    Grid2dGradientsRef<double> g{grid_zero_network_ref(p)};
    const std::vector<double> zero(size_t(L * B * H), 0.0);
    grid2d_backward_ref(c, p, x, T, B, f, dy, zero, zero, g);

    const std::string what = "I=" + std::to_string(I) + " H=" + std::to_string(H) +
                             " L=" + std::to_string(L) + " T=" + std::to_string(T) +
                             " B=" + std::to_string(B) + (c.tie_weights ? " tied" : "") +
                             (c.share_dimensions ? " shared" : "");
    expect_close(to_double(y), f.y, kForwardTol, what + " y");
    expect_close(to_double(state[0]), f.h_n, kForwardTol, what + " h_n");
    expect_close(to_double(state[1]), f.m_n, kForwardTol, what + " m_n");
    expect_close(to_double(dx), g.dx, kGradientTol, what + " dx");
    ASSERT_EQ(d_state.size(), 2u) << what;
    expect_close(to_double(d_state[0]), g.dh0, kGradientTol, what + " dh0");
    expect_close(to_double(d_state[1]), g.dm0, kGradientTol, what + " dm0");
    const GridNetworkRef<double> fast = network_of(net.parameters(), true);
    expect_close(fast.w_in, g.params.w_in, kGradientTol, what + " dW_in");
    expect_close(fast.b_in, g.params.b_in, kGradientTol, what + " db_in");
    expect_transforms_close(fast.transforms, g.params.transforms, what);

    // Inference gives the same outputs and states.
    std::vector<Tensor> state2{to_tensor({L, B, H}, h0), to_tensor({L, B, H}, m0)};
    expect_close(to_double(net.forward(to_tensor({T, B, I}, x), state2, k.lengths)), f.y, kForwardTol,
                 what + " inference");
    expect_close(to_double(state2[0]), f.h_n, kForwardTol, what + " inference h_n");
  }
}

TEST(FastVsRefGridLstm, StateCarriedAcrossTwoCallsEqualsOneCall) {
  std::mt19937_64 rng(24);
  const GridLstmConfig c{3, 4, 3, true, false};
  const int64_t T1 = 3, T2 = 4, B = 2, I = c.input_size;
  GridLstm net(c, 9);
  const std::vector<double> x = draw(size_t((T1 + T2) * B * I), 1.0, rng);
  std::vector<Tensor> whole = net.zero_state(B), split = net.zero_state(B);
  const Tensor y = net.forward(to_tensor({T1 + T2, B, I}, x), whole, {});
  const Tensor y1 = net.forward(to_tensor({T1, B, I}, {x.begin(), x.begin() + T1 * B * I}), split, {});
  const Tensor y2 = net.forward(to_tensor({T2, B, I}, {x.begin() + T1 * B * I, x.end()}), split, {});
  std::vector<double> joined = to_double(y1), second = to_double(y2);
  joined.insert(joined.end(), second.begin(), second.end());
  expect_close(joined, to_double(y), 1e-6, "y");
  expect_close(to_double(split[0]), to_double(whole[0]), 1e-6, "h_n");
  expect_close(to_double(split[1]), to_double(whole[1]), 1e-6, "m_n");
}

// With dropout the masks come from the rng: the same seed gives the same masks, so the loss is a function
// of the weights and its directional derivative can be checked in float with a wide step.
TEST(FastVsRefGridLstm, DropoutBackwardMatchesDirectionalDerivative) {
  std::mt19937_64 rng(25);
  const GridLstmConfig c{3, 5, 3, false, false};
  const int64_t T = 4, B = 3, I = c.input_size;
  GridLstm net(c, 2);
  const Tensor x = to_tensor({T, B, I}, draw(size_t(T * B * I), 1.0, rng));
  const std::vector<double> r = draw(size_t(T * B * c.hidden_size), 1.0, rng);
  const std::vector<int64_t> lengths{4, 2, 3};
  const auto loss = [&] {
    std::vector<Tensor> state = net.zero_state(B);
    std::mt19937_64 masks(77);
    return dot(to_double(net.forward_train(x, state, lengths, 0.4f, masks)), r);
  };
  loss();
  net.backward(to_tensor({T, B, c.hidden_size}, r));
  const std::vector<Parameter> parameters = net.parameters();
  double analytic = 0;
  std::vector<std::vector<double>> direction;
  for (const Parameter& p : parameters) {
    direction.push_back(draw(size_t(p.value->size()), 1.0, rng));
    analytic += dot(direction.back(), to_double(*p.grad));
  }
  const auto shift = [&](double eps) {
    for (size_t j = 0; j < parameters.size(); ++j)
      for (int64_t q = 0; q < parameters[j].value->size(); ++q)
        (*parameters[j].value)[q] += float(eps * direction[j][size_t(q)]);
  };
  const double eps = 1e-3;
  shift(eps);
  const double plus = loss();
  shift(-2 * eps);
  const double minus = loss();
  shift(eps);
  EXPECT_NEAR((plus - minus) / (2 * eps), analytic, 2e-2 * (1 + std::abs(analytic)));
}

// ---- level 3: independent checks ----

double sigmoid(double v) { return 1 / (1 + std::exp(-v)); }

// N = 2, d = 1: every number written out, the paper's equations in scalar form.
TEST(IndependentGridLstm, HandComputedTinyBlock) {
  GridBlock block({2, 1, false}, 1);
  // Transform k: rows i, f, g, o; columns multiply h_1, h_2.
  const float w[2][4][2] = {{{0.5f, -0.25f}, {0.75f, 0.125f}, {-0.5f, 1.0f}, {0.25f, 0.5f}},
                            {{-0.375f, 0.625f}, {0.25f, -0.75f}, {1.25f, 0.5f}, {-0.5f, 0.25f}}};
  const float b[2][4] = {{0.1f, 0.5f, -0.2f, 0.3f}, {-0.1f, 1.0f, 0.2f, 0.0f}};
  for (int k = 0; k < 2; ++k) {
    Tensor& weight = block.transforms()[size_t(k)].weight;
    for (int q = 0; q < 4; ++q) {
      weight[q * 2] = w[k][q][0], weight[q * 2 + 1] = w[k][q][1];
      block.transforms()[size_t(k)].bias[q] = b[k][q];
    }
  }
  const double h1 = 0.6, h2 = -0.4, m1 = 0.9, m2 = -1.2;
  const GridBlock::State out =
      block.forward(Tensor({1, 2}, {float(h1), float(h2)}), Tensor({1, 2}, {float(m1), float(m2)}));
  const double m_in[2] = {m1, m2};
  for (int k = 0; k < 2; ++k) {
    const double in_gate = sigmoid(w[k][0][0] * h1 + w[k][0][1] * h2 + b[k][0]);
    const double forget = sigmoid(w[k][1][0] * h1 + w[k][1][1] * h2 + b[k][1]);
    const double candidate = std::tanh(w[k][2][0] * h1 + w[k][2][1] * h2 + b[k][2]);
    const double out_gate = sigmoid(w[k][3][0] * h1 + w[k][3][1] * h2 + b[k][3]);
    const double memory = forget * m_in[k] + in_gate * candidate;
    EXPECT_NEAR(out.m[k], memory, 1e-6) << "m'_" << k + 1;
    EXPECT_NEAR(out.h[k], std::tanh(out_gate * memory), 1e-6) << "h'_" << k + 1;
  }
}

// A block with one dimension is one LSTM step on its own h (no x): the core's LSTM (recur::Rnn, checked
// against PyTorch elsewhere) with W_h = W, b_h = b, x = 0, h0 = h, c0 = m gives c = m' exactly, and its
// output o tanh(c) gives o, from which h' = tanh(o m').
TEST(IndependentGridLstm, OneDimensionalBlockIsAnLstmStepWithTanhOfProduct) {
  std::mt19937_64 rng(31);
  const int64_t d = 6, B = 3;
  GridBlock block({1, d, false}, 4);
  randomize(block.parameters(), 0.7, rng);
  RnnConfig rc{CellSpec::lstm(), 1, d, 1};
  RnnParameters rp = RnnParameters::zeros(rc);
  rp.layers[0].w_h = block.transforms()[0].weight;
  rp.layers[0].b_h = block.transforms()[0].bias;
  const Rnn lstm(rc, rp);
  const Tensor h = to_tensor({B, d}, draw(size_t(B * d), 1.0, rng)),
               m = to_tensor({B, d}, draw(size_t(B * d), 2.0, rng));
  const GridBlock::State out = block.forward(h, m);
  Tensor h0 = h, c0 = m;
  h0.reshape({1, B, d}), c0.reshape({1, B, d});
  SequenceOptions options;
  options.h0 = &h0, options.c0 = &c0;
  const RnnOutput r = lstm.forward(Tensor({1, B, 1}), options);
  int checked = 0;
  for (int64_t j = 0; j < B * d; ++j) {
    EXPECT_NEAR(out.m[j], r.final_state.c[j], 1e-6) << j;
    const double c = r.final_state.c[j];
    if (std::abs(std::tanh(c)) < 0.05) continue;  // o = y / tanh(c) is ill-conditioned there
    const double o = r.y[j] / std::tanh(c);
    EXPECT_NEAR(out.h[j], std::tanh(o * c), 1e-5) << j;
    ++checked;
  }
  EXPECT_GT(checked, B * d / 2);
}

// Tied layers are untied layers that happen to be equal: same outputs, and the tied gradient is the sum
// of the untied layers' gradients. Likewise one shared transform is two equal ones.
TEST(IndependentGridLstm, TiedAndSharedEqualUntiedWithEqualCopies) {
  std::mt19937_64 rng(32);
  const int64_t T = 3, B = 2, I = 3, H = 4, L = 3;
  for (bool share : {false, true}) {
    GridLstm tied({I, H, L, !share, share}, 1), untied({I, H, L, false, false}, 2);
    randomize(tied.parameters(), 0.5, rng);
    untied.input_weight() = tied.input_weight(), untied.input_bias() = tied.input_bias();
    for (size_t j = 0; j < untied.transforms().size(); ++j)
      untied.transforms()[j] = tied.transforms()[share ? j / 2 : j % 2];
    const Tensor x = to_tensor({T, B, I}, draw(size_t(T * B * I), 1.0, rng));
    const Tensor dy = to_tensor({T, B, H}, draw(size_t(T * B * H), 1.0, rng));
    std::vector<Tensor> s1 = tied.zero_state(B), s2 = untied.zero_state(B);
    std::mt19937_64 unused(0);
    const Tensor y1 = tied.forward_train(x, s1, {}, 0.0f, unused),
                 y2 = untied.forward_train(x, s2, {}, 0.0f, unused);
    expect_close(to_double(y1), to_double(y2), 1e-6, share ? "shared y" : "tied y");
    const Tensor dx1 = tied.backward(dy), dx2 = untied.backward(dy);
    expect_close(to_double(dx1), to_double(dx2), 1e-5, share ? "shared dx" : "tied dx");
    const std::vector<Parameter> p1 = tied.parameters(), p2 = untied.parameters();
    expect_close(to_double(*p1[0].grad), to_double(*p2[0].grad), 1e-5, "dW_in");
    expect_close(to_double(*p1[1].grad), to_double(*p2[1].grad), 1e-5, "db_in");
    for (size_t j = 2; j < p1.size(); ++j) {  // each tied tensor's gradient = the sum over its copies'
      std::vector<double> sum(size_t(p1[j].grad->size()), 0.0);
      for (size_t q = 2; q < p2.size(); ++q) {
        const size_t copy_of = 2 + (share ? ((q - 2) / 4) * 2 + (q - 2) % 2 : (q - 2) % 4);
        if (copy_of != j) continue;
        for (size_t e = 0; e < sum.size(); ++e) sum[e] += (*p2[q].grad)[int64_t(e)];
      }
      expect_close(to_double(*p1[j].grad), sum, 1e-5, p1[j].name);
    }
  }
}

// ---- arguments ----

template <typename F>
void expect_error_mentioning(F&& f, const std::string& fragment) {
  try {
    f();
    ADD_FAILURE() << "no recur::Error; expected one mentioning '" << fragment << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(GridLstmErrors, BadConfigsAndArgumentsThrow) {
  expect_error_mentioning([] { GridLstm({0, 4, 2}, 1); }, "input_size");
  expect_error_mentioning([] { GridLstm({3, 0, 2}, 1); }, "hidden_size");
  expect_error_mentioning([] { GridLstm({3, 4, 0}, 1); }, "num_layers");
  expect_error_mentioning([] { GridLstm1d({3, 4, -1}, 1); }, "num_layers");
  expect_error_mentioning([] { GridBlock({0, 4}, 1); }, "dimensions");
  GridLstm net({3, 4, 2}, 1);
  EXPECT_EQ(net.kind(), "gridlstm");
  std::vector<Tensor> state = net.zero_state(2);
  std::mt19937_64 rng(0);
  expect_error_mentioning([&] { net.backward(Tensor({1, 2, 4})); }, "no forward_train");
  expect_error_mentioning([&] { net.forward(Tensor({5, 2, 4}), state, {}); }, "I = 3");
  std::vector<Tensor> wrong = net.zero_state(3);
  expect_error_mentioning([&] { net.forward(Tensor({5, 2, 3}), wrong, {}); }, "state h");
  const std::vector<int64_t> too_long{6, 1}, too_few{5};
  expect_error_mentioning([&] { net.forward(Tensor({5, 2, 3}), state, too_long); }, "lengths[0] = 6");
  expect_error_mentioning([&] { net.forward(Tensor({5, 2, 3}), state, too_few); }, "one per sequence");
  expect_error_mentioning([&] { net.forward_train(Tensor({5, 2, 3}), state, {}, 1.0f, rng); }, "dropout");
  net.forward_train(Tensor({5, 2, 3}), state, {}, 0.0f, rng);
  expect_error_mentioning([&] { net.backward(Tensor({5, 2, 3})); }, "dy");
  GridLstm1d deep({3, 4, 2}, 1);
  expect_error_mentioning([&] { deep.forward(Tensor({2, 4})); }, "gridlstm1d input x");
  GridBlock block({2, 3}, 1);
  expect_error_mentioning([&] { block.forward(Tensor({2, 5}), Tensor({2, 5})); }, "N*d = 6");
}

TEST(GridLstmErrors, ParameterNamesFollowTheLayout) {
  std::vector<std::string> names;
  GridLstm untied({3, 4, 2}, 1);
  for (const Parameter& p : untied.parameters()) names.push_back(p.name);
  EXPECT_EQ(names,
            (std::vector<std::string>{"gridlstm.weight_input", "gridlstm.bias_input", "gridlstm.weight_l0_d0",
                                      "gridlstm.bias_l0_d0", "gridlstm.weight_l0_d1", "gridlstm.bias_l0_d1",
                                      "gridlstm.weight_l1_d0", "gridlstm.bias_l1_d0", "gridlstm.weight_l1_d1",
                                      "gridlstm.bias_l1_d1"}));
  GridLstm tied_shared({3, 4, 5, true, true}, 1);
  EXPECT_EQ(tied_shared.parameters().size(), 4u);
  EXPECT_EQ(tied_shared.parameters()[2].name, "gridlstm.weight_l0_d0");
  EXPECT_EQ(tied_shared.parameters()[2].value->shape(), (Shape{16, 8}));
}

}  // namespace
}  // namespace recur::ref
