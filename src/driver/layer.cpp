#include "driver/layer.hpp"

#include <algorithm>
#include <numeric>

#include "kernels/denormals.hpp"
#include "kernels/gemm.hpp"
#include "kernels/post_gemm.hpp"
#include "kernels/thread_pool.hpp"

namespace recur::driver {

SequenceLayout SequenceLayout::make(int64_t steps, int64_t batch, const std::vector<int64_t>& lengths) {
  SequenceLayout layout;
  layout.steps = steps;
  layout.batch = batch;
  layout.order.resize(static_cast<size_t>(batch));
  std::iota(layout.order.begin(), layout.order.end(), 0);
  if (lengths.empty()) {
    layout.lengths.assign(static_cast<size_t>(batch), steps);
  } else {
    // Stable, so that equal lengths keep the caller's order and runs are reproducible.
    std::stable_sort(layout.order.begin(), layout.order.end(),
                     [&](int64_t a, int64_t b) { return lengths[size_t(a)] > lengths[size_t(b)]; });
    for (int64_t k : layout.order) layout.lengths.push_back(lengths[size_t(k)]);
  }
  layout.live_rows.assign(static_cast<size_t>(steps), 0);
  for (int64_t t = 0; t < steps; ++t)
    layout.live_rows[size_t(t)] = std::count_if(layout.lengths.begin(), layout.lengths.end(),
                                                [&](int64_t length) { return length > t; });
  return layout;
}

bool SequenceLayout::in_caller_order() const {
  for (size_t k = 0; k < order.size(); ++k)
    if (order[k] != int64_t(k)) return false;
  return true;
}

namespace {

// The fewest and most live rows of a step (the packed products' row counts).
kernels::PackedWeights::Rows step_rows(const SequenceLayout& layout) {
  kernels::PackedWeights::Rows rows{layout.live_rows[0], layout.live_rows[0]};
  for (int64_t live : layout.live_rows)
    if (live > 0) rows.fewest = std::min(rows.fewest, live);
  return rows;
}

// A tape at least this large (the two cores' L2 caches twice over) is written past the caches.
constexpr int64_t kStreamedTapeBytes = int64_t(8) << 20;

// Time index of the k-th step processed in the given direction.
int64_t step_time(int64_t k, int64_t steps, bool reverse) { return reverse ? steps - 1 - k : k; }

}  // namespace

void layer_forward(const LayerForward& args, LayerScratch& scratch) {
  // The steps' element-wise passes run on this thread as on the pool's, with subnormals flushed: a
  // unit's result does not depend on the thread that computes it, and a saturated gate's subnormal
  // (sigmoid below -87) costs no microcode assist.
  const kernels::FlushDenormals flush;
  const cells::Cell& cell = *args.cell;
  const SequenceLayout& layout = *args.layout;
  const int64_t T = layout.steps, B = layout.batch, H = cell.hidden(), width = cell.gate_width();
  const int64_t saved_width = cell.saved_width();

  // Batches of at most 4 rows take the small-batch kernel, which reads W_h as it is, unless W_h was packed
  // once for many passes: the packed kernel is 10-40% faster there (kernel_bench: matvec), but a copy
  // made for one pass costs some twenty steps' worth ("packing W_h").
  const kernels::PackedWeights* packed_w_h = args.packed.w_h;
  const bool pack = packed_w_h == nullptr && kernels::PackedWeights::available() && T > 0 &&
                    layout.live_rows[0] > kernels::kSmallGemmMaxRows;
  if (pack)
    scratch.w_h.pack_transposed(args.weights->w_h.data(), H, cell.spec().gate_count(), H, H,
                                step_rows(layout));

  // Inference has no tape to read h(t-1) from while h(t) is written: two [B, H] buffers take turns.
  LayerForward::CarriedRing* const carried = args.tape == nullptr ? args.carried_ring : nullptr;
  const int64_t ring_floats = args.tape == nullptr && carried == nullptr ? 2 * B * H : 0;
  float* gates =
      scratch_of_size(scratch.buffer, size_t(T * B * width + B * cell.scratch_width() + ring_floats));
  float* step_scratch = gates + T * B * width;
  float* const ring = carried != nullptr ? carried->buffers : step_scratch + B * cell.scratch_width();
  const int64_t phase = carried != nullptr ? carried->phase : 0;
  // h(t-1) of the k-th step processed, which stays put while the step writes h(t): the tape's, or in
  // inference one of the ring's two buffers, which the steps write and read in turn.
  const auto h_prev_of = [&](int64_t k, int64_t t) {
    return args.tape != nullptr ? args.tape->h_prev.data() + t * B * H : ring + ((k + phase) % 2) * B * H;
  };
  // gates = x W_x^T over all T*B rows at once; the cells add b_x with b_h in their element-wise passes
  // (copying b_x into every row first cost a write and a read of the whole buffer: 26 MB for an LSTM
  // at H = 512 and T*B = 3200).
  // A stream's one step of a small batch leaves x W_x^T to the cells that run it with their recurrent
  // product, in one task (Cell::fuses_input_product); recur's small-batch kernel takes the others'.
  // On W_h packed once, only with W_x packed likewise (LayerForward::Packed::w_x_steps).
  const bool fuse_input = T == 1 && layout.live_rows[0] <= kernels::kSmallGemmMaxRows &&
                          cell.fuses_input_product() &&
                          (packed_w_h == nullptr || args.packed.w_x_steps != nullptr);
  if (!fuse_input) {
    if (args.packed.w_x != nullptr)
      args.packed.w_x->multiply(T * B, args.x, args.input_size, 0.0f, gates, width);
    else
      kernels::recurrent_gemm_nt(T * B, width, args.input_size, args.x, args.input_size,
                                 args.weights->w_x.data(), args.input_size, 0.0f, gates, width);
  }

  if (args.tape != nullptr) {
    // The tape is reused from call to call (recur::Tape). Every live row of every step is written below;
    // only the rows past a sequence's end are zeroed, because the merged weight-gradient GEMMs read
    // them (times a zero gradient, which must not meet a stale NaN).
    args.tape->h_prev.resize(static_cast<size_t>(T * B * H));
    args.tape->saved.resize(static_cast<size_t>(T * B * saved_width));
    for (int64_t t = 0; t < T; ++t) {
      const int64_t live = layout.live_rows[size_t(t)];
      std::fill(args.tape->h_prev.begin() + (t * B + live) * H, args.tape->h_prev.begin() + (t + 1) * B * H,
                0.0f);
      std::fill(args.tape->saved.begin() + (t * B + live) * saved_width,
                args.tape->saved.begin() + (t + 1) * B * saved_width, 0.0f);
    }
  }
  // A tape larger than the caches is written past them (kernels/post_gemm.hpp): backward reads it only
  // after every step.
  const bool streamed_tape =
      args.tape != nullptr && T * B * saved_width * int64_t(sizeof(float)) >= kStreamedTapeBytes;
  // The step's pass writes h(t) into y and into the next step's h(t-1) as it computes it, so that neither
  // is a serial copy between steps, and a step's threads can share it by units without a copy of h(t-1)
  // (each reads all of h(t-1) while writing its own units of h(t)). The rows of h(t-1) that no earlier
  // pass wrote (the first step's, and backward's sequences starting late) are copied from the state.
  int64_t rows_written = carried != nullptr && carried->filled ? B : 0;
  for (int64_t k = 0; k < T; ++k) {
    const int64_t t = step_time(k, T, args.reverse);
    const int64_t rows = layout.live_rows[size_t(t)];
    if (rows == 0) {
      rows_written = 0;
      continue;
    }
    cells::StepForward step;
    step.rows = rows;
    step.gates = gates + t * B * width;
    step.h = args.h;
    step.c = args.c;
    step.scratch = step_scratch;
    step.w_h = packed_w_h != nullptr ? packed_w_h : pack ? &scratch.w_h : nullptr;
    if (fuse_input) {
      step.x = args.x + t * B * args.input_size;
      step.ldx = step.input_size = args.input_size;
      step.w_x = args.weights->w_x.data();
      step.w_x_packed = packed_w_h != nullptr ? args.packed.w_x_steps : nullptr;
    }
    step.copies.y = args.y + t * B * args.ldy;
    step.copies.ldy = args.ldy;
    float* h_prev = h_prev_of(k, t);
    if (rows_written < rows)
      std::copy_n(args.h + rows_written * H, (rows - rows_written) * H, h_prev + rows_written * H);
    step.h_prev = h_prev;
    if (k + 1 < T) {
      const int64_t next_t = step_time(k + 1, T, args.reverse);
      step.copies.next = h_prev_of(k + 1, next_t);
      step.copies.next_rows = std::min(rows, layout.live_rows[size_t(next_t)]);
      rows_written = step.copies.next_rows;
    } else if (carried != nullptr) {  // for the stream's next pass
      step.copies.next = h_prev_of(k + 1, 0);
      step.copies.next_rows = rows;
    }
    if (args.tape != nullptr) {
      step.saved = args.tape->saved.data() + t * B * saved_width;
      step.saved_streamed = streamed_tape;
    }
    cell.forward_step(step);
  }
  if (carried != nullptr) {
    carried->phase = int((phase + T) % 2);
    carried->filled = T > 0 && layout.live_rows[size_t(step_time(T - 1, T, args.reverse))] == B;
  }
}

void layer_backward(const LayerBackward& args, LayerScratch& scratch) {
  const kernels::FlushDenormals flush;  // as in layer_forward
  const cells::Cell& cell = *args.cell;
  const SequenceLayout& layout = *args.layout;
  const int64_t T = layout.steps, B = layout.batch, H = cell.hidden(), width = cell.gate_width();
  const int64_t saved_width = cell.saved_width();
  const bool distinct = cell.distinct_recurrent_gradient();

  const int64_t gate_floats = T * B * width;
  // Every live row's gate gradients are written by its step; only the rows past a sequence's end are
  // zeroed (they enter the weight-gradient GEMMs below), not the whole buffer.
  float* dgates_x =
      scratch_of_size(scratch.buffer, size_t(gate_floats * (distinct ? 2 : 1) + B * cell.scratch_width()));
  // The packed kernel is the faster dg W_h at every batch size (BLAS is weakest at the smallest).
  const bool pack = kernels::PackedWeights::available();
  if (pack) scratch.w_h.pack(args.weights->w_h.data(), H, width, H, step_rows(layout));
  float* dgates_h = distinct ? dgates_x + gate_floats : dgates_x;
  float* step_scratch = dgates_x + gate_floats * (distinct ? 2 : 1);
  for (int64_t t = 0; t < T; ++t) {
    const int64_t live = layout.live_rows[size_t(t)];
    std::fill(dgates_x + (t * B + live) * width, dgates_x + (t + 1) * B * width, 0.0f);
    if (distinct) std::fill(dgates_h + (t * B + live) * width, dgates_h + (t + 1) * B * width, 0.0f);
  }

  for (int64_t k = T - 1; k >= 0; --k) {
    const int64_t t = step_time(k, T, args.reverse);
    const int64_t rows = layout.live_rows[size_t(t)];
    if (rows == 0) continue;
    cells::StepBackward step;
    step.dy = args.dy + t * B * args.ldy;  // joins dh in the cell's element-wise pass
    step.ldy = args.ldy;
    step.rows = rows;
    step.saved = args.tape->saved.data() + t * B * saved_width;
    step.h_prev = args.tape->h_prev.data() + t * B * H;
    step.dh = args.dh;
    step.dc = args.dc;
    step.dgates_x = dgates_x + t * B * width;
    step.dgates_h = dgates_h + t * B * width;
    step.dpeephole = args.grads->peephole.empty() ? nullptr : args.grads->peephole.data();
    step.scratch = step_scratch;
    step.w_h = pack ? &scratch.w_h : nullptr;
    cell.backward_step(step);
  }

  // The weight gradients, once over all steps (rows of dead steps hold zero gradients).
  const int64_t rows = T * B, I = args.input_size;
  LayerParameters& grads = *args.grads;
  cell.accumulate_weight_gradients(rows, dgates_x, args.x, I, dgates_h, args.tape->h_prev.data(),
                                   args.tape->saved.data(), grads);
  kernels::gemm_nn(rows, I, width, dgates_x, width, args.weights->w_x.data(), I,
                   args.accumulate_dx ? 1.0f : 0.0f, args.dx, I);
}

}  // namespace recur::driver
