// Per-request sampling options. Defaults match vLLM's SamplingParams.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace cadence {

struct SamplingParams {
  float temperature = 1.0f;  // [0, 2]; 0 = greedy (argmax, ties to the lowest id)
  float top_p = 1.0f;        // (0, 1]; 1 = off
  int32_t top_k = 0;         // 0 or -1 = off; else >= 1
  float min_p = 0.0f;        // [0, 1]; 0 = off
  // Seed of this request's private RNG stream. nullopt = drawn from the engine's RNG
  // when the request is added (so the engine seed still makes runs reproducible).
  std::optional<uint64_t> seed;
  int32_t max_tokens = 16;              // >= 1 new tokens; also capped by max_model_len
  bool ignore_eos = false;              // keep generating past the model's EOS token(s)
  std::vector<int32_t> stop_token_ids;  // extra ids that end generation (kept in output)

  // Throws std::invalid_argument naming the field and its allowed range.
  void validate() const;
  bool is_greedy() const { return temperature == 0.0f; }
};

}  // namespace cadence
