// Everything between the model's raw logits and the sampler, for one sequence:
// min_tokens masking, allowed_token_ids, bad_words, logit_bias and the penalties, in the
// order documented in cadence/sampling_params.h. Also the logprobs of the raw distribution.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "cadence/engine.h"
#include "cadence/sampling_params.h"

namespace cadence {

// The token history a sequence's penalties look at.
struct TokenHistory {
  const std::vector<int32_t>* prompt_token_ids = nullptr;
  const std::vector<int32_t>* output_token_ids = nullptr;
  const std::unordered_map<int32_t, int32_t>* output_counts = nullptr;  // id -> occurrences
};

// True when process_logits would change anything for these params at this point.
bool needs_logits_processing(const SamplingParams& params, int64_t num_output_tokens);

// Rewrites logits[0, vocab_size) in place. eos_token_ids are masked (with the stop
// tokens) while fewer than min_tokens outputs exist.
void process_logits(const SamplingParams& params, const TokenHistory& history,
                    const std::vector<int32_t>& eos_token_ids, float* logits, int64_t vocab_size);

// Log-softmax facts about `token_id` and the top-k tokens of the raw row `logits`.
TokenLogprobs compute_logprobs(const float* logits, int64_t vocab_size, int32_t token_id,
                               int32_t num_top);

}  // namespace cadence
