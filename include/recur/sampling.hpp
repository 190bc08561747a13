#pragma once
// Drawing the next token from a language model's logits.
#include <cstdint>
#include <random>
#include <span>

namespace recur {

struct SamplingOptions {
  float temperature = 1.0f;  // logits / temperature; 0 picks the most likely token (greedy)
  int64_t top_k = 0;         // > 0: only the k most likely tokens
  float top_p = 1.0f;        // < 1: only the most likely tokens whose probabilities sum to at least p
  void validate() const;
};

// One token id, drawn from softmax(logits / temperature) restricted by top-k and then top-p and
// renormalised; ties in probability go to the lower id. One 64-bit draw from rng per call (none when
// greedy), so that a seed gives the same text again.
int32_t sample_token(std::span<const float> logits, const SamplingOptions& options, std::mt19937_64& rng);

}  // namespace recur
