// Per-request sampling options. Defaults and meanings match vLLM's SamplingParams.
//
// Logits pipeline for each sampled token (sample/logits_processor.h):
//   raw logits --(logprobs are taken here: the model's distribution)-->
//   min_tokens mask (EOS + stop tokens) -> allowed_token_ids -> bad_words -> logit_bias
//   -> repetition_penalty (prompt + output) -> frequency/presence penalties (output)
//   -> temperature -> top-k -> top-p -> min-p -> draw from this sequence's RNG.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace cadence {

// The engine's default cap on logprobs / prompt_logprobs (vLLM's max_logprobs).
inline constexpr int32_t kDefaultMaxLogprobs = 20;

enum class ParamKind { kInt, kFloat, kBool };

// The allowed values and the default of one scalar option: the single source of these
// facts. validate() checks against it and the Python layer reads it (_core.sampling_param_specs)
// instead of restating any bound. An int field is an int32; its range never exceeds that.
struct ParamSpec {
  std::string name;
  ParamKind kind = ParamKind::kFloat;
  double low = 0.0;   // -inf: unbounded below
  double high = 0.0;  // +inf: unbounded above
  bool low_inclusive = true;
  bool high_inclusive = true;
  double default_value = 0.0;
  // The value that means "off" when it lies outside [low, high] (logprobs: -1; Python: None).
  std::optional<double> off;
  std::string note;  // said after the range in messages, e.g. "1 = off"; may be empty

  // Whether value lies in the range (false for NaN; the off value is not in the range). For
  // an int field, value must also be integral.
  bool contains(double value) const;
  // The range as messages state it: "in [0, 2]", "in (0, inf) (1 = off)", ">= 1" (the off
  // value not included: each language spells "off" its own way).
  std::string allowed() const;
  // Throws InvalidParameter "<name> must be [<off> (off) or ]<allowed>, got <value>" unless
  // contains(value) or value is the off value.
  void check(double value) const;
};

// Specs of SamplingParams' numeric and bool fields, by field name, plus "logit_bias" (the
// range of each bias; the frontends clamp to it, C++ rejects outside it).
const std::map<std::string, ParamSpec>& sampling_param_specs();
// Specs of BeamSearchParams' fields; beam_width's upper bound is the engine's.
const std::map<std::string, ParamSpec>& beam_search_param_specs();

// The defaults below are the defaults (sampling_param_specs reads them); the allowed ranges
// are in sampling_param_specs (sampling_params.cc), never restated here.
struct SamplingParams {
  int32_t n = 1;  // sequences generated from the prompt; n > 1 needs temperature > 0
  float presence_penalty = 0.0f;    // 0 = off. OpenAI semantics, output tokens
  float frequency_penalty = 0.0f;   // 0 = off. OpenAI semantics, output tokens
  float repetition_penalty = 1.0f;  // 1 = off. HF semantics, prompt + output tokens
  float temperature = 1.0f;         // 0 = greedy (argmax, ties to the lowest id)
  float top_p = 1.0f;               // 1 = off
  int32_t top_k = 0;                // 0 or -1 = off
  float min_p = 0.0f;               // 0 = off
  // Seed of this request's RNG. Sequence i of n draws from its own stream derived from
  // (seed, i). nullopt = drawn from the engine's RNG when the request is added.
  std::optional<uint64_t> seed;
  int32_t max_tokens = 16;  // new tokens per sequence
  int32_t min_tokens = 0;   // <= max_tokens; EOS and stop_token_ids masked until reached
  bool ignore_eos = false;  // keep generating past the model's EOS token(s)
  std::vector<int32_t> stop_token_ids;  // extra ids that end generation (kept in output)
  std::vector<std::pair<int32_t, float>> logit_bias;  // added to logits (spec "logit_bias")
  std::vector<int32_t> allowed_token_ids;             // empty = every token allowed
  // Token sequences never to generate: the last token of a sequence is banned whenever the
  // output so far ends with the sequence's other tokens.
  std::vector<std::vector<int32_t>> bad_words_token_ids;
  int32_t logprobs = -1;         // -1 = off; k: the sampled token's + the top-k logprobs
  int32_t prompt_logprobs = -1;  // -1 = off; k: per prompt token (from the 2nd on)

  // Throws InvalidParameter naming the field and its allowed range (sampling_param_specs).
  // Token ids are checked against vocab_size (pass 0 to skip those checks) and logprob
  // counts against max_logprobs.
  void validate(int64_t vocab_size = 0, int32_t max_logprobs = kDefaultMaxLogprobs) const;
  bool is_greedy() const { return temperature == 0.0f; }
  bool has_penalties() const {
    return presence_penalty != 0.0f || frequency_penalty != 0.0f || repetition_penalty != 1.0f;
  }
};

// Options of a beam-search request (vLLM's BeamSearchParams). The engine keeps the
// beam_width best partial hypotheses; see sample/beam_search.h for the exact rule.
struct BeamSearchParams {
  int32_t beam_width = 1;   // hypotheses kept and returned (the engine bounds it)
  int32_t max_tokens = 16;  // new tokens per hypothesis
  bool ignore_eos = false;  // EOS is then an ordinary token and every hypothesis runs to max_tokens
  // 0 = the model's log-probabilities; > 0: log-softmax(logits / temperature).
  float temperature = 0.0f;
  // score = cum_logprob / generated_length ** length_penalty (generated tokens only, EOS
  // included). 0 = plain cumulative log-probability.
  float length_penalty = 1.0f;

  // Throws InvalidParameter naming the field and its allowed range (beam_search_param_specs).
  // max_beam_width is the engine's bound (see Engine::add_beam_request).
  void validate(int64_t max_beam_width) const;
};

}  // namespace cadence
