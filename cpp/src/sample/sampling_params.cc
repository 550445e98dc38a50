#include "cadence/sampling_params.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace cadence {

namespace {

[[noreturn]] void reject(const std::string& field, const std::string& range, double value) {
  throw std::invalid_argument(field + " must be " + range + ", got " + std::to_string(value));
}

void check_token_id(const std::string& field, int32_t id, int64_t vocab_size) {
  if (id < 0 || (vocab_size > 0 && id >= vocab_size)) {
    reject(field, "token ids in [0, " + std::to_string(vocab_size) + ")", id);
  }
}

}  // namespace

void SamplingParams::validate(int64_t vocab_size, int32_t max_logprobs) const {
  if (n < 1) reject("n", ">= 1", n);
  if (n > 1 && is_greedy()) {
    throw std::invalid_argument(
        "n > 1 needs temperature > 0 (greedy sequences would be identical)");
  }
  if (!(presence_penalty >= -2.0f && presence_penalty <= 2.0f)) {
    reject("presence_penalty", "in [-2, 2]", presence_penalty);
  }
  if (!(frequency_penalty >= -2.0f && frequency_penalty <= 2.0f)) {
    reject("frequency_penalty", "in [-2, 2]", frequency_penalty);
  }
  if (!(repetition_penalty > 0.0f && std::isfinite(repetition_penalty))) {
    reject("repetition_penalty", "> 0", repetition_penalty);
  }
  if (!(temperature >= 0.0f && temperature <= 2.0f)) {
    reject("temperature", "in [0, 2]", temperature);
  }
  if (!(top_p > 0.0f && top_p <= 1.0f)) reject("top_p", "in (0, 1]", top_p);
  if (top_k < -1) reject("top_k", "-1, 0 (disabled) or >= 1", top_k);
  if (!(min_p >= 0.0f && min_p <= 1.0f)) reject("min_p", "in [0, 1]", min_p);
  if (max_tokens < 1) reject("max_tokens", ">= 1", max_tokens);
  if (min_tokens < 0 || min_tokens > max_tokens) {
    reject("min_tokens", "in [0, max_tokens=" + std::to_string(max_tokens) + "]", min_tokens);
  }
  if (logprobs < -1 || logprobs > max_logprobs) {
    reject("logprobs", "-1 (off) or in [0, " + std::to_string(max_logprobs) + "]", logprobs);
  }
  if (prompt_logprobs < -1 || prompt_logprobs > max_logprobs) {
    reject("prompt_logprobs", "-1 (off) or in [0, " + std::to_string(max_logprobs) + "]",
           prompt_logprobs);
  }
  for (int32_t id : stop_token_ids) check_token_id("stop_token_ids", id, vocab_size);
  for (int32_t id : allowed_token_ids) check_token_id("allowed_token_ids", id, vocab_size);
  for (const auto& [id, bias] : logit_bias) {
    check_token_id("logit_bias", id, vocab_size);
    if (!(bias >= -100.0f && bias <= 100.0f)) reject("logit_bias values", "in [-100, 100]", bias);
  }
  for (const auto& word : bad_words_token_ids) {
    if (word.empty()) throw std::invalid_argument("bad_words entries must not be empty");
    for (int32_t id : word) check_token_id("bad_words", id, vocab_size);
  }
}

void BeamSearchParams::validate(int64_t max_beam_width) const {
  if (beam_width < 1 || beam_width > max_beam_width) {
    reject("beam_width", "in [1, " + std::to_string(max_beam_width) + "]", beam_width);
  }
  if (max_tokens < 1) reject("max_tokens", ">= 1", max_tokens);
  if (!(temperature >= 0.0f && temperature <= 2.0f)) {
    reject("temperature", "in [0, 2]", temperature);
  }
  if (!std::isfinite(length_penalty)) reject("length_penalty", "a finite number", length_penalty);
}

}  // namespace cadence
