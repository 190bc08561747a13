#pragma once
// Which recurrent stack a model uses: layers of one of the core's cells (recur::Rnn, any CellSpec) or
// one of the structured variants, each with its own driver (recur/recurrent_stack.hpp):
//   dglstm     depth-gated LSTM (Yao et al. 2015)          all layers the same size
//   clockwork  clockwork RNN (Koutnik et al. 2014)         modules of H / g units at their periods
//   gridlstm   2-D grid LSTM along time and depth (Kalchbrenner et al. 2015), all layers the same size
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "recur/cell.hpp"
#include "recur/recurrent_stack.hpp"

namespace recur {

enum class StackKind { core, dglstm, clockwork, gridlstm };

struct StackSpec {
  StackKind kind = StackKind::core;
  CellSpec cell = CellSpec::lstm();  // core only
  std::vector<int64_t> periods;      // clockwork: one per module, e.g. 1,2,4,8; empty: 2^0 .. 2^(g-1)
  int64_t modules = 0;       // clockwork with no periods: the module count g (0: 8, or fewer to divide H)
  bool tie_weights = false;  // gridlstm: every layer uses layer 0's transforms (the paper's "tied")

  StackSpec() = default;
  // A core cell is a stack spec (implicit: wherever a CellSpec was enough, it still is).
  StackSpec(const CellSpec& core_cell) : cell(core_cell) {}
  explicit StackSpec(StackKind variant) : kind(variant) {}
  // The core cell's name (CellSpec::name) or "dglstm", "clockwork", "gridlstm".
  std::string name() const;
  // Inverse of name(); throws recur::Error naming every accepted name.
  static StackSpec parse(const std::string& name);
  bool operator==(const StackSpec&) const = default;
};

// A stack of hidden_sizes.size() layers over inputs of input_size, weights drawn from `seed`.
// Throws recur::Error when the variant cannot take the sizes (naming the layer, the size and the rule).
std::unique_ptr<RecurrentStack> make_recurrent_stack(const StackSpec& spec, int64_t input_size,
                                                     const std::vector<int64_t>& hidden_sizes, uint64_t seed);

}  // namespace recur
