// Built when libdnnl is absent: the benchmark then times recur (and PyTorch) only.
#include "onednn_runner.hpp"
#include "recur/error.hpp"

namespace recur::bench {

bool onednn_available() { return false; }
std::string onednn_description() { return "oneDNN: not built in (libdnnl-dev was not found by CMake)"; }
void onednn_set_num_threads(int) {}
std::unique_ptr<Runner> make_onednn_runner(const Problem&) {
  throw Error("bench: this build has no oneDNN (install libdnnl-dev and reconfigure)");
}

}  // namespace recur::bench
