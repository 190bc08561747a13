#pragma once
// Rnn weights in safetensors files, named as PyTorch's nn.RNN / nn.LSTM / nn.GRU state_dict names them:
//   weight_ih_l{k}[_reverse] [G*H, I_k]   weight_hh_l{k}[_reverse] [G*H, H]
//   bias_ih_l{k}[_reverse]   [G*H]        bias_hh_l{k}[_reverse]   [G*H]
// recur's gate order is PyTorch's (LSTM i,f,g,o; GRU r,z,n), so a file recur writes for a cell PyTorch
// has loads with torch's load_state_dict, and a PyTorch state_dict saved as safetensors runs in recur.
// Cells PyTorch lacks add weight_peephole_l{k}[_reverse] [P*H] (i, f, o) and need the metadata.
// recur writes metadata: format=recur, cell=<CellSpec::name()>, input_size, hidden_size, num_layers,
// bidirectional; anything else given is kept.
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "recur/rnn.hpp"
#include "recur/safetensors.hpp"

namespace recur {

struct ModelLoadOptions {
  // Overrides what the names cannot tell: a 1-gate file is rnn_tanh unless told rnn_relu, a 3-gate file
  // is a GRU with the reset after (PyTorch's) unless told otherwise. Ignored where metadata names a cell.
  std::optional<CellSpec> cell;
};

// The configuration a file describes: from recur's metadata if present, else inferred from the names
// and shapes (cell from gate rows, sizes, layers, directions). Throws recur::Error naming the file and
// the tensor that is missing or misshapen.
RnnConfig infer_rnn_config(const SafetensorsFile& file, const ModelLoadOptions& options = {});
Rnn load_rnn(const SafetensorsFile& file, const ModelLoadOptions& options = {});
Rnn load_rnn(const std::string& path, const ModelLoadOptions& options = {});

// PyTorch-style names and tensors, in PyTorch's order.
std::vector<std::pair<std::string, Tensor>> rnn_state_dict(const Rnn& rnn);
std::map<std::string, std::string> rnn_metadata(const RnnConfig& config);
// Atomic write of rnn_state_dict + rnn_metadata (+ extra metadata).
void save_rnn(const std::string& path, const Rnn& rnn, const std::map<std::string, std::string>& extra_metadata = {});

}  // namespace recur
