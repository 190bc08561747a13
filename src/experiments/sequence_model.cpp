// The recurrent network of the long-gap experiment (sequence_model.hpp).
#include "experiments/sequence_model.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "recur/error.hpp"
#include "recur/layers.hpp"
#include "variants/core_stack.hpp"

namespace recur::experiments {
namespace {

// [B, H] rows of a [1, B, H] state.
Tensor as_rows(Tensor t) {
  t.reshape({t.dim(1), t.dim(2)});
  return t;
}

// Temporal order counts a sequence right when every output's error is below 0.3 (the paper's rule); with
// softmax outputs that is exactly p(label) > 0.7.
double class_threshold(LongGapTask task) {
  return task == LongGapTask::temporal_order ? 1.0 - temporal_order_tolerance : 0.0;
}

double softplus(double a) { return std::max(a, 0.0) + std::log1p(std::exp(-std::abs(a))); }

}  // namespace

LossKind loss_kind(LongGapTask task) {
  switch (task) {
    case LongGapTask::adding:
      return LossKind::regression_end;
    case LongGapTask::reber:
      return LossKind::symbols_each;
    case LongGapTask::temporal_order:
    case LongGapTask::language:
      return LossKind::class_end;
  }
  return LossKind::class_end;
}

SequenceModel::SequenceModel(LongGapTask task, const StackSpec& cell, int64_t hidden_size, uint64_t seed,
                             float forget_bias)
    : task_(task),
      kind_(loss_kind(task)),
      shape_(long_gap_task_shape(task)),
      stack_(make_recurrent_stack(cell, shape_.input_size, {hidden_size}, seed)) {
  const int64_t H = hidden_size, O = shape_.output_size;
  // Bias the gate that keeps the state towards keeping it: LSTM f (rows H..2H of i,f,g,o); coupled
  // LSTM's f = 1 - i = sigmoid(-a_i), so i (rows 0..H) gets -bias; GRU z (rows H..2H of r,z,n).
  if (cell.kind == StackKind::core && cell.cell.family != CellFamily::rnn) {
    Tensor& b_x = const_cast<Rnn&>(rnn()).parameters().layers[0].b_x;
    const bool coupled = cell.cell.family == CellFamily::lstm && cell.cell.coupled_gates;
    for (int64_t j = coupled ? 0 : H; j < (coupled ? H : 2 * H); ++j)
      b_x[j] += coupled ? -forget_bias : forget_bias;
  }
  // The variants with forget gates (i, f, g, o blocks) alike: the depth-gated LSTM's input bias, and
  // both dimensions' transforms of the grid LSTM (time, and depth, along which m passes upwards).
  // The clockwork RNN has no gate.
  if (cell.kind == StackKind::dglstm || cell.kind == StackKind::gridlstm)
    for (const Parameter& p : stack_->parameters()) {
      const bool gate_bias =
          p.name.find(cell.kind == StackKind::dglstm ? ".bias_ih_l" : ".bias_l") != std::string::npos;
      if (!gate_bias || p.value->size() != 4 * H) continue;
      for (int64_t j = H; j < 2 * H; ++j) p.value->data()[j] += forget_bias;
    }
  std::mt19937_64 rng(seed ^ 0x5eed0fbeefULL);
  w_out_ = Tensor({O, H});
  const float limit = 1.0f / std::sqrt(float(H));
  for (float& v : w_out_.values()) v = (float(rng() >> 40) * 0x1p-23f - 1.0f) * limit;
  b_out_ = Tensor({O});
  dw_out_ = Tensor({O, H});
  db_out_ = Tensor({O});
}

const Rnn& SequenceModel::rnn() const {
  const auto* core = dynamic_cast<const CoreStack*>(stack_.get());
  if (core == nullptr) throw Error("long-gap model: " + stack_->kind() + " is a variant, not a core cell");
  return core->layers().front();
}

std::vector<Parameter> SequenceModel::parameters() {
  std::vector<Parameter> list = stack_->parameters();
  list.push_back({"out.weight", &w_out_, &dw_out_});
  list.push_back({"out.bias", &b_out_, &db_out_});
  return list;
}

void SequenceModel::zero_grad() {
  for (const Parameter& p : parameters()) p.grad->fill(0.0f);
}

int64_t SequenceModel::parameter_count() {
  int64_t count = 0;
  for (const Parameter& p : parameters()) count += p.value->size();
  return count;
}

SequenceModel::Inputs SequenceModel::make_inputs(const std::vector<const SequenceExample*>& batch) const {
  const int64_t B = int64_t(batch.size()), I = shape_.input_size;
  Inputs in;
  int64_t T = 1;
  for (const SequenceExample* e : batch) T = std::max(T, e->length), in.lengths.push_back(e->length);
  in.x = Tensor({T, B, I});
  for (int64_t b = 0; b < B; ++b) {
    const SequenceExample& e = *batch[size_t(b)];
    for (int64_t t = 0; t < e.length; ++t) {
      float* row = in.x.data() + (t * B + b) * I;
      if (e.tokens.empty())
        std::copy_n(e.inputs.data() + t * I, I, row);
      else
        row[e.tokens[size_t(t)]] = 1.0f;
    }
  }
  return in;
}

// out: [B, O] for the end kinds; [steps * B, O] for symbols_each.
BatchOutcome SequenceModel::score(const std::vector<const SequenceExample*>& batch, const Tensor& out,
                                  int64_t steps, Tensor* dout, double scale) const {
  const int64_t B = int64_t(batch.size()), O = shape_.output_size;
  BatchOutcome r;
  r.right.assign(size_t(B), 1);
  if (dout) *dout = Tensor(out.shape());
  double loss = 0;
  for (int64_t b = 0; b < B; ++b) {
    const SequenceExample& e = *batch[size_t(b)];
    if (kind_ == LossKind::regression_end) {
      const double err = double(out[b]) - e.value;
      loss += 0.5 * err * err;
      r.right[size_t(b)] = std::abs(err) < adding_tolerance;
      if (dout) (*dout)[b] = float(err * scale);
    } else if (kind_ == LossKind::class_end) {
      const float* o = out.data() + b * O;
      const double top = *std::max_element(o, o + O);
      double sum = 0;
      for (int64_t k = 0; k < O; ++k) sum += std::exp(o[k] - top);
      const double p_label = std::exp(o[e.label] - top) / sum;
      loss -= std::log(std::max(p_label, 1e-300));
      const bool largest = std::max_element(o, o + O) - o == e.label;
      r.right[size_t(b)] = largest && p_label > class_threshold(task_);
      if (dout)
        for (int64_t k = 0; k < O; ++k)
          (*dout)[b * O + k] = float((std::exp(o[k] - top) / sum - (k == e.label)) * scale);
    } else {
      for (int64_t t = 0; t < std::min(e.length, steps); ++t) {
        const float* o = out.data() + (t * B + b) * O;
        const uint8_t allowed = e.next_symbols[size_t(t)];
        float low_allowed = std::numeric_limits<float>::infinity();
        float high_other = -std::numeric_limits<float>::infinity();
        for (int64_t k = 0; k < O; ++k) {
          const bool z = (allowed >> k) & 1;
          if (z)
            low_allowed = std::min(low_allowed, o[k]);
          else
            high_other = std::max(high_other, o[k]);
          loss += softplus(o[k]) - (z ? o[k] : 0.0);
          if (dout) (*dout)[(t * B + b) * O + k] = float((1.0 / (1.0 + std::exp(-o[k])) - z) * scale);
        }
        if (!(low_allowed > high_other)) r.right[size_t(b)] = 0;
      }
    }
  }
  r.loss = loss / double(B);
  return r;
}

Tensor SequenceModel::output_rows(const Tensor& y, const Inputs& in) const {
  const int64_t T = y.dim(0), B = y.dim(1), H = y.dim(2);
  if (kind_ == LossKind::symbols_each) {
    Tensor rows = y;
    rows.reshape({T * B, H});
    return rows;
  }
  Tensor rows({B, H});
  for (int64_t b = 0; b < B; ++b)
    if (in.lengths[size_t(b)] > 0)
      std::copy_n(y.data() + ((in.lengths[size_t(b)] - 1) * B + b) * H, H, rows.data() + b * H);
  return rows;
}

BatchOutcome SequenceModel::train_batch(const std::vector<const SequenceExample*>& batch) {
  const int64_t B = int64_t(batch.size());
  Inputs in = make_inputs(batch);
  const int64_t T = in.x.dim(0);
  std::vector<Tensor> state = stack_->zero_state(B);
  std::mt19937_64 no_dropout;
  const Tensor y = stack_->forward_train(in.x, state, in.lengths, 0.0f, no_dropout);
  const int64_t H = y.dim(2);
  const Tensor rows = output_rows(y, in);
  Tensor out, dout, drows;
  linear_forward(rows, w_out_, b_out_, out);
  BatchOutcome r = score(batch, out, T, &dout, 1.0 / double(B));
  linear_backward(rows, w_out_, dout, &drows, dw_out_, db_out_);
  Tensor dy({T, B, H});
  if (kind_ == LossKind::symbols_each) {
    std::copy_n(drows.data(), drows.size(), dy.data());
  } else {  // only each sequence's last step feeds the loss
    for (int64_t b = 0; b < B; ++b)
      if (in.lengths[size_t(b)] > 0)
        std::copy_n(drows.data() + b * H, H, dy.data() + ((in.lengths[size_t(b)] - 1) * B + b) * H);
  }
  stack_->backward(dy);
  return r;
}

BatchOutcome SequenceModel::evaluate(const std::vector<const SequenceExample*>& batch) {
  const int64_t B = int64_t(batch.size());
  Inputs in = make_inputs(batch);
  std::vector<Tensor> state = stack_->zero_state(B);
  const Tensor y = stack_->forward(in.x, state, in.lengths);
  Tensor out;
  linear_forward(output_rows(y, in), w_out_, b_out_, out);
  return score(batch, out, in.x.dim(0), nullptr, 1.0);
}

int64_t SequenceModel::count_wrong(const std::vector<SequenceExample>& examples, int64_t batch) {
  int64_t wrong = 0;
  for (size_t start = 0; start < examples.size(); start += size_t(batch)) {
    std::vector<const SequenceExample*> part;
    for (size_t i = start; i < std::min(examples.size(), start + size_t(batch)); ++i)
      part.push_back(&examples[i]);
    for (uint8_t ok : evaluate(part).right) wrong += !ok;
  }
  return wrong;
}

std::vector<double> SequenceModel::hidden_gradient_norms(const std::vector<SequenceExample>& examples) const {
  if (examples.empty()) return {};
  std::vector<const SequenceExample*> batch;
  for (const SequenceExample& e : examples) batch.push_back(&e);
  const Rnn& rnn = this->rnn();
  const int64_t B = int64_t(batch.size()), H = rnn.config().hidden_size, I = shape_.input_size;
  const Inputs in = make_inputs(batch);
  const int64_t T = in.x.dim(0);
  int64_t shortest = T;
  for (int64_t len : in.lengths) shortest = std::min(shortest, len);
  const bool cell_state = rnn.config().cell.has_cell_state();

  // Forward one step at a time; a sequence that has ended runs a step of length 0 (its state passes).
  std::vector<Tape> tapes(static_cast<size_t>(T));
  RnnState state{Tensor({1, B, H}), cell_state ? Tensor({1, B, H}) : Tensor()};
  for (int64_t t = 0; t < T; ++t) {
    Tensor x_t({1, B, I});
    std::copy_n(in.x.data() + t * B * I, B * I, x_t.data());
    SequenceOptions options;
    for (int64_t len : in.lengths) options.lengths.push_back(t < len ? 1 : 0);
    options.h0 = &state.h;
    if (cell_state) options.c0 = &state.c;
    state = rnn.forward(x_t, options, tapes[size_t(t)]).final_state;
  }

  // The loss of each sequence's last step, summed over sequences so that row b's gradient is its own.
  const Tensor last = as_rows(state.h);
  Tensor out, dout;
  linear_forward(last, w_out_, b_out_, out);
  if (kind_ == LossKind::symbols_each) {
    // Score only the last step: a batch of one step whose "next symbols" are each sequence's last.
    std::vector<SequenceExample> tails(static_cast<size_t>(B));
    std::vector<const SequenceExample*> tail_ptrs;
    for (int64_t b = 0; b < B; ++b) {
      tails[size_t(b)].length = 1;
      tails[size_t(b)].next_symbols = {batch[size_t(b)]->next_symbols.back()};
      tail_ptrs.push_back(&tails[size_t(b)]);
    }
    score(tail_ptrs, out, 1, &dout, 1.0);
  } else {
    score(batch, out, 1, &dout, 1.0);
  }
  Tensor dw = w_out_, db = b_out_;
  RnnState d{Tensor(), cell_state ? Tensor({1, B, H}) : Tensor()};
  linear_backward(last, w_out_, dout, &d.h, dw, db);
  d.h.reshape({1, B, H});

  std::vector<double> sum(size_t(shortest), 0.0);
  RnnGradients grads;
  grads.parameters = RnnParameters::zeros(rnn.config());
  const Tensor dy({1, B, H});
  for (int64_t t = T - 1; t >= 0; --t) {
    // d holds dL/d(state after step t).
    for (int64_t b = 0; b < B; ++b) {
      const int64_t k = in.lengths[size_t(b)] - 1 - t;
      if (k < 0 || k >= shortest) continue;
      double s = 0;
      for (int64_t j = 0; j < H; ++j) s += double(d.h[b * H + j]) * d.h[b * H + j];
      sum[size_t(k)] += std::sqrt(s);
    }
    rnn.backward(tapes[size_t(t)], dy, d, grads);
    d = grads.initial_state;
  }
  for (double& s : sum) s /= double(B);
  return sum;
}

}  // namespace recur::experiments
