// The engine's state for one request: a RequestGroup of sequences (the n samples of a sampling
// request, or the beam slots of a beam search), shared by the scheduler, the model runner and
// the sampler. Token positions: [0, num_prompt_tokens) prompt, then the generated tokens.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "cadence/engine.h"
#include "cadence/sampling_params.h"
#include "kv/kv_cache_manager.h"

namespace cadence {

// kAwaitingFork: sequence i > 0 of a group, parked until sequence 0 has computed the prompt;
// it then continues from sequence 0 (its blocks shared, see Scheduler::continue_sequences):
// an n > 1 sibling samples its first token from sequence 0's logits (Scheduler::fork), a beam
// slot receives a hypothesis at the first selection.
enum class RequestState { kWaiting, kRunning, kAwaitingFork, kFinished };

struct RequestGroup;

// The scheduler's key of sequence `index` of a request: the id itself for sequence 0.
inline std::string sequence_key(const std::string& request_id, int32_t index) {
  return index == 0 ? request_id : request_id + '\x1f' + std::to_string(index);
}

// One sequence. A request with n > 1 is n of these with the same request_id.
struct Request {
  std::string id;                 // the request id, shared by the request's sequences
  int32_t sequence_index = 0;     // for beam search: the beam slot
  RequestGroup* group = nullptr;  // the group that owns this sequence (set by the scheduler)
  std::string key;                // unique per sequence: sequence_key(id, sequence_index)
  std::vector<int32_t> prompt_token_ids;
  std::vector<int32_t> output_token_ids;
  std::unordered_map<int32_t, int32_t> output_counts;  // for the frequency/presence penalties
  SamplingParams params;
  std::mt19937_64 rng;  // this request's private stream: batch composition never touches it
  RequestState state = RequestState::kWaiting;
  // Tokens whose keys/values are in the cache. Reset to 0 by preemption (recompute).
  int64_t num_computed_tokens = 0;
  // The KV blocks (token t lives in blocks.table[t / block_size]) and their prefix hashes.
  SequenceBlocks blocks;
  // Separates prefix-cache tenants: only requests with the same salt share cached blocks.
  std::string cache_salt;
  // Leading tokens whose KV came from the prefix cache when the request was first admitted
  // (for an n > 1 or beam request, sequence 0's); -1 until then.
  int64_t num_cached_tokens = -1;
  int64_t max_total_tokens = 0;  // prompt + max_tokens, capped by max_model_len
  FinishReason finish_reason = FinishReason::kNone;
  int32_t stop_token_id = -1;
  // Prompt logprobs collected so far (positions 1 .. P-1) and whether they were sent.
  std::vector<TokenLogprobs> prompt_logprobs;
  bool prompt_logprobs_sent = false;

  int64_t num_prompt_tokens() const { return static_cast<int64_t>(prompt_token_ids.size()); }
  int64_t num_tokens() const {
    return num_prompt_tokens() + static_cast<int64_t>(output_token_ids.size());
  }
  void append_output(int32_t token) {
    output_token_ids.push_back(token);
    ++output_counts[token];
  }
  SequenceTokens tokens() const { return {&prompt_token_ids, &output_token_ids}; }
  int32_t token_at(int64_t position) const {
    return position < num_prompt_tokens() ? prompt_token_ids[position]
                                          : output_token_ids[position - num_prompt_tokens()];
  }
};

// A request as the scheduler sees it: its sequences, admitted, scheduled, preempted and
// finished as one unit. A preempted group recomputes (each sequence keeps its tokens and RNG
// state; a beam search restarts from its prompt, its search being deterministic).
struct RequestGroup {
  std::string id;
  // A beam search: its slots advance in lock step and are moved by each selection.
  bool is_beam_search = false;
  bool is_running = false;  // in the scheduler's running queue (else its waiting queue)
  std::vector<std::unique_ptr<Request>> sequences;  // sequences[i]->sequence_index == i

  Request& leader() const { return *sequences.front(); }
  bool has_parked() const {
    for (const auto& sequence : sequences) {
      if (sequence->state == RequestState::kAwaitingFork) return true;
    }
    return false;
  }
  int64_t count(RequestState state) const {
    int64_t num = 0;
    for (const auto& sequence : sequences) num += sequence->state == state ? 1 : 0;
    return num;
  }
};

}  // namespace cadence
