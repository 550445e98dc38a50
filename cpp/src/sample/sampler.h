// Turns one row of logits into a token for one request.
//
// Order of operations (as HF's warpers): temperature -> top-k -> top-p -> min-p, then one
// draw from the request's own RNG. temperature == 0 is greedy: the argmax, ties broken
// toward the lowest token id, with no RNG draw. Every sampled token consumes exactly one
// 64-bit draw, so a seeded request's stream is independent of everything else.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "cadence/sampling_params.h"

namespace cadence {

class Sampler {
 public:
  // logits: vocab_size floats (not modified). Preconditions: params validated.
  int32_t sample(const float* logits, int64_t vocab_size, const SamplingParams& params,
                 std::mt19937_64& rng);

 private:
  struct Candidate {
    float prob;  // unnormalized exp((logit - max) / T), the best candidate has 1
    int32_t token_id;
  };
  std::vector<Candidate> candidates_;  // scratch, reused across calls
  std::vector<float> probs_;           // scratch of the no-truncation path
};

int32_t argmax_token(const float* logits, int64_t vocab_size);

}  // namespace cadence
