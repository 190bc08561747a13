#include <array>
#include <utility>

#include "recur/cell.hpp"
#include "recur/error.hpp"

namespace recur {

int CellSpec::gate_count() const {
  switch (family) {
    case CellFamily::rnn:
      return 1;
    case CellFamily::lstm:
      return coupled_gates ? 3 : 4;
    case CellFamily::gru:
      return 3;
  }
  return 0;
}

int CellSpec::peephole_count() const {
  if (family != CellFamily::lstm || !peephole) return 0;
  return coupled_gates ? 2 : 3;
}

namespace {
const std::array<std::pair<const char*, CellSpec>, 8> kNamedCells = {{
    {"rnn_tanh", CellSpec::rnn_tanh()},
    {"rnn_relu", CellSpec::rnn_relu()},
    {"lstm", CellSpec::lstm()},
    {"peephole", CellSpec::peephole_lstm()},
    {"cifg", CellSpec::coupled_lstm()},
    {"peephole_cifg", CellSpec{CellFamily::lstm, Activation::tanh, true, true}},
    {"gru", CellSpec::gru(GruReset::after)},
    {"gru_reset_before", CellSpec::gru(GruReset::before)},
}};

// Fields that do not apply to a family are ignored when naming and comparing.
CellSpec normalized(CellSpec spec) {
  if (spec.family != CellFamily::rnn) spec.activation = Activation::tanh;
  if (spec.family != CellFamily::lstm) spec.peephole = spec.coupled_gates = false;
  if (spec.family != CellFamily::gru) spec.gru_reset = GruReset::after;
  return spec;
}
}  // namespace

std::string CellSpec::name() const {
  const CellSpec spec = normalized(*this);
  for (const auto& [name, named] : kNamedCells)
    if (named == spec) return name;
  return "unknown";
}

CellSpec CellSpec::parse(const std::string& name) {
  if (name == "rnn") return rnn_tanh();
  for (const auto& [known, spec] : kNamedCells)
    if (name == known) return spec;
  std::string accepted = "rnn";
  for (const auto& entry : kNamedCells) accepted += std::string(", ") + entry.first;
  throw Error("unknown cell '" + name + "': expected one of " + accepted);
}

}  // namespace recur
