// The long-gap task generators (recur/long_gap.hpp). Draws use only rng() so that a seed gives the same
// sequences with any standard library.
#include <algorithm>
#include <array>
#include <string>

#include "recur/error.hpp"
#include "recur/long_gap.hpp"

namespace recur {
namespace {

// Uniform in [lo, hi] (inclusive); the modulo bias is below 2^-50 for our ranges.
int64_t uniform_int(std::mt19937_64& rng, int64_t lo, int64_t hi) {
  return lo + int64_t(rng() % uint64_t(hi - lo + 1));
}

// Uniform in [-1, 1), 24 random bits.
float uniform_signed(std::mt19937_64& rng) { return float(rng() >> 40) * 0x1p-23f - 1.0f; }

int reber_index(char symbol) {
  for (int k = 0; k < reber_symbol_count; ++k)
    if (reber_symbols[k] == symbol) return k;
  return -1;
}

// The plain Reber automaton: from state s, symbol k leads to next[s][k] (-1: not allowed; 7: done).
constexpr std::array<std::array<int, reber_symbol_count>, 7> reber_next = {{
    //  B   T   P   S   X   V   E
    {1, -1, -1, -1, -1, -1, -1},  // 0: start
    {-1, 2, 3, -1, -1, -1, -1},   // 1: after B
    {-1, -1, -1, 2, 4, -1, -1},   // 2: the T branch, S loop
    {-1, 3, -1, -1, -1, 5, -1},   // 3: the P branch, T loop
    {-1, -1, -1, 6, 3, -1, -1},   // 4: after X
    {-1, -1, 4, -1, -1, 6, -1},   // 5: after V
    {-1, -1, -1, -1, -1, -1, 7},  // 6: before E
}};
constexpr int reber_done = 7;

uint8_t reber_allowed(int state) {
  uint8_t mask = 0;
  for (int k = 0; k < reber_symbol_count; ++k)
    if (reber_next[size_t(state)][size_t(k)] >= 0) mask |= uint8_t(1u << k);
  return mask;
}

}  // namespace

std::string long_gap_task_name(LongGapTask task) {
  switch (task) {
    case LongGapTask::adding:
      return "adding";
    case LongGapTask::reber:
      return "reber";
    case LongGapTask::temporal_order:
      return "temporal_order";
    case LongGapTask::language:
      return "language";
  }
  return "?";
}

LongGapTask parse_long_gap_task(const std::string& name) {
  for (LongGapTask t :
       {LongGapTask::adding, LongGapTask::reber, LongGapTask::temporal_order, LongGapTask::language})
    if (long_gap_task_name(t) == name) return t;
  if (name == "temporal-order") return LongGapTask::temporal_order;
  throw Error("unknown long-gap task '" + name + "': expected adding, reber, temporal_order or language");
}

AddingExample make_adding_example(int64_t T, std::mt19937_64& rng) {
  if (T < 4) throw Error("adding problem: T must be at least 4, got " + std::to_string(T));
  const int64_t L = uniform_int(rng, T, T + T / 10);
  AddingExample e;
  e.values.resize(size_t(L));
  e.markers.assign(size_t(L), 0.0f);
  for (float& v : e.values) v = uniform_signed(rng);
  e.markers.front() = e.markers.back() = -1.0f;
  e.first = uniform_int(rng, 0, std::min<int64_t>(10, L) - 1);
  // X2: one of the first T/2 - 1 pairs that are not X1's.
  const int64_t k = uniform_int(rng, 0, T / 2 - 2);
  e.second = k < e.first ? k : k + 1;
  for (int64_t p : {e.first, e.second}) {
    e.markers[size_t(p)] = 1.0f;
    if (p == 0) e.values[0] = 0.0f;  // the paper: X is set to zero when the first pair is marked
  }
  e.target = 0.5f + (e.values[size_t(e.first)] + e.values[size_t(e.second)]) / 4.0f;
  return e;
}

std::string make_reber_string(std::mt19937_64& rng) {
  std::string s;
  for (int state = 0; state != reber_done;) {
    int options[2], n = 0;
    for (int k = 0; k < reber_symbol_count; ++k)
      if (reber_next[size_t(state)][size_t(k)] >= 0) options[n++] = k;
    const int k = options[n == 1 ? 0 : int(rng() & 1)];
    s += reber_symbols[k];
    state = reber_next[size_t(state)][size_t(k)];
  }
  return s;
}

std::string make_embedded_reber_string(std::mt19937_64& rng) {
  const char branch = (rng() & 1) ? 'P' : 'T';
  return std::string("B") + branch + make_reber_string(rng) + branch + "E";
}

// Embedded grammar: B, branch, inner string (states 0..6 of the plain automaton), branch, E.
std::vector<uint8_t> embedded_reber_next_symbols(const std::string& s) {
  const auto fail = [&](size_t t, const char* why) {
    throw Error("embedded Reber string '" + s + "': position " + std::to_string(t) + ": " + why);
  };
  if (s.size() < 2) fail(s.size(), "too short");
  std::vector<uint8_t> allowed;
  const uint8_t T_or_P = uint8_t((1u << 1) | (1u << 2)), B = 1u, E = uint8_t(1u << 6);
  char branch = 0;
  int inner = -1;  // state of the inner automaton while inside it
  enum { start, want_branch, in_inner, want_branch_again, want_end, done } phase = start;
  for (size_t t = 0; t < s.size(); ++t) {
    const int k = reber_index(s[t]);
    if (k < 0) fail(t, "not a Reber symbol");
    const uint8_t bit = uint8_t(1u << k);
    switch (phase) {
      case start:
        if (bit != B) fail(t, "expected B");
        phase = want_branch;
        break;
      case want_branch:
        if (!(bit & T_or_P)) fail(t, "expected T or P");
        branch = s[t], inner = 0, phase = in_inner;
        break;
      case in_inner:
        inner = reber_next[size_t(inner)][size_t(k)];
        if (inner < 0) fail(t, "not allowed by the Reber grammar here");
        if (inner == reber_done) phase = want_branch_again;
        break;
      case want_branch_again:
        if (s[t] != branch) fail(t, "the second last symbol must repeat the second");
        phase = want_end;
        break;
      case want_end:
        if (bit != E) fail(t, "expected E");
        phase = done;
        break;
      case done:
        fail(t, "symbols after the final E");
    }
    if (t + 1 == s.size()) break;
    switch (phase) {
      case want_branch:
        allowed.push_back(T_or_P);
        break;
      case in_inner:
        allowed.push_back(reber_allowed(inner));
        break;
      case want_branch_again:
        allowed.push_back(uint8_t(1u << reber_index(branch)));
        break;
      case want_end:
        allowed.push_back(E);
        break;
      default:
        fail(t + 1, "symbols after the final E");
    }
  }
  if (phase != done) fail(s.size(), "ends early");
  return allowed;
}

bool is_embedded_reber_string(const std::string& s) {
  try {
    embedded_reber_next_symbols(s);
    return true;
  } catch (const Error&) {
    return false;
  }
}

TemporalOrderExample make_temporal_order_example(int64_t T, std::mt19937_64& rng) {
  if (T < 10) throw Error("temporal order: T must be at least 10, got " + std::to_string(T));
  TemporalOrderExample e;
  const int64_t L = uniform_int(rng, T, T + T / 10);
  e.symbols.resize(size_t(L));
  for (int32_t& s : e.symbols) s = int32_t(rng() % 4);  // a, b, c, d
  e.symbols.front() = 7;                                // E
  e.symbols.back() = 6;                                 // B, the trigger
  const int64_t t1 = uniform_int(rng, std::max<int64_t>(2, T / 10), std::max<int64_t>(2, T / 5));
  const int64_t t2 = uniform_int(rng, std::max(t1 + 1, T / 2), std::max(t1 + 1, T / 2 + T / 10));
  e.first = t1 - 1, e.second = t2 - 1;
  const int32_t x1 = int32_t(rng() & 1), x2 = int32_t(rng() & 1);  // 0: X, 1: Y
  e.symbols[size_t(e.first)] = 4 + x1;
  e.symbols[size_t(e.second)] = 4 + x2;
  e.label = 2 * x1 + x2;  // XX Q, XY R, YX S, YY U
  return e;
}

TaskShape long_gap_task_shape(LongGapTask task) {
  switch (task) {
    case LongGapTask::adding:
      return {2, 1};
    case LongGapTask::reber:
      return {reber_symbol_count, reber_symbol_count};
    case LongGapTask::temporal_order:
      return {8, 4};
    case LongGapTask::language:
      return {int64_t(language_task_vocabulary().size()), int64_t(language_task_languages().size())};
  }
  return {};
}

std::vector<SequenceExample> make_long_gap_examples(LongGapTask task, int64_t gap, int64_t count,
                                                    std::mt19937_64& rng) {
  std::vector<SequenceExample> out(size_t(std::max<int64_t>(count, 0)));
  for (SequenceExample& x : out) {
    switch (task) {
      case LongGapTask::adding: {
        const AddingExample e = make_adding_example(gap, rng);
        x.length = int64_t(e.values.size());
        x.inputs.resize(size_t(2 * x.length));
        for (int64_t t = 0; t < x.length; ++t)
          x.inputs[size_t(2 * t)] = e.values[size_t(t)], x.inputs[size_t(2 * t + 1)] = e.markers[size_t(t)];
        x.value = e.target;
        break;
      }
      case LongGapTask::reber: {
        const std::string s = make_embedded_reber_string(rng);
        x.length = int64_t(s.size()) - 1;  // the final E is only predicted
        for (int64_t t = 0; t < x.length; ++t) x.tokens.push_back(reber_index(s[size_t(t)]));
        x.next_symbols = embedded_reber_next_symbols(s);
        break;
      }
      case LongGapTask::temporal_order: {
        TemporalOrderExample e = make_temporal_order_example(gap, rng);
        x.length = int64_t(e.symbols.size());
        x.tokens = std::move(e.symbols);
        x.label = e.label;
        break;
      }
      case LongGapTask::language: {
        LanguageExample e = make_language_example(gap, rng);
        x.length = int64_t(e.tokens.size());
        x.tokens = std::move(e.tokens);
        x.label = e.language;
        break;
      }
    }
  }
  return out;
}

}  // namespace recur
