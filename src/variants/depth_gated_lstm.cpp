// DepthGatedLstm (recur/depth_gated_lstm.hpp): Yao et al. 2015's depth-gated LSTM with its own driver.
// Per layer l, bottom to top over the whole sequence (layer l needs layer l-1's c at every step), with
// the batch sorted by length so that the live rows of step t are a prefix (driver::SequenceLayout):
//   gates [T*B, G*H] = x W_ih^T + b_ih        one GEMM over all T*B rows, d's rows included
//   for t: gates_t[:, :4H] += h(t-1) W_hh^T    the recurrent GEMM on the live rows
//          element-wise: i, f, g, o, (d), c(t), h(t); training keeps the activated gates
// Backward, top to bottom; per layer, t from last to first: the element-wise backward (its dc_lower share
// goes into the layer below's dc at t) and dh(t-1) = dG_t[:, :4H] W_hh; then once over all steps:
//   dW_ih += dG^T x,  dW_hh += dG[:, :4H]^T h_prev,  db += column sums,  dx = dG W_ih.
// docs/cells/depth_gated_lstm.md derives the equations.
#include "recur/depth_gated_lstm.hpp"

#include <algorithm>
#include <cmath>

#include "driver/layer.hpp"
#include "kernels/gemm.hpp"
#include "kernels/packed_gemm.hpp"
#include "kernels/post_gemm.hpp"
#include "recur/error.hpp"
#include "recur/layers.hpp"

namespace recur {

// What the last forward_train keeps for backward. Rows t*B .. t*B+B-1 are step t, the batch in sorted order;
// a step writes its live rows only.
struct DepthGatedLstm::Tape {
  struct Layer {
    std::vector<float> gates;   // [T*B, G*H] activated gates i, f, g, o, (d)
    std::vector<float> h_prev;  // [T*B, H] h(t-1)
    std::vector<float> c_prev;  // [T*B, H] c(t-1)
    std::vector<float> c;       // [T*B, H] c(t), which the layer above reads as c_lower(t)
    std::vector<float> tanh_c;  // [T*B, H] tanh c(t)
  };
  bool recorded = false;
  driver::SequenceLayout layout;
  std::vector<Tensor> inputs;             // [L] [T*B, I_l]: what layer l read (layer l-1's h after dropout)
  std::vector<std::vector<float>> masks;  // [L-1] dropout factors on layer l's output; empty: none
  std::vector<Layer> layers;              // [L]
};

namespace {

using LayerTensors = DepthGatedLstm::LayerTensors;

// Gate blocks of layer l: i, f, g, o, and d above layer 0.
int64_t gate_count(int64_t layer) { return layer == 0 ? 4 : 5; }

// ---- The element-wise work of one step over `rows` consecutive rows ----

struct StepRows {
  int64_t rows = 0, hidden = 0;
  bool depth = false;
  float* gates = nullptr;          // [rows, G*H] in: x W_ih^T + b_ih + h W_hh^T (no b_hh); out: activated
  const float* c_lower = nullptr;  // [rows, H] the layer below's c(t) (depth only)
  float* c = nullptr;              // [rows, H] in c(t-1), out c(t)
  float* h = nullptr;              // [rows, H] out h(t)
  float* tanh_c = nullptr;         // [rows, H] out tanh c(t)
  float* c_prev = nullptr;         // [rows, H] out: a copy of c(t-1); nullptr in inference
};

// With c' = c(t-1) (b_d is part of a_d):
//   i = s(a_i + b_i + p_i c')   f = s(a_f + b_f + p_f c')   g = tanh(a_g + b_g)
//   d = s(a_d + w_cd c' + w_ld c_lower)   c = d c_lower + f c' + i g
//   o = s(a_o + b_o + p_o c)   h = o tanh(c)
// as a few passes over the rows: plain loops for the products, post_gemm's vectorised kernels (the
// processor's best, as for every recur cell) for the sigmoids and tanhs. `zeros` holds 2H zeros.
void step_forward(const StepRows& s, const LayerTensors& w, const float* zeros,
                  const kernels::PostGemmKernels& k) {
  const int64_t H = s.hidden, width = (s.depth ? 5 : 4) * H, R = s.rows;
  const float* p = w.weight_peephole.data();
  const float* b = w.bias_hh.data();
  const float* wd = w.weight_depth.data();
  for (int64_t row = 0; row < R; ++row) {  // the peepholes on c(t-1), and c_lower(t) for d
    float* x = s.gates + row * width;
    const float* c_prev = s.c + row * H;
    for (int64_t j = 0; j < H; ++j) {
      x[j] += p[j] * c_prev[j];
      x[H + j] += p[H + j] * c_prev[j];
    }
    if (!s.depth) continue;
    const float* c_lower = s.c_lower + row * H;
    for (int64_t j = 0; j < H; ++j) x[4 * H + j] += wd[j] * c_prev[j] + wd[H + j] * c_lower[j];
  }
  if (s.c_prev != nullptr) std::copy_n(s.c, R * H, s.c_prev);
  auto sigmoid = [&](int64_t column, int64_t columns, const float* bias) {
    k.sigmoid_sum({R, columns, bias, zeros, 0, s.gates + column, width});  // s(a + 0 + bias) in place
  };
  sigmoid(0, 2 * H, b);                    // i, f
  if (s.depth) sigmoid(4 * H, H, zeros);   // d
  for (int64_t row = 0; row < R; ++row) {  // g = tanh(a_g + b_g) in place
    float* a_g = s.gates + row * width + 2 * H;
    k.rnn_forward({1, H, false, b + 2 * H, a_g, a_g, nullptr});
  }
  for (int64_t row = 0; row < R; ++row) {  // c(t), and o's peephole on it
    float* x = s.gates + row * width;
    float* c = s.c + row * H;
    for (int64_t j = 0; j < H; ++j) c[j] = x[H + j] * c[j] + x[j] * x[2 * H + j];
    if (s.depth) {
      const float* c_lower = s.c_lower + row * H;
      for (int64_t j = 0; j < H; ++j) c[j] += x[4 * H + j] * c_lower[j];
    }
    for (int64_t j = 0; j < H; ++j) x[3 * H + j] += p[2 * H + j] * c[j];
  }
  sigmoid(3 * H, H, b + 3 * H);                                 // o
  k.rnn_forward({R, H, false, zeros, s.c, s.tanh_c, nullptr});  // tanh c(t)
  for (int64_t row = 0; row < R; ++row) {
    const float* o = s.gates + row * width + 3 * H;
    for (int64_t j = 0; j < H; ++j) s.h[row * H + j] = o[j] * s.tanh_c[row * H + j];
  }
}

struct BackwardRows {
  int64_t rows = 0, hidden = 0;
  const float* gates = nullptr;           // [rows, G*H] activated, as step_forward left them
  const float* c_prev = nullptr;          // [rows, H]
  const float* c = nullptr;               // [rows, H] c(t)
  const float* tanh_c = nullptr;          // [rows, H]
  const float* c_lower = nullptr;         // [rows, H] (depth only)
  const float* peephole = nullptr;        // [3H]
  const float* depth_peephole = nullptr;  // [2H] (depth only)
  float* dpeephole = nullptr;             // [3H] accumulated into, row by row (a fixed order)
  float* ddepth_peephole = nullptr;       // [2H] likewise (depth only)
  const float* dh = nullptr;              // [rows, H] dL/dh(t), all of it
  float* dc = nullptr;                    // [rows, H] in dL/dc(t) (from t+1 and from above), out dL/dc(t-1)
  float* dgates = nullptr;                // [rows, G*H] out: dL/d pre-activations
  float* dc_lower = nullptr;              // [rows, H] accumulated into: dL/dc_lower(t) (depth only)
};

// da_o = dh tanh(c) o(1-o);  dc~ = dc + dh o (1 - tanh(c)^2) + da_o p_o
// da_i = dc~ g i(1-i);  da_f = dc~ c' f(1-f);  da_g = dc~ i (1-g^2);  da_d = dc~ c_lower d(1-d)
// dc(t-1) = dc~ f + da_i p_i + da_f p_f + da_d w_cd;   dc_lower += dc~ d + da_d w_ld
template <bool kDepth>
void backward_rows(const BackwardRows& a) {
  const int64_t H = a.hidden, width = (kDepth ? 5 : 4) * H;
  const float* p = a.peephole;
  const float* w = a.depth_peephole;
  float* dp = a.dpeephole;
  float* dw = a.ddepth_peephole;
  for (int64_t row = 0; row < a.rows; ++row) {
    const float* gates = a.gates + row * width;
    const int64_t r = row * H;
    float* da = a.dgates + row * width;
    for (int64_t j = 0; j < H; ++j) {
      const float i = gates[j], f = gates[H + j], g = gates[2 * H + j], o = gates[3 * H + j];
      const float c_prev = a.c_prev[r + j], tanh_c = a.tanh_c[r + j], dh = a.dh[r + j];
      const float da_o = dh * tanh_c * o * (1.0f - o);
      const float dc_total = a.dc[r + j] + dh * o * (1.0f - tanh_c * tanh_c) + da_o * p[2 * H + j];
      const float da_i = dc_total * g * i * (1.0f - i);
      const float da_f = dc_total * c_prev * f * (1.0f - f);
      float dc_prev = dc_total * f + da_i * p[j] + da_f * p[H + j];
      dp[j] += da_i * c_prev;
      dp[H + j] += da_f * c_prev;
      dp[2 * H + j] += da_o * a.c[r + j];
      da[j] = da_i;
      da[H + j] = da_f;
      da[2 * H + j] = dc_total * i * (1.0f - g * g);
      da[3 * H + j] = da_o;
      if constexpr (kDepth) {
        const float d = gates[4 * H + j], c_lower = a.c_lower[r + j];
        const float da_d = dc_total * c_lower * d * (1.0f - d);
        dc_prev += da_d * w[j];
        a.dc_lower[r + j] += dc_total * d + da_d * w[H + j];
        dw[j] += da_d * c_prev;
        dw[H + j] += da_d * c_lower;
        da[4 * H + j] = da_d;
      }
      a.dc[r + j] = dc_prev;
    }
  }
}

// ---- One layer over the whole sequence ----

struct LayerForward {
  const LayerTensors* weights = nullptr;
  bool depth = false;  // layer >= 1
  int64_t hidden = 0;
  const driver::SequenceLayout* layout = nullptr;
  const float* x = nullptr;  // [T*B, I]
  int64_t input_size = 0;
  const float* c_lower = nullptr;  // [T*B, H] the layer below's c(t) (depth only)
  float* y = nullptr;              // [T*B, H] zero on entry; out h(t) of the live rows
  float* h = nullptr;              // [B, H] in h0, out final h
  float* c = nullptr;              // [B, H] in c0, out final c
  float* gates = nullptr;          // [T*B, G*H] out: activated gates of the live rows
  float* c_out = nullptr;          // [T*B, H] zero on entry; out c(t) of the live rows
  float* tanh_c = nullptr;         // [T*B, H], or [B, H] reused by every step when tanh_c_step is 0
  int64_t tanh_c_step = 0;
  float* h_prev = nullptr;  // [T*B, H] out h(t-1), or nullptr (inference)
  float* c_prev = nullptr;  // [T*B, H] out c(t-1), or nullptr (inference)
};

void layer_forward(const LayerForward& a) {
  const driver::SequenceLayout& layout = *a.layout;
  const int64_t T = layout.steps, B = layout.batch, H = a.hidden, I = a.input_size;
  const int64_t width = (a.depth ? 5 : 4) * H;
  const LayerTensors& w = *a.weights;
  const kernels::PostGemmKernels& post_gemm = kernels::post_gemm();
  const std::vector<float> zeros(size_t(2 * H), 0.0f);
  for (int64_t row = 0; row < T * B; ++row) std::copy_n(w.bias_ih.data(), width, a.gates + row * width);
  kernels::recurrent_gemm_nt(T * B, width, I, a.x, I, w.weight_ih.data(), I, 1.0f, a.gates, width);
  // W_hh packed once for the step products, as the core's driver does (kernels/packed_gemm.hpp).
  kernels::PackedWeights packed;
  const bool pack =
      kernels::PackedWeights::available() && T > 0 && layout.live_rows[0] > kernels::kSmallGemmMaxRows;
  if (pack) packed.pack_transposed(w.weight_hh.data(), H, 4, H, H);
  for (int64_t t = 0; t < T; ++t) {
    const int64_t rows = layout.live_rows[size_t(t)];
    if (rows == 0) break;  // sorted longest first: no later step has live rows either
    const int64_t offset = t * B * H;
    if (a.h_prev != nullptr) std::copy_n(a.h, rows * H, a.h_prev + offset);
    float* gates_t = a.gates + t * B * width;
    if (pack && rows > kernels::kSmallGemmMaxRows)
      packed.multiply(rows, a.h, H, 0, 4, 0, H, 1.0f, gates_t, width);
    else
      kernels::recurrent_gemm_nt(rows, 4 * H, H, a.h, H, w.weight_hh.data(), H, 1.0f, gates_t, width);
    StepRows step;
    step.rows = rows;
    step.hidden = H;
    step.depth = a.depth;
    step.gates = gates_t;
    step.c_lower = a.depth ? a.c_lower + offset : nullptr;
    step.c = a.c;
    step.h = a.h;
    step.tanh_c = a.tanh_c + t * a.tanh_c_step;
    step.c_prev = a.c_prev != nullptr ? a.c_prev + offset : nullptr;
    step_forward(step, w, zeros.data(), post_gemm);
    std::copy_n(a.h, rows * H, a.y + offset);
    std::copy_n(a.c, rows * H, a.c_out + offset);
  }
}

struct LayerBackward {
  const LayerTensors* weights = nullptr;
  LayerTensors* grads = nullptr;  // accumulated into
  bool depth = false;
  int64_t hidden = 0;
  const driver::SequenceLayout* layout = nullptr;
  const float* x = nullptr;  // [T*B, I] as forward read it
  int64_t input_size = 0;
  const DepthGatedLstm::Tape::Layer* record = nullptr;
  const float* c_lower = nullptr;  // [T*B, H] (depth only)
  const float* dy = nullptr;       // [T*B, H] dL/dh(t) from above (or the caller); live rows read
  const float* dc_seq = nullptr;   // [T*B, H] dL/dc(t) through the layer above's depth gate; nullptr: none
  float* dc_lower = nullptr;       // [T*B, H] accumulated into: dL/dc of the layer below (depth only)
  float* dx = nullptr;             // [T*B, I] overwritten
  float* dh = nullptr;             // [B, H] in dL/d final h, out dL/dh0
  float* dc = nullptr;             // [B, H] in dL/d final c, out dL/dc0
};

void layer_backward(const LayerBackward& a, std::vector<float>& dgates) {
  const driver::SequenceLayout& layout = *a.layout;
  const int64_t T = layout.steps, B = layout.batch, H = a.hidden, I = a.input_size;
  const int64_t width = (a.depth ? 5 : 4) * H;
  const LayerTensors& w = *a.weights;
  LayerTensors& grads = *a.grads;
  const DepthGatedLstm::Tape::Layer& record = *a.record;
  dgates.assign(size_t(T * B * width), 0.0f);  // dead rows keep zero gradients for the merged GEMMs
  kernels::PackedWeights packed;               // W_hh for dg W_hh, packed once (kernels/packed_gemm.hpp)
  const bool pack = kernels::PackedWeights::available();
  if (pack) packed.pack(w.weight_hh.data(), H, 4 * H, H);
  for (int64_t t = T - 1; t >= 0; --t) {
    const int64_t rows = layout.live_rows[size_t(t)];
    if (rows == 0) continue;
    const int64_t offset = t * B * H;
    for (int64_t k = 0; k < rows * H; ++k) a.dh[k] += a.dy[offset + k];
    if (a.dc_seq != nullptr)
      for (int64_t k = 0; k < rows * H; ++k) a.dc[k] += a.dc_seq[offset + k];
    float* dgates_t = dgates.data() + t * B * width;
    BackwardRows step;
    step.rows = rows;
    step.hidden = H;
    step.gates = record.gates.data() + t * B * width;
    step.c_prev = record.c_prev.data() + offset;
    step.c = record.c.data() + offset;
    step.tanh_c = record.tanh_c.data() + offset;
    step.peephole = w.weight_peephole.data();
    step.dpeephole = grads.weight_peephole.data();
    step.dh = a.dh;
    step.dc = a.dc;
    step.dgates = dgates_t;
    if (a.depth) {
      step.c_lower = a.c_lower + offset;
      step.depth_peephole = w.weight_depth.data();
      step.ddepth_peephole = grads.weight_depth.data();
      step.dc_lower = a.dc_lower + offset;
      backward_rows<true>(step);
    } else {
      backward_rows<false>(step);
    }
    if (pack)
      packed.multiply(rows, dgates_t, width, 0, 1, 0, 4 * H, 0.0f, a.dh, H);
    else
      kernels::gemm_nn(rows, H, 4 * H, dgates_t, width, w.weight_hh.data(), H, 0.0f, a.dh, H);
  }
  const int64_t rows = T * B;
  kernels::gemm_tn(width, I, rows, dgates.data(), width, a.x, I, 1.0f, grads.weight_ih.data(), I);
  kernels::gemm_tn(4 * H, H, rows, dgates.data(), width, record.h_prev.data(), H, 1.0f,
                   grads.weight_hh.data(), H);
  // Bias sums in a fixed order, so that runs are bit-reproducible. b_hh sees the i, f, g, o blocks only.
  float* db_ih = grads.bias_ih.data();
  float* db_hh = grads.bias_hh.data();
  for (int64_t row = 0; row < rows; ++row) {
    const float* dg = dgates.data() + row * width;
    for (int64_t j = 0; j < width; ++j) db_ih[j] += dg[j];
    for (int64_t j = 0; j < 4 * H; ++j) db_hh[j] += dg[j];
  }
  kernels::gemm_nn(rows, I, width, dgates.data(), width, w.weight_ih.data(), I, 0.0f, a.dx, I);
}

// ---- Between the caller's order and the sorted, time-major one ----

// x [T, B, W] -> [T*B, W], row t*B + k holding the caller's sequence order[k].
Tensor gather_rows(const Tensor& x, const driver::SequenceLayout& layout) {
  const int64_t T = layout.steps, B = layout.batch, W = x.dim(2);
  Tensor sorted({T * B, W});
  for (int64_t t = 0; t < T; ++t)
    for (int64_t k = 0; k < B; ++k)
      std::copy_n(x.data() + (t * B + layout.order[size_t(k)]) * W, W, sorted.data() + (t * B + k) * W);
  return sorted;
}

Tensor scatter_rows(const float* sorted, const driver::SequenceLayout& layout, int64_t W) {
  const int64_t T = layout.steps, B = layout.batch;
  Tensor x({T, B, W});
  for (int64_t t = 0; t < T; ++t)
    for (int64_t k = 0; k < B; ++k)
      std::copy_n(sorted + (t * B + k) * W, W, x.data() + (t * B + layout.order[size_t(k)]) * W);
  return x;
}

// A caller's [1, B, H] state -> [B, H] sorted, and back.
std::vector<float> gather_state(const Tensor& state, const driver::SequenceLayout& layout, int64_t H) {
  std::vector<float> sorted(size_t(layout.batch * H));
  for (int64_t k = 0; k < layout.batch; ++k)
    std::copy_n(state.data() + layout.order[size_t(k)] * H, H, sorted.data() + k * H);
  return sorted;
}

Tensor scatter_state(const std::vector<float>& sorted, const driver::SequenceLayout& layout, int64_t H) {
  Tensor state({1, layout.batch, H});
  for (int64_t k = 0; k < layout.batch; ++k)
    std::copy_n(sorted.data() + k * H, H, state.data() + layout.order[size_t(k)] * H);
  return state;
}

void check_positive(const char* field, int64_t value) {
  if (value < 1)
    throw Error(std::string("dglstm config: ") + field + " must be at least 1, got " + std::to_string(value));
}

// The API edge: x [T, B, input_size], lengths in [0, T], state of 2L tensors [1, B, H].
void check_arguments(const DepthGatedLstmConfig& config, const Tensor& x, const std::vector<Tensor>& state,
                     std::span<const int64_t> lengths) {
  const int64_t L = config.num_layers, H = config.hidden_size;
  if (x.rank() != 3 || x.dim(2) != config.input_size || x.dim(0) < 1 || x.dim(1) < 1)
    throw Error("dglstm input x: expected [T, B, input_size " + std::to_string(config.input_size) +
                "] with T, B >= 1, got shape " + shape_to_string(x.shape()));
  const int64_t T = x.dim(0), B = x.dim(1);
  if (!lengths.empty() && int64_t(lengths.size()) != B)
    throw Error("dglstm lengths: expected one per sequence (" + std::to_string(B) + "), got " +
                std::to_string(lengths.size()));
  for (size_t b = 0; b < lengths.size(); ++b)
    if (lengths[b] < 0 || lengths[b] > T)
      throw Error("dglstm lengths[" + std::to_string(b) + "] = " + std::to_string(lengths[b]) +
                  " is outside [0, T = " + std::to_string(T) + "]");
  if (int64_t(state.size()) != 2 * L)
    throw Error("dglstm state: expected " + std::to_string(2 * L) + " tensors (h, c of " + std::to_string(L) +
                " layers), got " + std::to_string(state.size()));
  for (int64_t k = 0; k < 2 * L; ++k)
    state[size_t(k)].check_shape(
        "dglstm state " + std::string(k % 2 == 0 ? "h" : "c") + " of layer " + std::to_string(k / 2),
        {1, B, H});
}

}  // namespace

void DepthGatedLstmConfig::validate() const {
  check_positive("input_size", input_size);
  check_positive("hidden_size", hidden_size);
  check_positive("num_layers", num_layers);
}

DepthGatedLstm::DepthGatedLstm(const DepthGatedLstmConfig& config, uint64_t seed)
    : config_(config), tape_(std::make_unique<Tape>()) {
  config_.validate();
  const int64_t H = config_.hidden_size;
  // PyTorch's LSTM initialisation, the depth gate's weights included: uniform in [-1/sqrt(H), 1/sqrt(H)],
  // with the draw written out (top 24 bits of a 64-bit Mersenne twister) as recur::Rnn does, so that a seed
  // gives the same weights with any standard library.
  std::mt19937_64 generator(seed);
  const float bound = 1.0f / std::sqrt(static_cast<float>(H));
  for (int64_t l = 0; l < config_.num_layers; ++l) {
    const int64_t G = gate_count(l), I = l == 0 ? config_.input_size : H;
    LayerTensors w{Tensor({G * H, I}), Tensor({4 * H, H}), Tensor({G * H}),
                   Tensor({4 * H}),    Tensor({3 * H}),    l == 0 ? Tensor() : Tensor({2 * H})};
    for (Tensor* t :
         {&w.weight_ih, &w.weight_hh, &w.bias_ih, &w.bias_hh, &w.weight_peephole, &w.weight_depth})
      for (float& v : t->values()) {
        const float unit = static_cast<float>(generator() >> 40) * (1.0f / 16777216.0f);
        v = (2.0f * unit - 1.0f) * bound;
      }
    LayerTensors g{Tensor(w.weight_ih.shape()),       Tensor(w.weight_hh.shape()),
                   Tensor(w.bias_ih.shape()),         Tensor(w.bias_hh.shape()),
                   Tensor(w.weight_peephole.shape()), l == 0 ? Tensor() : Tensor({2 * H})};
    weights_.push_back(std::move(w));
    grads_.push_back(std::move(g));
  }
}

DepthGatedLstm::~DepthGatedLstm() = default;
DepthGatedLstm::DepthGatedLstm(DepthGatedLstm&&) noexcept = default;
DepthGatedLstm& DepthGatedLstm::operator=(DepthGatedLstm&&) noexcept = default;

std::vector<Tensor> DepthGatedLstm::zero_state(int64_t batch) const {
  if (batch < 1) throw Error("dglstm zero_state: batch must be at least 1, got " + std::to_string(batch));
  std::vector<Tensor> state;
  for (int64_t l = 0; l < config_.num_layers; ++l)
    for (int k = 0; k < 2; ++k) state.emplace_back(Shape{1, batch, config_.hidden_size});
  return state;
}

Tensor DepthGatedLstm::run(const Tensor& x, std::vector<Tensor>& state, std::span<const int64_t> lengths,
                           float dropout, std::mt19937_64* rng) {
  const int64_t L = config_.num_layers, H = config_.hidden_size;
  check_arguments(config_, x, state, lengths);
  const int64_t T = x.dim(0), B = x.dim(1);
  const driver::SequenceLayout layout =
      driver::SequenceLayout::make(T, B, std::vector<int64_t>(lengths.begin(), lengths.end()));
  Tape* tape = rng != nullptr ? tape_.get() : nullptr;
  if (tape != nullptr) {
    tape->recorded = false;
    tape->layout = layout;
    tape->inputs.assign(size_t(L), Tensor());
    tape->masks.assign(size_t(L - 1), {});
    tape->layers.resize(size_t(L));
  }
  Tensor input = gather_rows(x, layout), y;
  // Inference's workspace; training writes into the tape instead. c(t) of the layer just run is read by
  // the next one, so inference keeps two c buffers in turn.
  std::vector<float> gates, tanh_c(size_t(B * H)), c_buffers[2];
  const float* c_lower = nullptr;
  for (int64_t l = 0; l < L; ++l) {
    const size_t rows_h = size_t(T * B * H);
    std::vector<float> h = gather_state(state[size_t(2 * l)], layout, H);
    std::vector<float> c = gather_state(state[size_t(2 * l + 1)], layout, H);
    y = Tensor({T * B, H});
    LayerForward args;
    args.weights = &weights_[size_t(l)];
    args.depth = l > 0;
    args.hidden = H;
    args.layout = &layout;
    args.x = input.data();
    args.input_size = input.dim(1);
    args.c_lower = c_lower;
    args.y = y.data();
    args.h = h.data();
    args.c = c.data();
    std::vector<float>* c_out = &c_buffers[l % 2];
    if (tape != nullptr) {
      Tape::Layer& record = tape->layers[size_t(l)];
      record.gates.assign(size_t(T * B * gate_count(l) * H), 0.0f);
      for (auto* v : {&record.h_prev, &record.c_prev, &record.c, &record.tanh_c}) v->assign(rows_h, 0.0f);
      args.gates = record.gates.data();
      args.tanh_c = record.tanh_c.data();
      args.tanh_c_step = B * H;
      args.h_prev = record.h_prev.data();
      args.c_prev = record.c_prev.data();
      c_out = &record.c;
    } else {
      gates.resize(size_t(T * B * gate_count(l) * H));
      c_out->assign(rows_h, 0.0f);
      args.gates = gates.data();
      args.tanh_c = tanh_c.data();
    }
    args.c_out = c_out->data();
    layer_forward(args);
    state[size_t(2 * l)] = scatter_state(h, layout, H);
    state[size_t(2 * l + 1)] = scatter_state(c, layout, H);
    c_lower = c_out->data();
    if (tape != nullptr) tape->inputs[size_t(l)] = std::move(input);
    if (l + 1 < L) {
      // Dropout on h going up only: c_lower and this layer's own recurrence see no mask.
      if (tape != nullptr) dropout_forward(y, dropout, *rng, tape->masks[size_t(l)]);
      input = std::move(y);
    }
  }
  if (tape != nullptr) tape->recorded = true;
  return scatter_rows(y.data(), layout, H);
}

Tensor DepthGatedLstm::forward(const Tensor& x, std::vector<Tensor>& state,
                               std::span<const int64_t> lengths) {
  return run(x, state, lengths, 0.0f, nullptr);
}

Tensor DepthGatedLstm::forward_train(const Tensor& x, std::vector<Tensor>& state,
                                     std::span<const int64_t> lengths, float dropout, std::mt19937_64& rng) {
  if (!(dropout >= 0.0f && dropout < 1.0f))
    throw Error("dglstm dropout: probability " + std::to_string(dropout) + " is outside [0, 1)");
  return run(x, state, lengths, dropout, &rng);
}

Tensor DepthGatedLstm::backward(const Tensor& dy, std::vector<Tensor>* d_initial_state) {
  if (!tape_->recorded) throw Error("dglstm backward: no forward_train to go back through");
  const Tape& tape = *tape_;
  const driver::SequenceLayout& layout = tape.layout;
  const int64_t L = config_.num_layers, H = config_.hidden_size, T = layout.steps, B = layout.batch;
  dy.check_shape("dglstm backward dy (the shape of y)", {T, B, H});
  if (d_initial_state != nullptr) d_initial_state->assign(size_t(2 * L), Tensor());

  Tensor d_output = gather_rows(dy, layout);  // dL/dh(t) of layer l, sorted
  std::vector<float> dc_from_above, dc_lower, dgates;
  Tensor dx;
  for (int64_t l = L - 1; l >= 0; --l) {
    const Tensor& input = tape.inputs[size_t(l)];
    std::vector<float> dh(size_t(B * H), 0.0f), dc(size_t(B * H), 0.0f);
    dc_lower.assign(l > 0 ? size_t(T * B * H) : 0, 0.0f);
    dx = Tensor({T * B, input.dim(1)});
    LayerBackward args;
    args.weights = &weights_[size_t(l)];
    args.grads = &grads_[size_t(l)];
    args.depth = l > 0;
    args.hidden = H;
    args.layout = &layout;
    args.x = input.data();
    args.input_size = input.dim(1);
    args.record = &tape.layers[size_t(l)];
    args.c_lower = l > 0 ? tape.layers[size_t(l - 1)].c.data() : nullptr;
    args.dy = d_output.data();
    args.dc_seq = l + 1 < L ? dc_from_above.data() : nullptr;
    args.dc_lower = l > 0 ? dc_lower.data() : nullptr;
    args.dx = dx.data();
    args.dh = dh.data();
    args.dc = dc.data();
    layer_backward(args, dgates);
    if (d_initial_state != nullptr) {
      (*d_initial_state)[size_t(2 * l)] = scatter_state(dh, layout, H);
      (*d_initial_state)[size_t(2 * l + 1)] = scatter_state(dc, layout, H);
    }
    if (l > 0) {
      dropout_backward(tape.masks[size_t(l - 1)], dx);  // dx of layer l is dL/d(dropped h of layer l-1)
      d_output = std::move(dx);
      dc_from_above.swap(dc_lower);
    }
  }
  return scatter_rows(dx.data(), layout, config_.input_size);
}

std::vector<Parameter> DepthGatedLstm::parameters() {
  std::vector<Parameter> list;
  for (size_t l = 0; l < weights_.size(); ++l) {
    LayerTensors& w = weights_[l];
    LayerTensors& g = grads_[l];
    const Parameter fields[] = {{"weight_ih", &w.weight_ih, &g.weight_ih},
                                {"weight_hh", &w.weight_hh, &g.weight_hh},
                                {"bias_ih", &w.bias_ih, &g.bias_ih},
                                {"bias_hh", &w.bias_hh, &g.bias_hh},
                                {"weight_peephole", &w.weight_peephole, &g.weight_peephole},
                                {"weight_depth", &w.weight_depth, &g.weight_depth}};
    for (const Parameter& field : fields)
      if (!field.value->empty())
        list.push_back({"dglstm." + field.name + "_l" + std::to_string(l), field.value, field.grad});
  }
  return list;
}

}  // namespace recur
