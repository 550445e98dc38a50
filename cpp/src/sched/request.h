// The engine's state for one request, shared by the scheduler, the model runner and the
// sampler. Token positions: [0, num_prompt_tokens) prompt, then the generated tokens.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "cadence/engine.h"
#include "cadence/sampling_params.h"

namespace cadence {

enum class RequestState { kWaiting, kRunning, kFinished };

struct Request {
  std::string id;
  std::vector<int32_t> prompt_token_ids;
  std::vector<int32_t> output_token_ids;
  SamplingParams params;
  std::mt19937_64 rng;        // this request's private stream: batch composition never touches it
  int64_t arrival_index = 0;  // admission order; the newest is preempted first
  RequestState state = RequestState::kWaiting;
  // Tokens whose keys/values are in the cache. Reset to 0 by preemption (recompute).
  int64_t num_computed_tokens = 0;
  std::vector<int32_t> block_table;  // block ids, token t lives in block_table[t / block_size]
  int64_t max_total_tokens = 0;      // prompt + max_tokens, capped by max_model_len
  FinishReason finish_reason = FinishReason::kNone;
  int32_t stop_token_id = -1;

  int64_t num_prompt_tokens() const { return static_cast<int64_t>(prompt_token_ids.size()); }
  int64_t num_tokens() const {
    return num_prompt_tokens() + static_cast<int64_t>(output_token_ids.size());
  }
  int32_t token_at(int64_t position) const {
    return position < num_prompt_tokens() ? prompt_token_ids[position]
                                          : output_token_ids[position - num_prompt_tokens()];
  }
};

}  // namespace cadence
