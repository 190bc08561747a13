#pragma once
// The oneDNN side of the benchmark: its RNN primitives on recur's weights (compiled only when
// libdnnl is found; otherwise a stub says so).
#include <memory>
#include <string>

#include "problem.hpp"

namespace recur::bench {

bool onednn_available();
// "oneDNN 2.6.3, CPU runtime OpenMP, ISA ..." or why it is absent.
std::string onednn_description();
// oneDNN's threads (its OpenMP runtime); primitives made afterwards are tuned to this count.
void onednn_set_num_threads(int threads);
// The same network as problem.rnn as a chain of single-layer oneDNN primitives: vanilla_rnn (tanh),
// lstm, lbr_gru (recur's gru, reset after) or gru (gru_reset_before). Weight reorders into oneDNN's
// preferred layouts happen here, once, outside the timed region. Throws recur::Error when oneDNN is
// absent or has no equivalent of the cell.
std::unique_ptr<Runner> make_onednn_runner(const Problem& problem);

}  // namespace recur::bench
