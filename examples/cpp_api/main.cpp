// The C++ API in one page: build a 2-layer GRU, run a batch of sequences of different lengths,
// take one gradient step on a squared-error loss, stream step by step, serve from weights packed once,
// save and load the weights.
#include <cstdio>
#include <random>
#include <recur/recur.hpp>

int main() {
  // T time steps, B sequences, I inputs, H hidden units.
  const int64_t T = 20, B = 4, I = 3, H = 8;
  recur::RnnConfig config{recur::CellSpec::gru(), I, H, /*num_layers=*/2, /*bidirectional=*/false};
  recur::Rnn rnn(config, /*seed=*/42);

  std::mt19937 generator(7);
  std::normal_distribution<float> normal;
  recur::Tensor x({T, B, I});
  for (float& v : x.values()) v = normal(generator);

  recur::SequenceOptions options;
  options.lengths = {20, 5, 13, 1};  // any order; outputs past a sequence's end are zero
  recur::Tape tape;
  recur::RnnOutput out = rnn.forward(x, options, tape);

  // Loss = 0.5 * sum(y^2), so dL/dy = y. Gradients of every weight, of x and of the initial state.
  double loss = 0;
  for (float v : out.y.values()) loss += 0.5 * v * v;
  recur::RnnGradients grads{recur::RnnParameters::zeros(config)};
  rnn.backward(tape, /*dy=*/out.y, /*d_final_state=*/{}, grads);
  for (size_t k = 0; k < rnn.parameters().layers.size(); ++k) {
    recur::LayerParameters& w = rnn.parameters().layers[k];
    const recur::LayerParameters& g = grads.parameters.layers[k];
    for (auto [p, d] : {std::pair{&w.w_x, &g.w_x}, {&w.w_h, &g.w_h}, {&w.b_x, &g.b_x}, {&w.b_h, &g.b_h}})
      for (int64_t i = 0; i < p->size(); ++i) (*p)[i] -= 0.01f * (*d)[i];
  }
  // (Keep the output alive while reading it: values() is a view into the tensor.)
  const recur::RnnOutput after = rnn.forward(x, options);
  double loss_after = 0;
  for (float v : after.y.values()) loss_after += 0.5 * v * v;
  std::printf("loss %.4f -> %.4f after one SGD step\n", loss, loss_after);

  // Streaming: one step at a time, the state carried inside the stream.
  recur::RnnStream stream(rnn, /*batch=*/1);
  recur::Tensor x_t({1, I}, 0.5f);
  for (int t = 0; t < 3; ++t) std::printf("stream step %d: h[0] = %+.5f\n", t, stream.step(x_t)[0]);

  // Inference on weights packed once (a snapshot: later changes to rnn are not seen), for serving.
  const recur::FrozenRnn frozen(rnn);
  const recur::RnnOutput served = frozen.forward(x, options);
  recur::RnnStream fast_stream(frozen, /*batch=*/1);
  std::printf("frozen: y[0] = %+.5f (Rnn::forward %+.5f); frozen stream step 0: h[0] = %+.5f\n", served.y[0],
              after.y[0], fast_stream.step(x_t)[0]);

  recur::save_rnn("gru_example.safetensors", rnn);
  const recur::Rnn loaded = recur::load_rnn("gru_example.safetensors");
  std::printf("saved and loaded a %s with %d layers\n", loaded.config().cell.name().c_str(),
              loaded.config().num_layers);
  return loss_after < loss ? 0 : 1;
}
