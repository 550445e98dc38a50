// Beam search for one request, as bookkeeping over tokens and scores only: the engine
// feeds each live beam's logits row and applies the resulting moves to KV blocks.
//
// Beams live in slots 0 .. beam_width-1 (one engine sequence each). Before the first
// selection only slot 0 (the prompt) is live. The rule, per step:
//  1. Candidates: each live beam b proposes its C best tokens t with
//     cum(b) + logprob(t | b), where logprob is log-softmax(logits), or of logits/temperature
//     when temperature > 0, and C = max(2, 1 + number of EOS ids) * beam_width. The C best
//     over all beams are walked best first (ties: lower slot, then lower token id).
//  2. An EOS candidate (unless ignore_eos) is offered to the finished set as a hypothesis
//     ending with EOS; the others become the next live beams until beam_width are taken.
//     C is large enough that exactly beam_width live beams always remain.
//  3. The finished set keeps the beam_width best scores, score = cum_logprob /
//     len ** length_penalty with len = generated tokens (EOS included; vLLM also counts the
//     prompt, which reorders hypotheses of different lengths when length_penalty != 0).
//  4. Done when the live beams hold max_tokens tokens (they are offered as "length"
//     hypotheses), or when the finished set is full and no live beam can beat its worst
//     score. Log-probabilities are <= 0, so a live beam with cum c and len tokens can at
//     best reach c / max_tokens ** lp when lp > 0, and c / (len + 1) ** lp when lp <= 0;
//     stopping then never changes the result.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "cadence/engine.h"
#include "cadence/sampling_params.h"

namespace cadence {

// How many candidates each step considers: max(2, 1 + num_eos_ids) * beam_width. Every
// step keeps beam_width live beams as long as this is <= vocab_size.
int64_t beam_search_num_candidates(int32_t beam_width, size_t num_eos_ids);

class BeamSearch {
 public:
  BeamSearch(const BeamSearchParams& params, std::vector<int32_t> eos_token_ids);

  // The result of one selection, per slot: the slot whose hypothesis it continues (itself or
  // another live beam, whose KV blocks it then takes over) and the token appended to it;
  // parent -1 for a slot that is not live after the step.
  struct Step {
    std::vector<int32_t> parent;
    std::vector<int32_t> token;
    bool done = false;  // results() is final; the request's sequences can be freed
  };

  int32_t beam_width() const { return params_.beam_width; }
  bool is_live(int32_t slot) const { return live_[slot]; }
  // Records live beam `slot`'s candidates from its raw logits row [vocab_size]. Calls for
  // different slots may run concurrently.
  void set_logits(int32_t slot, const float* logits, int64_t vocab_size);
  // True when every live beam has reported since the last selection.
  bool ready() const;
  // Selects the next beams (rule above). Precondition: ready().
  Step select();
  // The finished hypotheses, best score first; beam_width of them once done.
  const std::vector<BeamHypothesis>& results() const { return finished_; }
  // Back to the prompt (after the request was preempted and its blocks freed).
  void restart();

 private:
  struct Beam {
    std::vector<int32_t> token_ids;
    std::vector<float> logprobs;
    std::vector<int32_t> ranks;
    double cum_logprob = 0.0;
  };
  struct TokenCandidate {
    int32_t token_id;
    float logprob;
  };
  struct Candidate {
    int32_t slot;
    int32_t token_id;
    float logprob;
    int32_t rank;  // 1-based among the slot's own candidates
    double cum_logprob;
  };

  bool is_eos(int32_t token) const;
  double score(double cum_logprob, size_t length) const;
  // The best score any continuation of a live beam with this cum_logprob can reach.
  double best_reachable_score(double cum_logprob, size_t length) const;
  void offer_finished(const Beam& beam, FinishReason reason);

  BeamSearchParams params_;
  std::vector<int32_t> eos_token_ids_;
  int64_t num_candidates_;
  std::vector<Beam> beams_;  // per slot
  std::vector<uint8_t> live_;
  std::vector<std::vector<TokenCandidate>> candidates_;  // per slot, best first
  std::vector<uint8_t> has_candidates_;   // not vector<bool>: slots are written concurrently
  std::vector<BeamHypothesis> finished_;  // best score first, at most beam_width
};

}  // namespace cadence
