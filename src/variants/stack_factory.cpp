// StackSpec names and the factory of recurrent stacks (recur/stack_spec.hpp).
#include <algorithm>

#include "recur/clockwork.hpp"
#include "recur/depth_gated_lstm.hpp"
#include "recur/error.hpp"
#include "recur/grid_lstm.hpp"
#include "recur/stack_spec.hpp"
#include "variants/core_stack.hpp"

namespace recur {
namespace {

struct VariantName {
  StackKind kind;
  const char* name;
};
constexpr VariantName variant_names[] = {
    {StackKind::dglstm, "dglstm"}, {StackKind::clockwork, "clockwork"}, {StackKind::gridlstm, "gridlstm"}};

// The variants run every layer at one size (a depth gate adds the lower cell state to its own; a grid
// block's dimensions share the width; a clockwork's modules are laid out once).
int64_t common_hidden_size(const StackSpec& spec, const std::vector<int64_t>& hidden_sizes) {
  if (hidden_sizes.empty()) throw Error("recurrent stack: needs at least one layer");
  for (size_t l = 1; l < hidden_sizes.size(); ++l)
    if (hidden_sizes[l] != hidden_sizes[0])
      throw Error(spec.name() + ": every layer must have the same size; layer " + std::to_string(l) +
                  " has " + std::to_string(hidden_sizes[l]) + ", layer 0 " + std::to_string(hidden_sizes[0]));
  return hidden_sizes[0];
}

// Without periods or a module count: 8 modules (periods 1 .. 128), or the most below 8 that divide H.
int64_t default_module_count(int64_t H) {
  int64_t g = std::min<int64_t>(8, std::max<int64_t>(H, 1));
  while (g > 1 && H % g != 0) --g;
  return g;
}

}  // namespace

std::string StackSpec::name() const {
  for (const VariantName& v : variant_names)
    if (v.kind == kind) return v.name;
  return cell.name();
}

StackSpec StackSpec::parse(const std::string& name) {
  for (const VariantName& v : variant_names)
    if (name == v.name) return StackSpec(v.kind);
  try {
    return StackSpec(CellSpec::parse(name));
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + ", or a variant: dglstm, clockwork, gridlstm");
  }
}

std::unique_ptr<RecurrentStack> make_recurrent_stack(const StackSpec& spec, int64_t input_size,
                                                     const std::vector<int64_t>& hidden_sizes,
                                                     uint64_t seed) {
  if (spec.kind == StackKind::core)
    return std::make_unique<CoreStack>(spec.cell, input_size, hidden_sizes, seed);
  const int64_t H = common_hidden_size(spec, hidden_sizes), L = int64_t(hidden_sizes.size());
  switch (spec.kind) {
    case StackKind::dglstm:
      return std::make_unique<DepthGatedLstm>(DepthGatedLstmConfig{input_size, H, L}, seed);
    case StackKind::clockwork: {
      ClockworkConfig c;
      c.input_size = input_size;
      c.hidden_size = H;
      c.periods = spec.periods;
      c.num_modules = spec.periods.empty() ? (spec.modules > 0 ? spec.modules : default_module_count(H)) : 0;
      c.num_layers = L;
      return std::make_unique<ClockworkRnn>(c, seed);
    }
    case StackKind::gridlstm: {
      GridLstmConfig c;
      c.input_size = input_size;
      c.hidden_size = H;
      c.num_layers = L;
      c.tie_weights = spec.tie_weights;
      return std::make_unique<GridLstm>(c, seed);
    }
    case StackKind::core:
      break;
  }
  throw Error("recurrent stack: unknown kind");
}

}  // namespace recur
