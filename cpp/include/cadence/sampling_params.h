// Per-request sampling options. Defaults and meanings match vLLM's SamplingParams.
//
// Logits pipeline for each sampled token (sample/logits_processor.h):
//   raw logits --(logprobs are taken here: the model's distribution)-->
//   min_tokens mask (EOS + stop tokens) -> allowed_token_ids -> bad_words -> logit_bias
//   -> repetition_penalty (prompt + output) -> frequency/presence penalties (output)
//   -> temperature -> top-k -> top-p -> min-p -> draw from this sequence's RNG.
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace cadence {

struct SamplingParams {
  int32_t n = 1;  // sequences generated from the prompt, >= 1; n > 1 needs temperature > 0
  float presence_penalty = 0.0f;    // [-2, 2]; 0 = off. OpenAI semantics, output tokens
  float frequency_penalty = 0.0f;   // [-2, 2]; 0 = off. OpenAI semantics, output tokens
  float repetition_penalty = 1.0f;  // > 0; 1 = off. HF semantics, prompt + output tokens
  float temperature = 1.0f;         // [0, 2]; 0 = greedy (argmax, ties to the lowest id)
  float top_p = 1.0f;               // (0, 1]; 1 = off
  int32_t top_k = 0;                // 0 or -1 = off; else >= 1
  float min_p = 0.0f;               // [0, 1]; 0 = off
  // Seed of this request's RNG. Sequence i of n draws from its own stream derived from
  // (seed, i). nullopt = drawn from the engine's RNG when the request is added.
  std::optional<uint64_t> seed;
  int32_t max_tokens = 16;              // >= 1 new tokens per sequence
  int32_t min_tokens = 0;               // >= 0; EOS and stop_token_ids masked until reached
  bool ignore_eos = false;              // keep generating past the model's EOS token(s)
  std::vector<int32_t> stop_token_ids;  // extra ids that end generation (kept in output)
  std::vector<std::pair<int32_t, float>> logit_bias;  // added to logits, bias in [-100, 100]
  std::vector<int32_t> allowed_token_ids;             // empty = every token allowed
  // Token sequences never to generate: the last token of a sequence is banned whenever the
  // output so far ends with the sequence's other tokens.
  std::vector<std::vector<int32_t>> bad_words_token_ids;
  int32_t logprobs = -1;         // -1 = off; k >= 0: the sampled token's + the top-k logprobs
  int32_t prompt_logprobs = -1;  // -1 = off; k >= 0: per prompt token (from the 2nd on)

  // Throws std::invalid_argument naming the field and its allowed range. Token ids are
  // checked against vocab_size (pass 0 to skip those checks) and logprob counts against
  // max_logprobs.
  void validate(int64_t vocab_size = 0, int32_t max_logprobs = 20) const;
  bool is_greedy() const { return temperature == 0.0f; }
  bool has_penalties() const {
    return presence_penalty != 0.0f || frequency_penalty != 0.0f || repetition_penalty != 1.0f;
  }
};

// Options of a beam-search request (vLLM's BeamSearchParams). The engine keeps the
// beam_width best partial hypotheses; see sample/beam_search.h for the exact rule.
struct BeamSearchParams {
  int32_t beam_width = 1;   // hypotheses kept and returned, >= 1 (the engine bounds it)
  int32_t max_tokens = 16;  // >= 1 new tokens per hypothesis
  bool ignore_eos = false;  // EOS is then an ordinary token and every hypothesis runs to max_tokens
  // 0 = the model's log-probabilities; > 0: log-softmax(logits / temperature). In [0, 2].
  float temperature = 0.0f;
  // score = cum_logprob / generated_length ** length_penalty (generated tokens only, EOS
  // included). Finite; 0 = plain cumulative log-probability.
  float length_penalty = 1.0f;

  // Throws std::invalid_argument naming the field and its allowed range. max_beam_width is
  // the engine's bound (see Engine::add_beam_request).
  void validate(int64_t max_beam_width) const;
};

}  // namespace cadence
