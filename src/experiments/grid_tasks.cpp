// The Grid LSTM paper's parity and addition tasks (recur/grid_tasks.hpp): problem generators, the three
// models behind one small interface (body -> linear -> softmax), and the training run.
#include "recur/grid_tasks.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <memory>
#include <random>

#include "recur/error.hpp"
#include "recur/grid_lstm.hpp"
#include "recur/layers.hpp"
#include "recur/optimizer.hpp"
#include "recur/rnn.hpp"

namespace recur {

std::string grid_task_name(GridTask task) { return task == GridTask::parity ? "parity" : "addition"; }

GridTask parse_grid_task(const std::string& name) {
  if (name == "parity") return GridTask::parity;
  if (name == "addition") return GridTask::addition;
  throw Error("grid task '" + name + "': expected parity or addition");
}

void GridRunConfig::validate() const {
  const auto positive = [](const char* field, int64_t value) {
    if (value < 1)
      throw Error(std::string("grid run: ") + field + " must be at least 1, got " + std::to_string(value));
  };
  if (model != "grid" && model != "grid_untied" && model != "lstm")
    throw Error("grid run: model '" + model + "': expected grid, grid_untied or lstm");
  positive("bits", bits), positive("digits", digits), positive("hidden_size", hidden_size);
  positive("num_layers", num_layers), positive("batch", batch), positive("max_samples", max_samples);
  positive("window", window), positive("test_samples", test_samples);
  if (digits > 18)
    throw Error("grid run: digits must be at most 18 (64-bit sums), got " + std::to_string(digits));
  if (!(learning_rate > 0))
    throw Error("grid run: learning_rate must be positive, got " + std::to_string(learning_rate));
}

namespace {

using Clock = std::chrono::steady_clock;

// Addition's input symbols (one-hot) and the classes of every output: the ten digits.
constexpr int64_t kPlus = 10, kEquals = 11, kBlank = 12, kSymbols = 13, kDigitClasses = 10;

int64_t input_size(const GridRunConfig& c) { return c.task == GridTask::parity ? c.bits : kSymbols; }
int64_t classes(const GridRunConfig& c) { return c.task == GridTask::parity ? 2 : kDigitClasses; }
// Steps whose outputs are scored: the last ones.
int64_t output_steps(const GridRunConfig& c) { return c.task == GridTask::parity ? 1 : c.digits + 1; }
int64_t steps(const GridRunConfig& c) { return c.task == GridTask::parity ? 1 : 3 * c.digits + 3; }

// x [T, B, I] and the targets of the scored steps, rows (t - T + out) * B + b.
struct Problems {
  Tensor x;
  std::vector<int32_t> targets;
};

Problems make_problems(const GridRunConfig& c, int64_t batch, std::mt19937_64& rng) {
  const int64_t T = steps(c), I = input_size(c), out = output_steps(c);
  Problems p{Tensor({T, batch, I}), std::vector<int32_t>(size_t(out * batch))};
  for (int64_t b = 0; b < batch; ++b) {
    if (c.task == GridTask::parity) {
      int ones = 0;
      for (int64_t j = 0; j < I; ++j) {
        const int bit = int(rng() >> 63);
        p.x[b * I + j] = float(bit), ones += bit;
      }
      p.targets[size_t(b)] = ones % 2;
      continue;
    }
    // Two numbers of exactly D digits (the first nonzero), digits most significant first.
    const int64_t D = c.digits;
    std::vector<int64_t> symbols;
    uint64_t a = 0, a2 = 0;
    for (uint64_t* number : {&a, &a2}) {
      for (int64_t j = 0; j < D; ++j) {
        const int64_t digit = j == 0 ? 1 + int64_t(rng() % 9) : int64_t(rng() % 10);
        *number = *number * 10 + uint64_t(digit);
        symbols.push_back(digit);
      }
      symbols.push_back(number == &a ? kPlus : kEquals);
    }
    while (int64_t(symbols.size()) < T) symbols.push_back(kBlank);
    for (int64_t t = 0; t < T; ++t) p.x[(t * batch + b) * I + symbols[size_t(t)]] = 1.0f;
    uint64_t sum = a + a2;
    for (int64_t j = out - 1; j >= 0; --j) p.targets[size_t(j * batch + b)] = int32_t(sum % 10), sum /= 10;
  }
  return p;
}

// The recurrent part of a model: x [T, B, I] -> the outputs of the last `out` steps, [out * B, width].
class Body {
 public:
  virtual ~Body() = default;
  virtual Tensor forward(const Tensor& x, int64_t out, bool train) = 0;
  virtual void backward(const Tensor& d_out) = 0;
  virtual std::vector<Parameter> parameters() = 0;
};

// The 1-LSTM on one step's bits (parity).
class DeepGridBody final : public Body {
 public:
  DeepGridBody(const GridLstm1dConfig& c, uint64_t seed) : net_(c, seed) {}
  Tensor forward(const Tensor& x, int64_t, bool train) override {
    Tensor rows = x;
    rows.reshape({x.dim(1), x.dim(2)});
    return train ? net_.forward_train(rows) : net_.forward(rows);
  }
  void backward(const Tensor& d_out) override { net_.backward(d_out); }
  std::vector<Parameter> parameters() override { return net_.parameters(); }

 private:
  GridLstm1d net_;
};

// The last `out` steps of y [T, B, H] are its last out * B rows.
Tensor tail_rows(const Tensor& y, int64_t out) {
  const int64_t W = y.dim(2), rows = out * y.dim(1);
  return Tensor({rows, W}, std::vector<float>(y.values().end() - rows * W, y.values().end()));
}
Tensor pad_tail(const Tensor& d_out, const Shape& shape) {
  Tensor dy(shape);
  std::copy(d_out.values().begin(), d_out.values().end(), dy.values().end() - d_out.size());
  return dy;
}

// The 2-LSTM along time and depth (addition; parity as T = 1).
class TimeGridBody final : public Body {
 public:
  TimeGridBody(const GridLstmConfig& c, uint64_t seed) : net_(c, seed) {}
  Tensor forward(const Tensor& x, int64_t out, bool train) override {
    std::vector<Tensor> state = net_.zero_state(x.dim(1));
    const Tensor y = train ? net_.forward_train(x, state, {}, 0.0f, rng_) : net_.forward(x, state, {});
    shape_ = y.shape();
    return tail_rows(y, out);
  }
  void backward(const Tensor& d_out) override { net_.backward(pad_tail(d_out, shape_)); }
  std::vector<Parameter> parameters() override { return net_.parameters(); }

 private:
  GridLstm net_;
  std::mt19937_64 rng_{0};  // dropout is 0: never drawn from
  Shape shape_;
};

// A stacked LSTM (recur::Rnn).
class LstmBody final : public Body {
 public:
  LstmBody(const RnnConfig& c, uint64_t seed) : rnn_(c, seed) { grads_.parameters = RnnParameters::zeros(c); }
  Tensor forward(const Tensor& x, int64_t out, bool train) override {
    const RnnOutput r = train ? rnn_.forward(x, {}, tape_) : rnn_.forward(x);
    shape_ = r.y.shape();
    return tail_rows(r.y, out);
  }
  void backward(const Tensor& d_out) override { rnn_.backward(tape_, pad_tail(d_out, shape_), {}, grads_); }
  std::vector<Parameter> parameters() override {
    std::vector<Parameter> out;
    for (size_t l = 0; l < grads_.parameters.layers.size(); ++l) {
      LayerParameters& w = rnn_.parameters().layers[l];
      LayerParameters& g = grads_.parameters.layers[l];
      std::string suffix = "_l";  // (+= : GCC 12 warns falsely on "literal" + std::to_string)
      suffix += std::to_string(l);
      out.push_back({"lstm.weight_ih" + suffix, &w.w_x, &g.w_x});
      out.push_back({"lstm.weight_hh" + suffix, &w.w_h, &g.w_h});
      out.push_back({"lstm.bias_ih" + suffix, &w.b_x, &g.b_x});
      out.push_back({"lstm.bias_hh" + suffix, &w.b_h, &g.b_h});
    }
    return out;
  }

 private:
  Rnn rnn_;
  Tape tape_;
  RnnGradients grads_;
  Shape shape_;
};

std::unique_ptr<Body> make_body(const GridRunConfig& c, uint64_t seed) {
  const bool tied = c.model == "grid";
  if (c.model == "lstm")
    return std::make_unique<LstmBody>(
        RnnConfig{CellSpec::lstm(), input_size(c), c.hidden_size, int(c.num_layers)}, seed);
  if (c.task == GridTask::parity)
    return std::make_unique<DeepGridBody>(GridLstm1dConfig{input_size(c), c.hidden_size, c.num_layers, tied},
                                          seed);
  return std::make_unique<TimeGridBody>(GridLstmConfig{input_size(c), c.hidden_size, c.num_layers, tied},
                                        seed);
}

// Every right output of problem b: scored rows j * B + b.
std::vector<uint8_t> all_right(const Tensor& logits, const std::vector<int32_t>& targets, int64_t batch) {
  const int64_t C = logits.dim(1), rows = logits.dim(0);
  std::vector<uint8_t> right(size_t(batch), 1);
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = logits.data() + r * C;
    const int64_t best = std::max_element(row, row + C) - row;
    if (best != targets[size_t(r)]) right[size_t(r % batch)] = 0;
  }
  return right;
}

struct Model {
  std::unique_ptr<Body> body;
  Tensor w_out, b_out, dw_out, db_out;

  std::vector<Parameter> parameters() {
    std::vector<Parameter> out = body->parameters();
    out.push_back({"out.weight", &w_out, &dw_out});
    out.push_back({"out.bias", &b_out, &db_out});
    return out;
  }
};

Model make_model(const GridRunConfig& c, uint64_t seed) {
  const Shape w{classes(c), c.hidden_size}, b{classes(c)};
  Model m{make_body(c, seed), Tensor(w), Tensor(b), Tensor(w), Tensor(b)};
  std::mt19937_64 generator(seed ^ 0x5bd1e995ULL);
  const float bound = 1.0f / std::sqrt(float(c.hidden_size));
  for (float& v : m.w_out.values()) v = (2.0f * float(generator() >> 40) * 0x1p-24f - 1.0f) * bound;
  // With init_scale > 0 every weight of the body is redrawn uniform in [-init_scale, init_scale] (biases
  // 0): a scale that does not shrink with H keeps the gates input-dependent in small networks.
  if (c.init_scale > 0)
    for (const Parameter& p : m.body->parameters()) {
      const bool bias = p.name.find("bias") != std::string::npos;
      for (float& v : p.value->values())
        v = bias ? 0.0f : (2.0f * float(generator() >> 40) * 0x1p-24f - 1.0f) * c.init_scale;
    }
  // The forget gate's rows (block 1 of i, f, g, o) of every LSTM bias start at forget_bias (the grid's
  // transforms, the stacked LSTM's b_x; its b_h's at 0), so that m passes through depth at the start.
  for (const Parameter& p : m.body->parameters()) {
    const bool grid_bias = p.name.find(".bias_l") != std::string::npos,
               x_bias = p.name.find(".bias_ih") != std::string::npos;
    if (!grid_bias && !x_bias && p.name.find(".bias_hh") == std::string::npos) continue;
    const int64_t H = p.value->size() / 4;
    std::fill(p.value->data() + H, p.value->data() + 2 * H, grid_bias || x_bias ? c.forget_bias : 0.0f);
  }
  return m;
}

uint64_t stream_seed(uint64_t seed, uint64_t stream) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ULL + stream * 0xBF58476D1CE4E5B9ULL + 1;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

int64_t count(const std::vector<Parameter>& parameters) {
  int64_t n = 0;
  for (const Parameter& p : parameters) n += p.value->size();
  return n;
}

}  // namespace

int64_t grid_task_parameter_count(const GridRunConfig& config) {
  config.validate();
  const int64_t H = config.hidden_size, L = config.num_layers, I = input_size(config), C = classes(config);
  const int64_t head = C * H + C;
  if (config.model == "lstm") {
    int64_t n = head;
    for (int64_t l = 0; l < L; ++l) n += 4 * H * ((l == 0 ? I : H) + H) + 8 * H;
    return n;
  }
  const int64_t dims = config.task == GridTask::parity ? 1 : 2;
  const int64_t transforms = (config.model == "grid" ? 1 : L) * dims;
  return 2 * H * I + 2 * H + transforms * (4 * H * dims * H + 4 * H) + head;
}

int64_t grid_task_matched_lstm_hidden(const GridRunConfig& config) {
  GridRunConfig grid = config, lstm = config;
  grid.model = "grid", lstm.model = "lstm";
  const int64_t target = grid_task_parameter_count(grid);
  int64_t best = 1;
  for (int64_t H = 1; H <= 4096; ++H) {
    lstm.hidden_size = H;
    const int64_t n = grid_task_parameter_count(lstm);
    lstm.hidden_size = best;
    if (std::llabs(n - target) < std::llabs(grid_task_parameter_count(lstm) - target)) best = H;
    if (n > target) break;
  }
  return best;
}

GridRunResult run_grid_task(const GridRunConfig& c, const std::function<void(const std::string&)>& progress) {
  c.validate();
  Model model = make_model(c, stream_seed(c.seed, 0));
  std::mt19937_64 train_rng(stream_seed(c.seed, 1)), test_rng(stream_seed(c.seed, 2));
  OptimizerConfig adam;
  adam.kind = OptimizerKind::adam;
  Optimizer optimizer(adam);
  const std::vector<Parameter> parameters = model.parameters();
  GridRunResult result;
  result.parameters = count(parameters);
  const int64_t out = output_steps(c);
  std::deque<std::pair<uint8_t, double>> window;  // per problem: all right, its mean loss per output
  const Clock::time_point start = Clock::now();
  double last_report = 0;
  const auto elapsed = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };

  while (result.samples < c.max_samples && !(c.max_seconds > 0 && elapsed() >= c.max_seconds)) {
    const int64_t B = std::min(c.batch, c.max_samples - result.samples);
    const Problems p = make_problems(c, B, train_rng);
    for (const Parameter& q : parameters) q.grad->fill(0.0f);
    const Tensor features = model.body->forward(p.x, out, true);
    Tensor logits({out * B, classes(c)}), dlogits, dfeatures(features.shape());
    linear_forward(features, model.w_out, model.b_out, logits);
    const double loss = softmax_cross_entropy(logits, p.targets, &dlogits);
    linear_backward(features, model.w_out, dlogits, &dfeatures, model.dw_out, model.db_out);
    model.body->backward(dfeatures);
    const double norm = c.clip_norm > 0 ? clip_gradient_norm(parameters, c.clip_norm) : 0.0;
    if (std::isfinite(norm)) optimizer.step(parameters, c.learning_rate);
    result.samples += B;
    for (uint8_t right : all_right(logits, p.targets, B)) {
      window.push_back({right, loss});
      if (int64_t(window.size()) > c.window) window.pop_front();
    }
    const bool solved = int64_t(window.size()) == c.window &&
                        std::all_of(window.begin(), window.end(), [](const auto& w) { return w.first == 1; });
    if (progress && elapsed() - last_report >= 5) {
      last_report = elapsed();
      char line[200];
      std::snprintf(line, sizeof line, "%s %s: %lld samples, loss %.4f", grid_task_name(c.task).c_str(),
                    c.model.c_str(), (long long)result.samples, loss);
      progress(line);
    }
    if (solved) {
      result.solved_at = result.samples;
      break;
    }
  }
  result.seconds = elapsed();
  for (const auto& [right, loss] : window) result.train_accuracy += right, result.train_loss += loss;
  if (!window.empty())
    result.train_accuracy /= double(window.size()), result.train_loss /= double(window.size());
  for (int64_t done = 0; done < c.test_samples;) {
    const int64_t B = std::min<int64_t>(100, c.test_samples - done);
    const Problems p = make_problems(c, B, test_rng);
    Tensor logits({out * B, classes(c)});
    linear_forward(model.body->forward(p.x, out, false), model.w_out, model.b_out, logits);
    for (uint8_t right : all_right(logits, p.targets, B)) result.test_right += right;
    done += B;
  }
  result.test_count = c.test_samples;
  return result;
}

}  // namespace recur
