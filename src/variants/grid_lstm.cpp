// Grid LSTM (Kalchbrenner et al. 2015): the N-dimensional block over a batch (GEMM + fused element-wise
// loop), and its three drivers: GridBlock, GridLstm1d (depth only) and GridLstm (time x depth).
// Block, per dimension k, gates a = H W_k^T + b_k (i, f, g, o), m' = f m + i g, h' = tanh(o m').
// Backward (dh', dm' in):  du = dh' (1 - h'^2);  do = du m';  dm~ = dm' + du o;
//   di = dm~ g;  dg = dm~ i;  df = dm~ m;  dm = dm~ f;  da = (di i(1-i), df f(1-f), dg (1-g^2), do o(1-o))
//   dH = sum_k da_k W_k;  dW_k += da_k^T H;  db_k += sum over rows of da_k
// docs/cells/grid_lstm.md derives these and records the choices.
#include "recur/grid_lstm.hpp"

#include <algorithm>
#include <cmath>

#include "driver/layer.hpp"
#include "kernels/activations.hpp"
#include "kernels/gemm.hpp"
#include "recur/error.hpp"

namespace recur {
namespace {

// tanh through exp: glibc's tanhf (via expm1f) cost 40% of a training run, expf a tenth of that. Absolute
// error ~1e-7 (the cancellation in 2s - 1 near 0), the scale of float rounding of values of order 1.
inline float fast_tanh(float x) { return 2.0f / (1.0f + std::exp(-2.0f * x)) - 1.0f; }

// Raw view of one transform: w [4d, N*d], b [4d]; dw, db their gradients (null in inference).
struct TransformView {
  const float* w = nullptr;
  const float* b = nullptr;
  float* dw = nullptr;
  float* db = nullptr;
};

// One block: N dimensions of d units, `rows` rows; transforms[k] is dimension k's (entries may repeat).
// Row layouts: h, m, h_out, m_out [rows, N*d]; gates [rows, N*4d], dimension k at columns k*4d.
struct BlockArgs {
  int64_t dims = 0, hidden = 0, rows = 0;
  const TransformView* transforms = nullptr;
};

void block_forward(const BlockArgs& a, const float* h, const float* m, float* h_out, float* m_out,
                   float* gates) {
  const int64_t d = a.hidden, width = a.dims * d, gate_width = 4 * width;
  if (a.rows == 0) return;
  for (int64_t k = 0; k < a.dims; ++k)
    kernels::gemm_nt(a.rows, 4 * d, width, h, width, a.transforms[k].w, width, 0.0f, gates + k * 4 * d,
                     gate_width);
  for (int64_t r = 0; r < a.rows; ++r)
    for (int64_t k = 0; k < a.dims; ++k) {
      float* g = gates + r * gate_width + k * 4 * d;
      const float* b = a.transforms[k].b;
      const int64_t at = r * width + k * d;
      for (int64_t j = 0; j < d; ++j) {
        const float i = kernels::sigmoid(g[j] + b[j]);
        const float f = kernels::sigmoid(g[d + j] + b[d + j]);
        const float c = fast_tanh(g[2 * d + j] + b[2 * d + j]);
        const float o = kernels::sigmoid(g[3 * d + j] + b[3 * d + j]);
        g[j] = i, g[d + j] = f, g[2 * d + j] = c, g[3 * d + j] = o;
        const float memory = f * m[at + j] + i * c;
        m_out[at + j] = memory;
        h_out[at + j] = fast_tanh(o * memory);
      }
    }
}

// dh_out, dm_out may be null (zero). Writes dgates [rows, N*4d] and dh, dm [rows, N*d].
void block_backward(const BlockArgs& a, const float* m, const float* gates, const float* h_out,
                    const float* m_out, const float* dh_out, const float* dm_out, float* dgates, float* dh,
                    float* dm) {
  const int64_t d = a.hidden, width = a.dims * d, gate_width = 4 * width;
  if (a.rows == 0) return;
  for (int64_t r = 0; r < a.rows; ++r)
    for (int64_t k = 0; k < a.dims; ++k) {
      const float* g = gates + r * gate_width + k * 4 * d;
      float* dg = dgates + r * gate_width + k * 4 * d;
      const int64_t at = r * width + k * d;
      for (int64_t j = 0; j < d; ++j) {
        const float i = g[j], f = g[d + j], c = g[2 * d + j], o = g[3 * d + j];
        const float du = (dh_out ? dh_out[at + j] : 0.0f) * kernels::tanh_grad_from_output(h_out[at + j]);
        const float d_memory = (dm_out ? dm_out[at + j] : 0.0f) + du * o;
        dm[at + j] = d_memory * f;
        dg[j] = d_memory * c * kernels::sigmoid_grad_from_output(i);
        dg[d + j] = d_memory * m[at + j] * kernels::sigmoid_grad_from_output(f);
        dg[2 * d + j] = d_memory * i * kernels::tanh_grad_from_output(c);
        dg[3 * d + j] = du * m_out[at + j] * kernels::sigmoid_grad_from_output(o);
      }
    }
  for (int64_t k = 0; k < a.dims; ++k)
    kernels::gemm_nn(a.rows, width, 4 * d, dgates + k * 4 * d, gate_width, a.transforms[k].w, width,
                     k == 0 ? 0.0f : 1.0f, dh, width);
}

// dW_k += dgates_k^T h, db_k += column sums of dgates_k, over `rows` rows: one GEMM per dimension for all
// the blocks whose rows the caller laid out one after another.
void block_weight_gradients(const BlockArgs& a, const float* h, const float* dgates) {
  const int64_t d = a.hidden, width = a.dims * d, gate_width = 4 * width;
  if (a.rows == 0) return;
  for (int64_t k = 0; k < a.dims; ++k) {
    const TransformView& t = a.transforms[k];
    kernels::gemm_tn(4 * d, width, a.rows, dgates + k * 4 * d, gate_width, h, width, 1.0f, t.dw, width);
    for (int64_t r = 0; r < a.rows; ++r)
      for (int64_t q = 0; q < 4 * d; ++q) t.db[q] += dgates[r * gate_width + k * 4 * d + q];
  }
}

// The uniform draw of recur::Rnn (top 24 bits of a 64-bit Mersenne twister), in [-bound, bound].
void fill_uniform(Tensor& t, float bound, std::mt19937_64& generator) {
  for (float& v : t.values()) {
    const float unit = static_cast<float>(generator() >> 40) * (1.0f / 16777216.0f);
    v = (2.0f * unit - 1.0f) * bound;
  }
}

std::vector<GridTransformTensors> make_transforms(int64_t count, int64_t dims, int64_t d) {
  std::vector<GridTransformTensors> out;
  for (int64_t k = 0; k < count; ++k) out.push_back({Tensor({4 * d, dims * d}), Tensor({4 * d})});
  return out;
}

// Views of the transforms of one block: dimension k uses transforms[first + (shared ? 0 : k)].
std::vector<TransformView> views(const std::vector<GridTransformTensors>& weights,
                                 std::vector<GridTransformTensors>* grads, size_t first, int64_t dims,
                                 bool shared) {
  std::vector<TransformView> out;
  for (int64_t k = 0; k < dims; ++k) {
    const size_t index = first + (shared ? 0 : size_t(k));
    TransformView v{weights[index].weight.data(), weights[index].bias.data()};
    if (grads) v.dw = (*grads)[index].weight.data(), v.db = (*grads)[index].bias.data();
    out.push_back(v);
  }
  return out;
}

// "<prefix>weight_<suffix>" and "<prefix>bias_<suffix>".
// (Names are built with += : GCC 12 warns falsely (-Wrestrict) on "literal" + std::to_string(k).)
void add_transform_parameters(std::vector<Parameter>& out, const std::string& prefix,
                              const std::string& suffix, GridTransformTensors& weights,
                              GridTransformTensors& grads) {
  out.push_back({prefix + "weight_" + suffix, &weights.weight, &grads.weight});
  out.push_back({prefix + "bias_" + suffix, &weights.bias, &grads.bias});
}

// "l<layer>_d<dimension>", or "d<dimension>" when layer < 0.
std::string suffix(int64_t layer, int64_t dimension) {
  std::string out;
  if (layer >= 0) out += 'l', out += std::to_string(layer), out += '_';
  out += 'd';
  out += std::to_string(dimension);
  return out;
}

void check_positive(const std::string& what, const std::string& field, int64_t value) {
  if (value < 1) throw Error(what + ": " + field + " must be at least 1, got " + std::to_string(value));
}

std::vector<GridTransformTensors> zeros_like(const std::vector<GridTransformTensors>& weights) {
  std::vector<GridTransformTensors> out;
  for (const GridTransformTensors& t : weights)
    out.push_back({Tensor(t.weight.shape()), Tensor(t.bias.shape())});
  return out;
}

}  // namespace

// ---- GridBlock ----

void GridBlockConfig::validate() const {
  check_positive("grid block config", "dimensions", dimensions);
  check_positive("grid block config", "hidden_size", hidden_size);
}

struct GridBlock::Tape {
  int64_t rows = 0;
  std::vector<float> h, m, gates, h_out, m_out;
};

GridBlock::GridBlock(const GridBlockConfig& config, uint64_t seed) : config_(config) {
  config_.validate();
  weights_ = make_transforms(config_.transform_count(), config_.dimensions, config_.hidden_size);
  grads_ = zeros_like(weights_);
  std::mt19937_64 generator(seed);
  const float bound = 1.0f / std::sqrt(float(config_.hidden_size));
  for (GridTransformTensors& t : weights_)
    fill_uniform(t.weight, bound, generator), fill_uniform(t.bias, bound, generator);
}
GridBlock::~GridBlock() = default;
GridBlock::GridBlock(GridBlock&&) noexcept = default;
GridBlock& GridBlock::operator=(GridBlock&&) noexcept = default;

namespace {
int64_t check_block_input(const GridBlockConfig& c, const Tensor& h, const Tensor& m) {
  const int64_t width = c.dimensions * c.hidden_size;
  if (h.rank() != 2 || h.dim(1) != width)
    throw Error("grid block input h: expected [B, N*d = " + std::to_string(width) + "], got " +
                shape_to_string(h.shape()));
  m.check_shape("grid block input m [B, N*d]", h.shape());
  return h.dim(0);
}
}  // namespace

GridBlock::State GridBlock::forward(const Tensor& h, const Tensor& m) const {
  const int64_t rows = check_block_input(config_, h, m);
  const std::vector<TransformView> t =
      views(weights_, nullptr, 0, config_.dimensions, config_.share_dimensions);
  State out{Tensor(h.shape()), Tensor(h.shape())};
  std::vector<float> gates(size_t(rows * 4 * h.dim(1)));
  block_forward({config_.dimensions, config_.hidden_size, rows, t.data()}, h.data(), m.data(), out.h.data(),
                out.m.data(), gates.data());
  return out;
}

GridBlock::State GridBlock::forward_train(const Tensor& h, const Tensor& m) {
  const int64_t rows = check_block_input(config_, h, m);
  const std::vector<TransformView> t =
      views(weights_, nullptr, 0, config_.dimensions, config_.share_dimensions);
  if (!tape_) tape_ = std::make_unique<Tape>();
  Tape& tape = *tape_;
  tape.rows = rows;
  tape.h.assign(h.values().begin(), h.values().end());
  tape.m.assign(m.values().begin(), m.values().end());
  tape.gates.assign(size_t(rows * 4 * h.dim(1)), 0.0f);
  State out{Tensor(h.shape()), Tensor(h.shape())};
  block_forward({config_.dimensions, config_.hidden_size, rows, t.data()}, h.data(), m.data(), out.h.data(),
                out.m.data(), tape.gates.data());
  tape.h_out.assign(out.h.values().begin(), out.h.values().end());
  tape.m_out.assign(out.m.values().begin(), out.m.values().end());
  return out;
}

GridBlock::State GridBlock::backward(const Tensor& dh_out, const Tensor& dm_out) {
  if (!tape_) throw Error("grid block backward: no forward_train before it");
  const Tape& tape = *tape_;
  const Shape shape{tape.rows, config_.dimensions * config_.hidden_size};
  if (!dh_out.empty()) dh_out.check_shape("grid block backward dh'", shape);
  if (!dm_out.empty()) dm_out.check_shape("grid block backward dm'", shape);
  const std::vector<TransformView> t =
      views(weights_, &grads_, 0, config_.dimensions, config_.share_dimensions);
  const BlockArgs args{config_.dimensions, config_.hidden_size, tape.rows, t.data()};
  State in{Tensor(shape), Tensor(shape)};
  std::vector<float> dgates(tape.gates.size());
  block_backward(args, tape.m.data(), tape.gates.data(), tape.h_out.data(), tape.m_out.data(),
                 dh_out.empty() ? nullptr : dh_out.data(), dm_out.empty() ? nullptr : dm_out.data(),
                 dgates.data(), in.h.data(), in.m.data());
  block_weight_gradients(args, tape.h.data(), dgates.data());
  return in;
}

std::vector<Parameter> GridBlock::parameters() {
  std::vector<Parameter> out;
  for (size_t k = 0; k < weights_.size(); ++k)
    add_transform_parameters(out, "gridblock.", suffix(-1, int64_t(k)), weights_[k], grads_[k]);
  return out;
}

// ---- GridLstm1d ----

void GridLstm1dConfig::validate() const {
  check_positive("gridlstm1d config", "input_size", input_size);
  check_positive("gridlstm1d config", "hidden_size", hidden_size);
  check_positive("gridlstm1d config", "num_layers", num_layers);
}

namespace {

// P = x W_in^T + b_in for `rows` rows of x [rows, I]: columns 0..H-1 to h (ld_h), H..2H-1 to m (ld_m).
void project_input(int64_t rows, int64_t I, int64_t H, const float* x, const Tensor& w, const Tensor& b,
                   float* h, int64_t ld_h, float* m, int64_t ld_m) {
  std::vector<float> p(size_t(rows * 2 * H));
  kernels::gemm_nt(rows, 2 * H, I, x, I, w.data(), I, 0.0f, p.data(), 2 * H);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < H; ++j) {
      h[r * ld_h + j] = p[size_t(r * 2 * H + j)] + b[j];
      m[r * ld_m + j] = p[size_t(r * 2 * H + H + j)] + b[H + j];
    }
}

// The input projection's backward from dp [rows, 2H]: dW += dp^T x, db += column sums, dx = dp W.
void project_input_backward(int64_t rows, int64_t I, int64_t H, const float* x, const Tensor& w,
                            const float* dp, Tensor& dw, Tensor& db, float* dx) {
  if (rows == 0) return;
  kernels::gemm_tn(2 * H, I, rows, dp, 2 * H, x, I, 1.0f, dw.data(), I);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t q = 0; q < 2 * H; ++q) db[q] += dp[r * 2 * H + q];
  kernels::gemm_nn(rows, I, 2 * H, dp, 2 * H, w.data(), I, 0.0f, dx, I);
}

void init_stack(uint64_t seed, int64_t H, std::initializer_list<Tensor*> tensors,
                std::vector<GridTransformTensors>& transforms) {
  std::mt19937_64 generator(seed);
  const float bound = 1.0f / std::sqrt(float(H));
  for (Tensor* t : tensors) fill_uniform(*t, bound, generator);
  for (GridTransformTensors& t : transforms)
    fill_uniform(t.weight, bound, generator), fill_uniform(t.bias, bound, generator);
}

}  // namespace

struct GridLstm1d::Tape {
  bool recorded = false;
  Tensor x;
  std::vector<float> h, m;   // [(L+1)*B, H]: rows l*B.. the input of layer l; l = L the output
  std::vector<float> gates;  // [L*B, 4H]
};

GridLstm1d::GridLstm1d(const GridLstm1dConfig& config, uint64_t seed) : config_(config) {
  config_.validate();
  const int64_t H = config_.hidden_size;
  w_in_ = Tensor({2 * H, config_.input_size}), b_in_ = Tensor({2 * H});
  dw_in_ = Tensor(w_in_.shape()), db_in_ = Tensor(b_in_.shape());
  layers_ = make_transforms(config_.tie_weights ? 1 : config_.num_layers, 1, H);
  d_layers_ = zeros_like(layers_);
  init_stack(seed, H, {&w_in_, &b_in_}, layers_);
}
GridLstm1d::~GridLstm1d() = default;
GridLstm1d::GridLstm1d(GridLstm1d&&) noexcept = default;
GridLstm1d& GridLstm1d::operator=(GridLstm1d&&) noexcept = default;

Tensor GridLstm1d::run(const Tensor& x, Tape* tape) const {
  if (x.rank() != 2 || x.dim(1) != config_.input_size || x.dim(0) < 1)
    throw Error("gridlstm1d input x: expected [B >= 1, I = " + std::to_string(config_.input_size) +
                "], got " + shape_to_string(x.shape()));
  const int64_t B = x.dim(0), H = config_.hidden_size, L = config_.num_layers;
  Tape local;
  Tape& t = tape ? *tape : local;
  t.h.assign(size_t((L + 1) * B * H), 0.0f);
  t.m.assign(t.h.size(), 0.0f);
  t.gates.assign(size_t(L * B * 4 * H), 0.0f);
  project_input(B, config_.input_size, H, x.data(), w_in_, b_in_, t.h.data(), H, t.m.data(), H);
  for (int64_t l = 0; l < L; ++l) {
    const std::vector<TransformView> v =
        views(layers_, nullptr, config_.tie_weights ? 0 : size_t(l), 1, false);
    block_forward({1, H, B, v.data()}, t.h.data() + l * B * H, t.m.data() + l * B * H,
                  t.h.data() + (l + 1) * B * H, t.m.data() + (l + 1) * B * H, t.gates.data() + l * B * 4 * H);
  }
  if (tape) tape->x = x, tape->recorded = true;
  return Tensor({B, H}, std::vector<float>(t.h.end() - B * H, t.h.end()));
}

Tensor GridLstm1d::forward(const Tensor& x) const { return run(x, nullptr); }

Tensor GridLstm1d::forward_train(const Tensor& x) {
  if (!tape_) tape_ = std::make_unique<Tape>();
  return run(x, tape_.get());
}

Tensor GridLstm1d::backward(const Tensor& dy) {
  if (!tape_ || !tape_->recorded) throw Error("gridlstm1d backward: no forward_train before it");
  const Tape& t = *tape_;
  const int64_t B = t.x.dim(0), H = config_.hidden_size, L = config_.num_layers, I = config_.input_size;
  dy.check_shape("gridlstm1d backward dy [B, H]", {B, H});
  std::vector<float> dh(dy.values().begin(), dy.values().end()), dm(dh.size(), 0.0f);
  std::vector<float> dh_in(dh.size()), dm_in(dh.size()), dgates(t.gates.size());
  for (int64_t l = L - 1; l >= 0; --l) {
    const std::vector<TransformView> v =
        views(layers_, &d_layers_, config_.tie_weights ? 0 : size_t(l), 1, false);
    block_backward({1, H, B, v.data()}, t.m.data() + l * B * H, t.gates.data() + l * B * 4 * H,
                   t.h.data() + (l + 1) * B * H, t.m.data() + (l + 1) * B * H, dh.data(), dm.data(),
                   dgates.data() + l * B * 4 * H, dh_in.data(), dm_in.data());
    std::swap(dh, dh_in), std::swap(dm, dm_in);
  }
  // Weight gradients once per transform: tied, the L blocks' rows lie one after another.
  for (int64_t l = 0; l < (config_.tie_weights ? 1 : L); ++l) {
    const std::vector<TransformView> v = views(layers_, &d_layers_, size_t(l), 1, false);
    const int64_t rows = config_.tie_weights ? L * B : B;
    block_weight_gradients({1, H, rows, v.data()}, t.h.data() + l * B * H, dgates.data() + l * B * 4 * H);
  }
  std::vector<float> dp(size_t(B * 2 * H));
  for (int64_t r = 0; r < B; ++r)
    for (int64_t j = 0; j < H; ++j)
      dp[size_t(r * 2 * H + j)] = dh[size_t(r * H + j)],
                            dp[size_t(r * 2 * H + H + j)] = dm[size_t(r * H + j)];
  Tensor dx({B, I});
  project_input_backward(B, I, H, t.x.data(), w_in_, dp.data(), dw_in_, db_in_, dx.data());
  return dx;
}

std::vector<Parameter> GridLstm1d::parameters() {
  std::vector<Parameter> out{{"gridlstm1d.weight_input", &w_in_, &dw_in_},
                             {"gridlstm1d.bias_input", &b_in_, &db_in_}};
  for (size_t l = 0; l < layers_.size(); ++l)
    add_transform_parameters(out, "gridlstm1d.", suffix(int64_t(l), 0), layers_[l], d_layers_[l]);
  return out;
}

// ---- GridLstm: time x depth ----

void GridLstmConfig::validate() const {
  check_positive("gridlstm config", "input_size", input_size);
  check_positive("gridlstm config", "hidden_size", hidden_size);
  check_positive("gridlstm config", "num_layers", num_layers);
}

struct GridLstm::Tape {
  bool recorded = false;
  driver::SequenceLayout layout;
  int64_t steps = 0, batch = 0;
  std::vector<float> x;  // [T*B, I] sorted, time-major; rows past a sequence's end zero
  // Block (l, t) owns rows (l*T + t)*B .. +B of each; rows past a sequence's end stay zero.
  std::vector<float> h, m, h_out, m_out;  // [L*T*B, 2H]: columns 0..H-1 time, H..2H-1 depth
  std::vector<float> gates, dgates;       // [L*T*B, 8H]
  std::vector<float> masks;  // [L*T*B, H]: block (l, t)'s factors on the depth h it passes up; empty: none
};

GridLstm::GridLstm(const GridLstmConfig& config, uint64_t seed) : config_(config) {
  config_.validate();
  const int64_t H = config_.hidden_size;
  w_in_ = Tensor({2 * H, config_.input_size}), b_in_ = Tensor({2 * H});
  dw_in_ = Tensor(w_in_.shape()), db_in_ = Tensor(b_in_.shape());
  const int64_t per_layer = config_.share_dimensions ? 1 : 2;
  weights_ = make_transforms((config_.tie_weights ? 1 : config_.num_layers) * per_layer, 2, H);
  grads_ = zeros_like(weights_);
  init_stack(seed, H, {&w_in_, &b_in_}, weights_);
}
GridLstm::~GridLstm() = default;
GridLstm::GridLstm(GridLstm&&) noexcept = default;
GridLstm& GridLstm::operator=(GridLstm&&) noexcept = default;

std::vector<Tensor> GridLstm::zero_state(int64_t batch) const {
  const Shape shape{config_.num_layers, batch, config_.hidden_size};
  return {Tensor(shape), Tensor(shape)};
}

namespace {

// Rows of `groups` x `batch` (each `width` wide) between the caller's order and the sorted one:
// sorted row (g, k) is the caller's row (g, order[k]).
void permute_rows(const float* from, float* to, int64_t groups, int64_t width,
                  const driver::SequenceLayout& layout, bool to_sorted) {
  const int64_t B = layout.batch;
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t k = 0; k < B; ++k) {
      const int64_t sorted = g * B + k, caller = g * B + layout.order[size_t(k)];
      std::copy_n(from + (to_sorted ? caller : sorted) * width, width,
                  to + (to_sorted ? sorted : caller) * width);
    }
}

// dst[r, 0..H-1] = a[r, :], dst[r, H..2H-1] = b[r, :] * (mask ? mask[r, :] : 1) (b null: 0), r < rows.
void join_halves(int64_t rows, int64_t H, const float* a, int64_t lda, const float* b, int64_t ldb,
                 const float* mask, float* dst) {
  for (int64_t r = 0; r < rows; ++r) {
    std::copy_n(a + r * lda, H, dst + r * 2 * H);
    for (int64_t j = 0; j < H; ++j)
      dst[r * 2 * H + H + j] = b ? b[r * ldb + j] * (mask ? mask[r * H + j] : 1.0f) : 0.0f;
  }
}

struct Dims {
  int64_t steps, batch;
};

Dims check_grid_input(const GridLstmConfig& c, const Tensor& x, const std::vector<Tensor>& state,
                      std::span<const int64_t> lengths) {
  if (x.rank() != 3 || x.dim(2) != c.input_size || x.dim(0) < 1 || x.dim(1) < 1)
    throw Error("gridlstm input x: expected [T >= 1, B >= 1, I = " + std::to_string(c.input_size) +
                "], got " + shape_to_string(x.shape()));
  const Dims dims{x.dim(0), x.dim(1)};
  if (state.size() != 2)
    throw Error("gridlstm state: expected 2 tensors (h, m), got " + std::to_string(state.size()));
  const Shape shape{c.num_layers, dims.batch, c.hidden_size};
  state[0].check_shape("gridlstm state h [L, B, H]", shape);
  state[1].check_shape("gridlstm state m [L, B, H]", shape);
  if (!lengths.empty() && int64_t(lengths.size()) != dims.batch)
    throw Error("gridlstm lengths: expected one per sequence (" + std::to_string(dims.batch) + "), got " +
                std::to_string(lengths.size()));
  for (size_t b = 0; b < lengths.size(); ++b)
    if (lengths[b] < 0 || lengths[b] > dims.steps)
      throw Error("gridlstm lengths[" + std::to_string(b) + "] = " + std::to_string(lengths[b]) +
                  " is outside [0, T = " + std::to_string(dims.steps) + "]");
  return dims;
}

}  // namespace

Tensor GridLstm::run(const Tensor& x, std::vector<Tensor>& state, std::span<const int64_t> lengths,
                     float dropout, std::mt19937_64* rng, Tape* tape) {
  const auto [T, B] = check_grid_input(config_, x, state, lengths);
  if (!(dropout >= 0.0f && dropout < 1.0f))
    throw Error("gridlstm dropout: probability " + std::to_string(dropout) + " outside [0, 1)");
  const int64_t H = config_.hidden_size, L = config_.num_layers, I = config_.input_size, W = 2 * H;
  const driver::SequenceLayout layout =
      driver::SequenceLayout::make(T, B, std::vector<int64_t>(lengths.begin(), lengths.end()));
  std::vector<float> xs(size_t(T * B * I));
  permute_rows(x.data(), xs.data(), T, I, layout, true);
  for (int64_t t = 0; t < T; ++t)  // rows past an end are never used; zero keeps NaN padding out of dW
    std::fill(xs.begin() + (t * B + layout.live_rows[size_t(t)]) * I, xs.begin() + (t + 1) * B * I, 0.0f);
  std::vector<float> p(size_t(T * B * W));
  project_input(T * B, I, H, xs.data(), w_in_, b_in_, p.data(), W, p.data() + H, W);
  std::vector<float> hs(size_t(L * B * H)), ms(hs.size());
  permute_rows(state[0].data(), hs.data(), L, H, layout, true);
  permute_rows(state[1].data(), ms.data(), L, H, layout, true);
  std::vector<float> ys(size_t(T * B * H), 0.0f);

  // Block buffers: the tape's slot of block (l, t), or one reused slot in inference.
  const int64_t slots = tape ? L * T * B : B;
  std::vector<float> work_h, work_m, work_h_out, work_m_out, work_gates, work_masks;
  std::vector<float>& bh = tape ? tape->h : work_h;
  std::vector<float>& bm = tape ? tape->m : work_m;
  std::vector<float>& bh_out = tape ? tape->h_out : work_h_out;
  std::vector<float>& bm_out = tape ? tape->m_out : work_m_out;
  std::vector<float>& bgates = tape ? tape->gates : work_gates;
  std::vector<float>& masks = tape ? tape->masks : work_masks;
  for (std::vector<float>* v : {&bh, &bm, &bh_out, &bm_out}) v->assign(size_t(slots * W), 0.0f);
  bgates.assign(size_t(slots * 4 * W), 0.0f);
  masks.assign(dropout > 0.0f && L > 1 ? size_t(L * T * B * H) : 0, 0.0f);
  const float keep = 1.0f / (1.0f - dropout);
  const size_t per_layer = config_.share_dimensions ? 1 : 2;

  for (int64_t t = 0; t < T; ++t) {
    const int64_t n = layout.live_rows[size_t(t)];
    if (n == 0) break;                            // sorted longest first: no later step has live rows either
    const float* depth_h = p.data() + t * B * W;  // the projected input, ld W
    const float* depth_m = depth_h + H;
    const float* mask = nullptr;
    for (int64_t l = 0; l < L; ++l) {
      const int64_t slot = tape ? (l * T + t) * B : 0;
      float *h = bh.data() + slot * W, *m = bm.data() + slot * W;
      float *h_out = bh_out.data() + slot * W, *m_out = bm_out.data() + slot * W;
      join_halves(n, H, hs.data() + l * B * H, H, depth_h, W, mask, h);
      join_halves(n, H, ms.data() + l * B * H, H, depth_m, W, nullptr, m);
      const std::vector<TransformView> v = views(
          weights_, nullptr, config_.tie_weights ? 0 : size_t(l) * per_layer, 2, config_.share_dimensions);
      block_forward({2, H, n, v.data()}, h, m, h_out, m_out, bgates.data() + slot * 4 * W);
      for (int64_t r = 0; r < n; ++r) {
        std::copy_n(h_out + r * W, H, hs.data() + (l * B + r) * H);
        std::copy_n(m_out + r * W, H, ms.data() + (l * B + r) * H);
      }
      depth_h = h_out + H, depth_m = m_out + H, mask = nullptr;
      if (!masks.empty() && l + 1 < L) {  // dropout on the depth h that layer l passes up
        float* factors = masks.data() + slot * H;
        for (int64_t q = 0; q < n * H; ++q)
          factors[q] = float((*rng)() >> 40) * 0x1p-24f < dropout ? 0.0f : keep;
        mask = factors;
      }
    }
    for (int64_t r = 0; r < n; ++r) std::copy_n(depth_h + r * W, H, ys.data() + (t * B + r) * H);
  }
  Tensor y({T, B, H});
  permute_rows(ys.data(), y.data(), T, H, layout, false);
  permute_rows(hs.data(), state[0].data(), L, H, layout, false);
  permute_rows(ms.data(), state[1].data(), L, H, layout, false);
  if (tape) {
    tape->layout = layout, tape->steps = T, tape->batch = B;
    tape->x = std::move(xs);
    tape->recorded = true;
  }
  return y;
}

Tensor GridLstm::forward(const Tensor& x, std::vector<Tensor>& state, std::span<const int64_t> lengths) {
  return run(x, state, lengths, 0.0f, nullptr, nullptr);
}

Tensor GridLstm::forward_train(const Tensor& x, std::vector<Tensor>& state, std::span<const int64_t> lengths,
                               float dropout, std::mt19937_64& rng) {
  if (!tape_) tape_ = std::make_unique<Tape>();
  tape_->recorded = false;
  return run(x, state, lengths, dropout, &rng, tape_.get());
}

Tensor GridLstm::backward(const Tensor& dy, std::vector<Tensor>* d_initial_state) {
  if (!tape_ || !tape_->recorded) throw Error("gridlstm backward: no forward_train before it");
  Tape& tp = *tape_;
  const int64_t T = tp.steps, B = tp.batch, H = config_.hidden_size, L = config_.num_layers;
  const int64_t I = config_.input_size, W = 2 * H;
  dy.check_shape("gridlstm backward dy [T, B, H]", {T, B, H});
  std::vector<float> dys(size_t(T * B * H));
  permute_rows(dy.data(), dys.data(), T, H, tp.layout, true);
  std::vector<float> dhs(size_t(L * B * H), 0.0f), dms(dhs.size(), 0.0f), dp(size_t(T * B * W), 0.0f);
  std::vector<float> dh_out(size_t(B * W)), dm_out(dh_out.size()), dh(dh_out.size()), dm(dh_out.size());
  tp.dgates.assign(tp.gates.size(), 0.0f);
  const size_t per_layer = config_.share_dimensions ? 1 : 2;

  for (int64_t t = T - 1; t >= 0; --t) {
    const int64_t n = tp.layout.live_rows[size_t(t)];
    if (n == 0) continue;
    const float* d_depth_h = dys.data() + t * B * H;  // dL/d(depth h above the top) = dy(t)
    const float* d_depth_m = nullptr;
    int64_t ld = H;
    for (int64_t l = L - 1; l >= 0; --l) {
      const int64_t slot = (l * T + t) * B;
      join_halves(n, H, dhs.data() + l * B * H, H, d_depth_h, ld, nullptr, dh_out.data());
      join_halves(n, H, dms.data() + l * B * H, H, d_depth_m, ld, nullptr, dm_out.data());
      const std::vector<TransformView> v = views(
          weights_, &grads_, config_.tie_weights ? 0 : size_t(l) * per_layer, 2, config_.share_dimensions);
      block_backward({2, H, n, v.data()}, tp.m.data() + slot * W, tp.gates.data() + slot * 4 * W,
                     tp.h_out.data() + slot * W, tp.m_out.data() + slot * W, dh_out.data(), dm_out.data(),
                     tp.dgates.data() + slot * 4 * W, dh.data(), dm.data());
      for (int64_t r = 0; r < n; ++r) {
        std::copy_n(dh.data() + r * W, H, dhs.data() + (l * B + r) * H);
        std::copy_n(dm.data() + r * W, H, dms.data() + (l * B + r) * H);
      }
      if (l > 0 && !tp.masks.empty()) {  // layer l's depth input was layer l-1's output times its mask
        const float* mask = tp.masks.data() + ((l - 1) * T + t) * B * H;
        for (int64_t r = 0; r < n; ++r)
          for (int64_t j = 0; j < H; ++j) dh[size_t(r * W + H + j)] *= mask[r * H + j];
      }
      d_depth_h = dh.data() + H, d_depth_m = dm.data() + H, ld = W;
    }
    for (int64_t r = 0; r < n; ++r) {
      std::copy_n(d_depth_h + r * W, H, dp.data() + (t * B + r) * W);
      std::copy_n(d_depth_m + r * W, H, dp.data() + (t * B + r) * W + H);
    }
  }
  // Weight gradients once per transform over all its blocks' rows (all layers' rows when tied).
  const int64_t groups = config_.tie_weights ? 1 : L, rows = config_.tie_weights ? L * T * B : T * B;
  for (int64_t g = 0; g < groups; ++g) {
    const std::vector<TransformView> v =
        views(weights_, &grads_, size_t(g) * per_layer, 2, config_.share_dimensions);
    block_weight_gradients({2, H, rows, v.data()}, tp.h.data() + g * T * B * W,
                           tp.dgates.data() + g * T * B * 4 * W);
  }
  std::vector<float> dxs(size_t(T * B * I));
  project_input_backward(T * B, I, H, tp.x.data(), w_in_, dp.data(), dw_in_, db_in_, dxs.data());
  Tensor dx({T, B, I});
  permute_rows(dxs.data(), dx.data(), T, I, tp.layout, false);
  if (d_initial_state) {
    *d_initial_state = zero_state(B);
    permute_rows(dhs.data(), (*d_initial_state)[0].data(), L, H, tp.layout, false);
    permute_rows(dms.data(), (*d_initial_state)[1].data(), L, H, tp.layout, false);
  }
  return dx;
}

std::vector<Parameter> GridLstm::parameters() {
  std::vector<Parameter> out{{"gridlstm.weight_input", &w_in_, &dw_in_},
                             {"gridlstm.bias_input", &b_in_, &db_in_}};
  const size_t per_layer = config_.share_dimensions ? 1 : 2;
  for (size_t index = 0; index < weights_.size(); ++index)
    add_transform_parameters(out, "gridlstm.", suffix(int64_t(index / per_layer), int64_t(index % per_layer)),
                             weights_[index], grads_[index]);
  return out;
}

}  // namespace recur
