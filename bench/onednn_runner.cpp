// oneDNN 2.6 RNN primitives on recur's weights. One single-layer primitive per layer (oneDNN's
// multi-layer primitive needs I = H), chained through memory: layer l's dst_layer is layer l+1's
// src_layer, and in backward layer l+1's diff_src_layer is layer l's diff_dst_layer.
//
// Layouts. recur: W[G*H, I] with row g*H + o for gate g, unit o; gates LSTM i,f,g,o, GRU r,z,n.
// oneDNN: weights ldigo [L=1, D=1, I, G, H]; gates LSTM i,f,c~,o (the same), GRU u(=z),r,o(=n);
// bias ldgo [1, 1, Gb, H] is one vector per gate (recur's b_x + b_h), except lbr_gru, whose 4th
// "gate" is b_hn, the bias inside r * (W_hn h + b_hn), and whose 3rd is b_xn alone.
#include "onednn_runner.hpp"

#include <omp.h>

#include <cstring>
#include <dnnl.hpp>
#include <unordered_map>

#include "recur/error.hpp"

namespace recur::bench {

using dnnl::memory;
using Tag = memory::format_tag;
constexpr memory::data_type f32 = memory::data_type::f32;

bool onednn_available() { return true; }

namespace {

std::string isa_name(dnnl::cpu_isa isa) {
  using dnnl::cpu_isa;
  switch (isa) {
    case cpu_isa::sse41:
      return "sse41";
    case cpu_isa::avx:
      return "avx";
    case cpu_isa::avx2:
      return "avx2";
    case cpu_isa::avx2_vnni:
      return "avx2_vnni";
    case cpu_isa::avx512_core:
      return "avx512_core";
    case cpu_isa::avx512_core_vnni:
      return "avx512_core_vnni";
    case cpu_isa::avx512_core_bf16:
      return "avx512_core_bf16";
    case cpu_isa::avx512_core_amx:
      return "avx512_core_amx";
    default:
      return "code " + std::to_string(int(isa));
  }
}

}  // namespace

std::string onednn_description() {
  const dnnl_version_t* v = dnnl_version();
  const std::string runtime = v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : std::to_string(v->cpu_runtime);
  return "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
         std::to_string(v->patch) + ", CPU runtime " + runtime + " (max threads " +
         std::to_string(omp_get_max_threads()) + "), ISA " + isa_name(dnnl::get_effective_cpu_isa());
}

void onednn_set_num_threads(int threads) { omp_set_num_threads(threads); }

namespace {

struct GateMap {
  dnnl::algorithm algorithm;
  int gates;                    // G
  int bias_gates;               // Gb: G, or 4 for lbr_gru
  std::vector<int> recur_gate;  // oneDNN gate g' holds recur gate recur_gate[g']
  bool linear_before_reset;     // lbr_gru
};

GateMap gate_map(const CellSpec& spec) {
  using dnnl::algorithm;
  switch (spec.family) {
    case CellFamily::rnn:
      if (spec.activation != Activation::tanh) break;
      return {algorithm::vanilla_rnn, 1, 1, {0}, false};
    case CellFamily::lstm:
      if (spec.peephole || spec.coupled_gates) break;
      return {algorithm::vanilla_lstm, 4, 4, {0, 1, 2, 3}, false};
    case CellFamily::gru:
      if (spec.gru_reset == GruReset::after) return {algorithm::lbr_gru, 3, 4, {1, 0, 2}, true};
      return {algorithm::vanilla_gru, 3, 3, {1, 0, 2}, false};
  }
  throw Error("bench: oneDNN has no equivalent of cell '" + spec.name() + "'");
}

// recur W [G*H, I] -> ldigo [I, G, H].
std::vector<float> to_ldigo(const Tensor& w, int64_t H, const GateMap& map) {
  const int64_t I = w.dim(1), G = map.gates;
  std::vector<float> out(size_t(I * G * H));
  for (int64_t i = 0; i < I; ++i)
    for (int64_t g = 0; g < G; ++g)
      for (int64_t o = 0; o < H; ++o)
        out[size_t((i * G + g) * H + o)] = w[(map.recur_gate[size_t(g)] * H + o) * I + i];
  return out;
}

// ldigo [I, G, H] -> recur W [G*H, I].
void from_ldigo(const float* v, int64_t H, const GateMap& map, Tensor& w) {
  const int64_t I = w.dim(1), G = map.gates;
  for (int64_t i = 0; i < I; ++i)
    for (int64_t g = 0; g < G; ++g)
      for (int64_t o = 0; o < H; ++o) w[(map.recur_gate[size_t(g)] * H + o) * I + i] = v[(i * G + g) * H + o];
}

bool is_lbr_candidate(const GateMap& map, int recur_gate) {
  return map.linear_before_reset && recur_gate == 2;
}

std::vector<float> to_ldgo_bias(const LayerParameters& w, int64_t H, const GateMap& map) {
  std::vector<float> out(size_t(map.bias_gates * H));
  for (int g = 0; g < map.gates; ++g) {
    const int k = map.recur_gate[size_t(g)];
    for (int64_t o = 0; o < H; ++o)
      out[size_t(g * H + o)] = w.b_x[k * H + o] + (is_lbr_candidate(map, k) ? 0.0f : w.b_h[k * H + o]);
  }
  if (map.linear_before_reset)
    for (int64_t o = 0; o < H; ++o) out[size_t(3 * H + o)] = w.b_h[2 * H + o];
  return out;
}

// One bias gradient per gate -> recur's d b_x and d b_h (equal except lbr_gru's candidate).
void bias_gradients_from_ldgo(const float* diff, int64_t H, const GateMap& map, LayerParameters& d) {
  for (int g = 0; g < map.gates; ++g) {
    const int k = map.recur_gate[size_t(g)];
    for (int64_t o = 0; o < H; ++o) {
      d.b_x[k * H + o] = diff[g * H + o];
      d.b_h[k * H + o] = is_lbr_candidate(map, k) ? diff[3 * H + o] : diff[g * H + o];
    }
  }
}

memory::desc plain(const memory::dims& dims, Tag tag) { return memory::desc(dims, f32, tag); }

void zero(memory& m) { std::memset(m.get_data_handle(), 0, m.get_desc().get_size()); }

struct LayerDescs {
  memory::desc src_layer, src_iter, weights_layer, weights_iter, bias, dst_layer, dst_iter;
};

struct PrimitiveDescs {
  dnnl::rnn_primitive_desc_base forward, backward;  // backward empty for inference
};

// Forward (and backward) primitive descriptors for the cell; diff descriptors mirror the data ones.
PrimitiveDescs make_primitive_descs(const GateMap& map, bool training, const LayerDescs& d,
                                    const dnnl::engine& engine) {
  using namespace dnnl;
  const prop_kind prop = training ? prop_kind::forward_training : prop_kind::forward_inference;
  const rnn_direction dir = rnn_direction::unidirectional_left2right;
  const memory::desc& c = d.src_iter;  // LSTM's c has h's shape and layout
  switch (map.algorithm) {
    case algorithm::vanilla_rnn: {
      const algorithm act = algorithm::eltwise_tanh;
      vanilla_rnn_forward::primitive_desc fwd({prop, act, dir, d.src_layer, d.src_iter, d.weights_layer,
                                               d.weights_iter, d.bias, d.dst_layer, d.dst_iter},
                                              engine);
      if (!training) return {fwd, {}};
      vanilla_rnn_backward::desc bwd(prop_kind::backward, act, dir, d.src_layer, d.src_iter, d.weights_layer,
                                     d.weights_iter, d.bias, d.dst_layer, d.dst_iter, d.src_layer, d.src_iter,
                                     d.weights_layer, d.weights_iter, d.bias, d.dst_layer, d.dst_iter);
      return {fwd, vanilla_rnn_backward::primitive_desc(bwd, engine, fwd)};
    }
    case algorithm::vanilla_lstm: {
      lstm_forward::primitive_desc fwd({prop, dir, d.src_layer, d.src_iter, c, d.weights_layer,
                                        d.weights_iter, d.bias, d.dst_layer, d.dst_iter, c},
                                       engine);
      if (!training) return {fwd, {}};
      lstm_backward::desc bwd(prop_kind::backward, dir, d.src_layer, d.src_iter, c, d.weights_layer,
                              d.weights_iter, d.bias, d.dst_layer, d.dst_iter, c, d.src_layer, d.src_iter, c,
                              d.weights_layer, d.weights_iter, d.bias, d.dst_layer, d.dst_iter, c);
      return {fwd, lstm_backward::primitive_desc(bwd, engine, fwd)};
    }
    case algorithm::lbr_gru: {
      lbr_gru_forward::primitive_desc fwd({prop, dir, d.src_layer, d.src_iter, d.weights_layer,
                                           d.weights_iter, d.bias, d.dst_layer, d.dst_iter},
                                          engine);
      if (!training) return {fwd, {}};
      lbr_gru_backward::desc bwd(prop_kind::backward, dir, d.src_layer, d.src_iter, d.weights_layer,
                                 d.weights_iter, d.bias, d.dst_layer, d.dst_iter, d.src_layer, d.src_iter,
                                 d.weights_layer, d.weights_iter, d.bias, d.dst_layer, d.dst_iter);
      return {fwd, lbr_gru_backward::primitive_desc(bwd, engine, fwd)};
    }
    default: {
      gru_forward::primitive_desc fwd({prop, dir, d.src_layer, d.src_iter, d.weights_layer, d.weights_iter,
                                       d.bias, d.dst_layer, d.dst_iter},
                                      engine);
      if (!training) return {fwd, {}};
      gru_backward::desc bwd(prop_kind::backward, dir, d.src_layer, d.src_iter, d.weights_layer,
                             d.weights_iter, d.bias, d.dst_layer, d.dst_iter, d.src_layer, d.src_iter,
                             d.weights_layer, d.weights_iter, d.bias, d.dst_layer, d.dst_iter);
      return {fwd, gru_backward::primitive_desc(bwd, engine, fwd)};
    }
  }
}

using Args = std::unordered_map<int, memory>;

struct Layer {
  int64_t input = 0;
  PrimitiveDescs pd;
  dnnl::primitive forward, backward;
  Args forward_args[2];  // step mode alternates the state buffers: [parity]
  Args backward_args;
  memory user_weights_layer, user_weights_iter;  // ldigo, for reorders
  memory state[2][2];                            // [parity][h, c]
  memory dst_layer, diff_src_layer;              // chained to the neighbours
};

class OnednnRunner : public Runner {
 public:
  explicit OnednnRunner(const Problem& problem)
      : p_(problem),
        map_(gate_map(problem.config.cell)),
        engine_(dnnl::engine::kind::cpu, 0),
        stream_(engine_) {
    const Case& s = p_.shape;
    const int64_t T = s.mode == Mode::step ? 1 : s.steps;
    for (int l = 0; l < s.layers; ++l) build_layer(l, T);
    if (s.mode == Mode::train) wire_backward();
  }

  void run() override {
    if (p_.shape.mode == Mode::step) {
      for (int64_t k = 0; k < p_.shape.steps; ++k) step_once();
      return;
    }
    for (Layer& layer : layers_) layer.forward.execute(stream_, layer.forward_args[0]);
    if (p_.shape.mode == Mode::train)
      for (auto it = layers_.rbegin(); it != layers_.rend(); ++it)
        it->backward.execute(stream_, it->backward_args);
    stream_.wait();
  }

  Computed compute() override;

 private:
  void build_layer(int l, int64_t T);
  void wire_backward();
  memory reordered(const memory& user, const memory::desc& wanted);
  void step_once();

  const Problem& p_;
  GateMap map_;
  dnnl::engine engine_;
  dnnl::stream stream_;
  std::vector<Layer> layers_;
  std::vector<memory> keep_;  // memories referenced only from argument maps
  memory x_, ones_;
  int parity_ = 0;
};

memory OnednnRunner::reordered(const memory& user, const memory::desc& wanted) {
  if (user.get_desc() == wanted) return user;
  memory out(wanted, engine_);
  dnnl::reorder(user, out).execute(stream_, const_cast<memory&>(user), out);
  stream_.wait();
  return out;
}

void OnednnRunner::build_layer(int l, int64_t T) {
  const Case& s = p_.shape;
  const int64_t B = s.batch, H = s.hidden, I = p_.config.layer_input_size(l), G = map_.gates;
  const LayerParameters& w = p_.rnn->parameters().layers[size_t(l)];
  Layer layer;
  layer.input = I;
  const LayerDescs d{plain({T, B, I}, Tag::tnc),
                     plain({1, 1, B, H}, Tag::ldnc),
                     plain({1, 1, I, G, H}, Tag::any),
                     plain({1, 1, H, G, H}, Tag::any),
                     plain({1, 1, map_.bias_gates, H}, Tag::ldgo),
                     plain({T, B, H}, Tag::tnc),
                     plain({1, 1, B, H}, Tag::ldnc)};
  layer.pd = make_primitive_descs(map_, s.mode == Mode::train, d, engine_);
  const dnnl::rnn_primitive_desc_base& fwd = layer.pd.forward;

  layer.user_weights_layer = memory(plain({1, 1, I, G, H}, Tag::ldigo), engine_);
  layer.user_weights_iter = memory(plain({1, 1, H, G, H}, Tag::ldigo), engine_);
  const std::vector<float> wl = to_ldigo(w.w_x, H, map_), wi = to_ldigo(w.w_h, H, map_);
  std::memcpy(layer.user_weights_layer.get_data_handle(), wl.data(), wl.size() * sizeof(float));
  std::memcpy(layer.user_weights_iter.get_data_handle(), wi.data(), wi.size() * sizeof(float));
  memory bias(d.bias, engine_);
  const std::vector<float> b = to_ldgo_bias(w, H, map_);
  std::memcpy(bias.get_data_handle(), b.data(), b.size() * sizeof(float));

  memory src_layer;
  if (l == 0) {
    x_ = memory(d.src_layer, engine_, const_cast<float*>(p_.x.data()));  // oneDNN does not write src
    src_layer = x_;
  } else {
    src_layer = layers_.back().dst_layer;
  }
  layer.dst_layer = memory(fwd.dst_layer_desc(), engine_);
  const bool has_c = map_.algorithm == dnnl::algorithm::vanilla_lstm;
  for (auto& parity : layer.state)
    for (int k = 0; k < (has_c ? 2 : 1); ++k) {
      parity[k] = memory(d.src_iter, engine_);
      zero(parity[k]);
    }
  Args args{{DNNL_ARG_SRC_LAYER, src_layer},
            {DNNL_ARG_WEIGHTS_LAYER, reordered(layer.user_weights_layer, fwd.weights_layer_desc())},
            {DNNL_ARG_WEIGHTS_ITER, reordered(layer.user_weights_iter, fwd.weights_iter_desc())},
            {DNNL_ARG_BIAS, reordered(bias, fwd.bias_desc())},
            {DNNL_ARG_DST_LAYER, layer.dst_layer}};
  if (s.mode == Mode::train) args[DNNL_ARG_WORKSPACE] = memory(fwd.workspace_desc(), engine_);
  for (int parity = 0; parity < 2; ++parity) {
    // Sequence modes: parity 0 only, from zero state (state[0]) into state[1].
    layer.forward_args[parity] = args;
    layer.forward_args[parity][DNNL_ARG_SRC_ITER] = layer.state[parity][0];
    layer.forward_args[parity][DNNL_ARG_DST_ITER] = layer.state[1 - parity][0];
    if (has_c) {
      layer.forward_args[parity][DNNL_ARG_SRC_ITER_C] = layer.state[parity][1];
      layer.forward_args[parity][DNNL_ARG_DST_ITER_C] = layer.state[1 - parity][1];
    }
  }
  layer.forward = dnnl::primitive(fwd);
  keep_.push_back(bias);
  layers_.push_back(std::move(layer));
}

// Backward of each layer: zero d final state, dy = ones on top, diff_src_layer of l+1 feeding l.
void OnednnRunner::wire_backward() {
  const Case& s = p_.shape;
  const bool has_c = map_.algorithm == dnnl::algorithm::vanilla_lstm;
  for (int l = s.layers - 1; l >= 0; --l) {
    Layer& layer = layers_[size_t(l)];
    const dnnl::rnn_primitive_desc_base& bwd = layer.pd.backward;
    layer.diff_src_layer = memory(bwd.diff_src_layer_desc(), engine_);
    memory diff_dst_layer;
    if (l == s.layers - 1) {
      ones_ = memory(bwd.diff_dst_layer_desc(), engine_, const_cast<float*>(p_.dy.data()));
      diff_dst_layer = ones_;
    } else {
      diff_dst_layer = layers_[size_t(l + 1)].diff_src_layer;
    }
    const Args& f = layer.forward_args[0];
    Args& a = layer.backward_args;
    a = {{DNNL_ARG_SRC_LAYER, f.at(DNNL_ARG_SRC_LAYER)},
         {DNNL_ARG_SRC_ITER, f.at(DNNL_ARG_SRC_ITER)},
         {DNNL_ARG_WEIGHTS_LAYER, reordered(layer.user_weights_layer, bwd.weights_layer_desc())},
         {DNNL_ARG_WEIGHTS_ITER, reordered(layer.user_weights_iter, bwd.weights_iter_desc())},
         {DNNL_ARG_BIAS, f.at(DNNL_ARG_BIAS)},
         {DNNL_ARG_DST_LAYER, f.at(DNNL_ARG_DST_LAYER)},
         {DNNL_ARG_DST_ITER, f.at(DNNL_ARG_DST_ITER)},
         {DNNL_ARG_WORKSPACE, f.at(DNNL_ARG_WORKSPACE)},
         {DNNL_ARG_DIFF_SRC_LAYER, layer.diff_src_layer},
         {DNNL_ARG_DIFF_SRC_ITER, memory(bwd.diff_src_iter_desc(), engine_)},
         {DNNL_ARG_DIFF_WEIGHTS_LAYER, memory(bwd.diff_weights_layer_desc(), engine_)},
         {DNNL_ARG_DIFF_WEIGHTS_ITER, memory(bwd.diff_weights_iter_desc(), engine_)},
         {DNNL_ARG_DIFF_BIAS, memory(bwd.diff_bias_desc(), engine_)},
         {DNNL_ARG_DIFF_DST_LAYER, diff_dst_layer},
         {DNNL_ARG_DIFF_DST_ITER, memory(bwd.diff_dst_iter_desc(), engine_)}};
    zero(a[DNNL_ARG_DIFF_DST_ITER]);
    if (has_c) {
      a[DNNL_ARG_SRC_ITER_C] = f.at(DNNL_ARG_SRC_ITER_C);
      a[DNNL_ARG_DST_ITER_C] = f.at(DNNL_ARG_DST_ITER_C);
      a[DNNL_ARG_DIFF_SRC_ITER_C] = memory(bwd.diff_src_iter_c_desc(), engine_);
      a[DNNL_ARG_DIFF_DST_ITER_C] = memory(bwd.diff_dst_iter_c_desc(), engine_);
      zero(a[DNNL_ARG_DIFF_DST_ITER_C]);
    }
    for (int arg : {DNNL_ARG_DIFF_WEIGHTS_LAYER, DNNL_ARG_DIFF_WEIGHTS_ITER, DNNL_ARG_DIFF_BIAS})
      zero(a[arg]);
    layer.backward = dnnl::primitive(bwd);
  }
}

void OnednnRunner::step_once() {
  for (Layer& layer : layers_) layer.forward.execute(stream_, layer.forward_args[parity_]);
  stream_.wait();
  parity_ = 1 - parity_;
}

// Copies `m` (any layout) into a plain float vector of the layout `as`.
std::vector<float> read(const memory& m, const memory::desc& as, const dnnl::engine& engine,
                        dnnl::stream& stream) {
  memory plain_copy(as, engine);
  dnnl::reorder(m, plain_copy).execute(stream, const_cast<memory&>(m), plain_copy);
  stream.wait();
  const float* v = static_cast<const float*>(plain_copy.get_data_handle());
  return std::vector<float>(v, v + as.get_size() / sizeof(float));
}

Computed OnednnRunner::compute() {
  const Case& s = p_.shape;
  const int64_t B = s.batch, H = s.hidden, L = s.layers;
  const bool has_c = map_.algorithm == dnnl::algorithm::vanilla_lstm;
  Computed out;
  if (s.mode == Mode::step) {
    for (Layer& layer : layers_)
      for (auto& parity : layer.state)
        for (memory& m : parity)
          if (m) zero(m);
    parity_ = 0;
    run();
  } else {
    for (Layer& layer : layers_)
      for (auto& [arg, m] : layer.backward_args)
        if (arg == DNNL_ARG_DIFF_WEIGHTS_LAYER || arg == DNNL_ARG_DIFF_WEIGHTS_ITER ||
            arg == DNNL_ARG_DIFF_BIAS)
          zero(m);
    run();
  }
  const int final_parity = s.mode == Mode::step ? parity_ : 1;
  const int64_t T = s.mode == Mode::step ? 1 : s.steps;
  const memory::desc state_desc = plain({1, 1, B, H}, Tag::ldnc);
  std::vector<float> y = read(layers_.back().dst_layer, plain({T, B, H}, Tag::tnc), engine_, stream_);
  out.output.y = s.mode == Mode::step ? Tensor({B, H}, y) : Tensor({T, B, H}, y);
  out.output.final_state.h = Tensor({L, B, H});
  if (has_c) out.output.final_state.c = Tensor({L, B, H});
  for (int64_t l = 0; l < L; ++l) {
    const Layer& layer = layers_[size_t(l)];
    const std::vector<float> h = read(layer.state[final_parity][0], state_desc, engine_, stream_);
    std::copy(h.begin(), h.end(), out.output.final_state.h.data() + l * B * H);
    if (has_c) {
      const std::vector<float> c = read(layer.state[final_parity][1], state_desc, engine_, stream_);
      std::copy(c.begin(), c.end(), out.output.final_state.c.data() + l * B * H);
    }
  }
  if (s.mode != Mode::train) return out;

  out.has_gradients = true;
  RnnGradients& g = out.gradients;
  g.parameters = RnnParameters::zeros(p_.config);
  g.dx = Tensor({T, B, s.input},
                read(layers_[0].diff_src_layer, plain({T, B, s.input}, Tag::tnc), engine_, stream_));
  g.initial_state.h = Tensor({L, B, H});
  if (has_c) g.initial_state.c = Tensor({L, B, H});
  for (int64_t l = 0; l < L; ++l) {
    Layer& layer = layers_[size_t(l)];
    const Args& a = layer.backward_args;
    LayerParameters& d = g.parameters.layers[size_t(l)];
    const int64_t G = map_.gates;
    from_ldigo(read(a.at(DNNL_ARG_DIFF_WEIGHTS_LAYER), plain({1, 1, layer.input, G, H}, Tag::ldigo), engine_,
                    stream_)
                   .data(),
               H, map_, d.w_x);
    from_ldigo(
        read(a.at(DNNL_ARG_DIFF_WEIGHTS_ITER), plain({1, 1, H, G, H}, Tag::ldigo), engine_, stream_).data(),
        H, map_, d.w_h);
    bias_gradients_from_ldgo(
        read(a.at(DNNL_ARG_DIFF_BIAS), plain({1, 1, map_.bias_gates, H}, Tag::ldgo), engine_, stream_).data(),
        H, map_, d);
    const std::vector<float> dh = read(a.at(DNNL_ARG_DIFF_SRC_ITER), state_desc, engine_, stream_);
    std::copy(dh.begin(), dh.end(), g.initial_state.h.data() + l * B * H);
    if (has_c) {
      const std::vector<float> dc = read(a.at(DNNL_ARG_DIFF_SRC_ITER_C), state_desc, engine_, stream_);
      std::copy(dc.begin(), dc.end(), g.initial_state.c.data() + l * B * H);
    }
  }
  return out;
}

}  // namespace

std::unique_ptr<Runner> make_onednn_runner(const Problem& problem) {
  try {
    return std::make_unique<OnednnRunner>(problem);
  } catch (const dnnl::error& e) {
    throw Error(std::string("bench: oneDNN refused case '") + problem.shape.name + "' cell '" +
                problem.cell.name + "': " + e.what());
  }
}

}  // namespace recur::bench
