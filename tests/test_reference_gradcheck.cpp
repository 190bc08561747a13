// Level 1: the double-precision reference (tests/reference/) against central finite differences, and
// against itself through identities that hold between cell variants.
//
// Loss: L = sum(y * R1) + sum(h_n * R2) + sum(c_n * R3) with fixed random R, so that
// dL/dy = R1, dL/dh_n = R2, dL/dc_n = R3 are what backward_ref is given.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "reference/reference_rnn.hpp"

namespace recur::ref {
namespace {

struct GradcheckCase {
  int64_t input_size;
  int64_t hidden_size;
  int num_layers;
  bool bidirectional;
  int64_t steps;
  std::vector<int64_t> lengths;  // batch = lengths.size()
  bool random_initial_state;     // else zeros (still perturbed, so d h0 is checked at 0 too)
};

struct Problem {
  RnnConfig config;
  RnnParametersRef<double> params;
  BatchRef<double> batch;
  std::vector<double> r_y, r_h, r_c;
};

std::vector<double> uniform_values(size_t count, double scale, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> uniform(-scale, scale);
  std::vector<double> out(count);
  for (double& v : out) v = uniform(rng);
  return out;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double sum = 0;
  for (size_t j = 0; j < a.size(); ++j) sum += a[j] * b[j];
  return sum;
}

double loss(const Problem& p) {
  const ForwardRef<double> out = forward_ref(p.config, p.params, p.batch);
  return dot(out.y, p.r_y) + dot(out.h_n, p.r_h) + dot(out.c_n, p.r_c);
}

Problem draw_problem(const CellSpec& cell, const GradcheckCase& c, std::mt19937_64& rng) {
  Problem p;
  p.config = {cell, c.input_size, c.hidden_size, c.num_layers, c.bidirectional};
  p.params = random_parameters_ref<double>(p.config, rng, 0.7);
  const auto batch = static_cast<int64_t>(c.lengths.size());
  const auto state_size = static_cast<size_t>(c.num_layers * p.config.directions() * batch * c.hidden_size);
  p.batch.steps = c.steps;
  p.batch.batch = batch;
  p.batch.lengths = c.lengths;
  p.batch.x = uniform_values(static_cast<size_t>(c.steps * batch * c.input_size), 1.0, rng);
  p.batch.h0 =
      c.random_initial_state ? uniform_values(state_size, 0.8, rng) : std::vector<double>(state_size, 0.0);
  if (cell.has_cell_state()) {
    p.batch.c0 =
        c.random_initial_state ? uniform_values(state_size, 1.0, rng) : std::vector<double>(state_size, 0.0);
  }
  p.r_y =
      uniform_values(static_cast<size_t>(c.steps * batch * p.config.directions() * c.hidden_size), 1.0, rng);
  p.r_h = uniform_values(state_size, 1.0, rng);
  if (cell.has_cell_state()) p.r_c = uniform_values(state_size, 1.0, rng);
  return p;
}

// A problem whose relu pre-activations all stay 1e-3 away from the kink, so that a perturbation of
// 1e-6 cannot cross it (other cells: the first draw).
Problem draw_smooth_problem(const CellSpec& cell, const GradcheckCase& c, std::mt19937_64& rng) {
  for (int attempt = 0; attempt < 200; ++attempt) {
    Problem p = draw_problem(cell, c, rng);
    if (forward_ref(p.config, p.params, p.batch).min_abs_relu_pre > 1e-3) return p;
  }
  ADD_FAILURE() << "no draw kept the relu pre-activations away from 0";
  return draw_problem(cell, c, rng);
}

struct GradcheckStats {
  double max_abs_error = 0;
  int64_t entries = 0;
};

constexpr double kEps = 1e-6;
constexpr double kAbsTol = 1e-7;  // rounding noise of (L+ - L-) / 2eps is ~1e-9 here
constexpr double kRelTol = 1e-6;

constexpr size_t kMaxEntriesPerTensor = 24;  // a random subset beyond that, to stay fast under sanitizers

// Compares analytic[j] with the central difference of the loss in values[j] (values lives in p), for
// every j or a random subset of kMaxEntriesPerTensor.
void check_tensor(Problem& p, const std::string& name, std::vector<double>& values,
                  const std::vector<double>& analytic, std::mt19937_64& rng, GradcheckStats& stats) {
  ASSERT_EQ(values.size(), analytic.size()) << name;
  std::vector<size_t> entries(values.size());
  std::iota(entries.begin(), entries.end(), size_t{0});
  std::shuffle(entries.begin(), entries.end(), rng);
  entries.resize(std::min(entries.size(), kMaxEntriesPerTensor));
  for (size_t j : entries) {
    const double saved = values[j];
    values[j] = saved + kEps;
    const double loss_plus = loss(p);
    values[j] = saved - kEps;
    const double loss_minus = loss(p);
    values[j] = saved;
    const double numeric = (loss_plus - loss_minus) / (2 * kEps);
    const double error = std::abs(numeric - analytic[j]);
    stats.max_abs_error = std::max(stats.max_abs_error, error);
    ++stats.entries;
    EXPECT_LE(error, kAbsTol + kRelTol * std::abs(analytic[j]))
        << name << "[" << j << "]: finite difference " << numeric << ", backward_ref " << analytic[j];
  }
}

void gradcheck(const CellSpec& cell, const GradcheckCase& c, uint64_t seed, GradcheckStats& stats) {
  std::mt19937_64 rng(seed);
  Problem p = draw_smooth_problem(cell, c, rng);
  GradientsRef<double> grads = backward_ref(p.config, p.params, p.batch, p.r_y, p.r_h, p.r_c);
  // The same walk over both parameter structs pairs each tensor with its gradient.
  std::vector<std::pair<std::string, std::vector<double>*>> tensors;
  for_each_parameter_ref(p.params, [&](const std::string& name, std::vector<double>& v) {
    tensors.push_back({name, &v});
  });
  std::vector<const std::vector<double>*> gradients;
  for_each_parameter_ref(grads.parameters,
                         [&](const std::string&, std::vector<double>& v) { gradients.push_back(&v); });
  ASSERT_EQ(tensors.size(), gradients.size());
  for (size_t k = 0; k < tensors.size(); ++k)
    check_tensor(p, tensors[k].first, *tensors[k].second, *gradients[k], rng, stats);
  check_tensor(p, "x", p.batch.x, grads.dx, rng, stats);
  check_tensor(p, "h0", p.batch.h0, grads.dh0, rng, stats);
  if (cell.has_cell_state()) check_tensor(p, "c0", p.batch.c0, grads.dc0, rng, stats);
}

std::vector<GradcheckCase> gradcheck_cases() {
  return {
      {3, 2, 1, false, 3, {3, 2}, true},
      {3, 3, 2, true, 5, {2, 5, 0}, true},  // unsorted, with a length-0 sequence
      {3, 4, 1, true, 4, {4, 1}, false},
      {3, 2, 2, false, 4, {1, 4, 3}, true},
  };
}

void gradcheck_all_cases(const CellSpec& cell) {
  GradcheckStats stats;
  uint64_t seed = 1000;
  for (const GradcheckCase& c : gradcheck_cases()) {
    SCOPED_TRACE("L=" + std::to_string(c.num_layers) + " D=" + std::to_string(c.bidirectional ? 2 : 1) +
                 " H=" + std::to_string(c.hidden_size) + " T=" + std::to_string(c.steps));
    gradcheck(cell, c, seed++, stats);
  }
  std::printf("[ref gradcheck] %-16s %5lld entries, max |fd - backward_ref| = %.2e\n",
              cell_name_ref(cell).c_str(), static_cast<long long>(stats.entries), stats.max_abs_error);
}

CellSpec peephole_cifg() {
  CellSpec cell = CellSpec::coupled_lstm();
  cell.peephole = true;
  return cell;
}

TEST(ReferenceGradcheck, RnnTanh) { gradcheck_all_cases(CellSpec::rnn_tanh()); }
TEST(ReferenceGradcheck, RnnRelu) { gradcheck_all_cases(CellSpec::rnn_relu()); }
TEST(ReferenceGradcheck, Lstm) { gradcheck_all_cases(CellSpec::lstm()); }
TEST(ReferenceGradcheck, PeepholeLstm) { gradcheck_all_cases(CellSpec::peephole_lstm()); }
TEST(ReferenceGradcheck, CoupledLstm) { gradcheck_all_cases(CellSpec::coupled_lstm()); }
TEST(ReferenceGradcheck, PeepholeCoupledLstm) { gradcheck_all_cases(peephole_cifg()); }
TEST(ReferenceGradcheck, GruResetAfter) { gradcheck_all_cases(CellSpec::gru(GruReset::after)); }
TEST(ReferenceGradcheck, GruResetBefore) { gradcheck_all_cases(CellSpec::gru(GruReset::before)); }

// ---- Identities between variants: independent of finite differences, they pin the gate layout.

void expect_near_all(const std::vector<double>& a, const std::vector<double>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t j = 0; j < a.size(); ++j)
    EXPECT_NEAR(a[j], b[j], 1e-12 * (1 + std::abs(b[j]))) << what << "[" << j << "]";
}

// Rows [block*H, (block+1)*H) of a [G*H, cols] matrix (or [G*H] vector).
std::vector<double> rows_of(const std::vector<double>& m, int block, int64_t hidden, int64_t cols) {
  return std::vector<double>(m.begin() + block * hidden * cols, m.begin() + (block + 1) * hidden * cols);
}

std::vector<double> negated(std::vector<double> v) {
  for (double& x : v) x = -x;
  return v;
}

std::vector<double> concat(const std::vector<std::vector<double>>& parts) {
  std::vector<double> out;
  for (const auto& part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}

// A coupled lstm is a full lstm whose f rows are the negated i rows (sigmoid(-a) = 1 - sigmoid(a)); its
// weight gradients are those of the i rows minus those of the f rows.
void check_coupled_equals_mirrored_lstm(bool peephole) {
  CellSpec coupled = CellSpec::coupled_lstm();
  coupled.peephole = peephole;
  std::mt19937_64 rng(7);
  Problem p = draw_problem(coupled, {3, 3, 2, true, 4, {4, 2, 3}, true}, rng);
  Problem full = p;
  full.config.cell.coupled_gates = false;
  const int64_t hidden = p.config.hidden_size;
  for (size_t k = 0; k < p.params.layers.size(); ++k) {
    const auto& c = p.params.layers[k];
    auto& f = full.params.layers[k];
    const int64_t in = static_cast<int64_t>(c.w_x.size()) / (3 * hidden);
    auto mirror = [&](const std::vector<double>& m, int64_t cols) {  // i, g, o -> i, -i, g, o
      return concat({rows_of(m, 0, hidden, cols), negated(rows_of(m, 0, hidden, cols)),
                     rows_of(m, 1, hidden, cols), rows_of(m, 2, hidden, cols)});
    };
    f = {mirror(c.w_x, in), mirror(c.w_h, hidden), mirror(c.b_x, 1), mirror(c.b_h, 1), {}};
    if (peephole) {
      f.peephole = concat({rows_of(c.peephole, 0, hidden, 1), negated(rows_of(c.peephole, 0, hidden, 1)),
                           rows_of(c.peephole, 1, hidden, 1)});
    }
  }
  const ForwardRef<double> a = forward_ref(p.config, p.params, p.batch);
  const ForwardRef<double> b = forward_ref(full.config, full.params, full.batch);
  expect_near_all(a.y, b.y, "y");
  expect_near_all(a.h_n, b.h_n, "h_n");
  expect_near_all(a.c_n, b.c_n, "c_n");
  const GradientsRef<double> ga = backward_ref(p.config, p.params, p.batch, p.r_y, p.r_h, p.r_c);
  const GradientsRef<double> gb = backward_ref(full.config, full.params, full.batch, p.r_y, p.r_h, p.r_c);
  expect_near_all(ga.dx, gb.dx, "dx");
  expect_near_all(ga.dh0, gb.dh0, "dh0");
  expect_near_all(ga.dc0, gb.dc0, "dc0");
  for (size_t k = 0; k < ga.parameters.layers.size(); ++k) {
    const auto& c = ga.parameters.layers[k];
    const auto& f = gb.parameters.layers[k];
    const int64_t in = static_cast<int64_t>(c.w_x.size()) / (3 * hidden);
    auto fold = [&](const std::vector<double>& m, int64_t cols) {  // i - f, g, o
      std::vector<double> i = rows_of(m, 0, hidden, cols), minus_f = negated(rows_of(m, 1, hidden, cols));
      for (size_t j = 0; j < i.size(); ++j) i[j] += minus_f[j];
      return concat({i, rows_of(m, 2, hidden, cols), rows_of(m, 3, hidden, cols)});
    };
    expect_near_all(c.w_x, fold(f.w_x, in), "dw_x");
    expect_near_all(c.w_h, fold(f.w_h, hidden), "dw_h");
    expect_near_all(c.b_x, fold(f.b_x, 1), "db_x");
    expect_near_all(c.b_h, fold(f.b_h, 1), "db_h");
    if (peephole) {
      std::vector<double> i = rows_of(f.peephole, 0, hidden, 1),
                          minus_f = negated(rows_of(f.peephole, 1, hidden, 1));
      for (size_t j = 0; j < i.size(); ++j) i[j] += minus_f[j];
      expect_near_all(c.peephole, concat({i, rows_of(f.peephole, 2, hidden, 1)}), "dpeephole");
    }
  }
}

TEST(ReferenceIdentity, CoupledLstmIsLstmWithMirroredForgetRows) {
  check_coupled_equals_mirrored_lstm(false);
}
TEST(ReferenceIdentity, PeepholeCoupledLstmIsPeepholeLstmWithMirroredForgetRows) {
  check_coupled_equals_mirrored_lstm(true);
}

// With zero peepholes the peephole lstm is the plain lstm, and shares its weight gradients.
TEST(ReferenceIdentity, ZeroPeepholesGiveThePlainLstm) {
  std::mt19937_64 rng(11);
  Problem plain = draw_problem(CellSpec::lstm(), {3, 3, 2, false, 4, {3, 4}, true}, rng);
  Problem peep = plain;
  peep.config.cell.peephole = true;
  for (auto& layer : peep.params.layers) layer.peephole.assign(3 * 3, 0.0);
  const ForwardRef<double> a = forward_ref(plain.config, plain.params, plain.batch);
  const ForwardRef<double> b = forward_ref(peep.config, peep.params, peep.batch);
  expect_near_all(a.y, b.y, "y");
  expect_near_all(a.c_n, b.c_n, "c_n");
  const auto ga = backward_ref(plain.config, plain.params, plain.batch, plain.r_y, plain.r_h, plain.r_c);
  const auto gb = backward_ref(peep.config, peep.params, peep.batch, plain.r_y, plain.r_h, plain.r_c);
  for (size_t k = 0; k < ga.parameters.layers.size(); ++k) {
    expect_near_all(ga.parameters.layers[k].w_h, gb.parameters.layers[k].w_h, "dw_h");
  }
  expect_near_all(ga.dx, gb.dx, "dx");
}

// The reverse direction of a bidirectional layer is a forward layer run on each sequence reversed within
// its own length (not within T): that is what packed sequences do.
TEST(ReferenceIdentity, ReverseDirectionIsForwardDirectionOnReversedSequences) {
  for (const CellSpec& cell : all_cells_ref()) {
    SCOPED_TRACE(cell_name_ref(cell));
    std::mt19937_64 rng(13);
    Problem bi = draw_problem(cell, {3, 4, 1, true, 5, {2, 5, 0, 3}, true}, rng);
    Problem uni = bi;
    uni.config.bidirectional = false;
    uni.params.layers = {bi.params.layers[1]};
    const int64_t batch = bi.batch.batch, hidden = 4, input = 3;
    auto second_direction = [&](const std::vector<double>& state) {  // row 1 of [2, B, H]
      return std::vector<double>(state.begin() + batch * hidden, state.end());
    };
    uni.batch.h0 = second_direction(bi.batch.h0);
    if (cell.has_cell_state()) uni.batch.c0 = second_direction(bi.batch.c0);
    for (int64_t b = 0; b < batch; ++b) {
      const int64_t len = bi.batch.lengths[b];
      for (int64_t t = 0; t < len; ++t) {
        for (int64_t j = 0; j < input; ++j) {
          uni.batch.x[(t * batch + b) * input + j] = bi.batch.x[((len - 1 - t) * batch + b) * input + j];
        }
      }
    }
    const ForwardRef<double> a = forward_ref(bi.config, bi.params, bi.batch);
    const ForwardRef<double> u = forward_ref(uni.config, uni.params, uni.batch);
    for (int64_t b = 0; b < batch; ++b) {
      const int64_t len = bi.batch.lengths[b];
      for (int64_t t = 0; t < len; ++t) {
        for (int64_t j = 0; j < hidden; ++j) {
          EXPECT_NEAR(a.y[(t * batch + b) * 2 * hidden + hidden + j],
                      u.y[((len - 1 - t) * batch + b) * hidden + j], 1e-12);
        }
      }
    }
    expect_near_all(second_direction(a.h_n), u.h_n, "h_n");
    if (cell.has_cell_state()) expect_near_all(second_direction(a.c_n), u.c_n, "c_n");
  }
}

// Inputs past a sequence's end change nothing; outputs there are 0; a length-0 sequence keeps h0.
TEST(ReferenceIdentity, PaddingIsIgnoredAndZeroLengthKeepsTheInitialState) {
  for (const CellSpec& cell : all_cells_ref()) {
    SCOPED_TRACE(cell_name_ref(cell));
    std::mt19937_64 rng(17);
    Problem p = draw_problem(cell, {3, 3, 2, true, 4, {2, 0, 4}, true}, rng);
    Problem padded = p;
    const int64_t batch = 3, input = 3, width = 6;
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t t = p.batch.lengths[b]; t < 4; ++t) {
        for (int64_t j = 0; j < input; ++j) padded.batch.x[(t * batch + b) * input + j] = 100.0 + j;
      }
    }
    const ForwardRef<double> a = forward_ref(p.config, p.params, p.batch);
    const ForwardRef<double> b = forward_ref(padded.config, padded.params, padded.batch);
    EXPECT_EQ(a.y, b.y);
    EXPECT_EQ(a.h_n, b.h_n);
    for (int64_t bb = 0; bb < batch; ++bb) {
      for (int64_t t = p.batch.lengths[bb]; t < 4; ++t) {
        for (int64_t j = 0; j < width; ++j) EXPECT_EQ(a.y[(t * batch + bb) * width + j], 0.0);
      }
    }
    for (int64_t k = 0; k < 4; ++k) {  // b = 1 has length 0
      for (int64_t j = 0; j < 3; ++j) {
        EXPECT_EQ(a.h_n[(k * batch + 1) * 3 + j], p.batch.h0[(k * batch + 1) * 3 + j]);
        if (cell.has_cell_state()) {
          EXPECT_EQ(a.c_n[(k * batch + 1) * 3 + j], p.batch.c0[(k * batch + 1) * 3 + j]);
        }
      }
    }
  }
}

}  // namespace
}  // namespace recur::ref
