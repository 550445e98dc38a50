#include "cadence/sampling_params.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace cadence {

namespace {

[[noreturn]] void reject(const std::string& field, const std::string& range, double value) {
  throw std::invalid_argument(field + " must be " + range + ", got " + std::to_string(value));
}

}  // namespace

void SamplingParams::validate() const {
  if (!(temperature >= 0.0f && temperature <= 2.0f)) {
    reject("temperature", "in [0, 2]", temperature);
  }
  if (!(top_p > 0.0f && top_p <= 1.0f)) reject("top_p", "in (0, 1]", top_p);
  if (top_k < -1) reject("top_k", "-1, 0 (disabled) or >= 1", top_k);
  if (!(min_p >= 0.0f && min_p <= 1.0f)) reject("min_p", "in [0, 1]", min_p);
  if (max_tokens < 1) reject("max_tokens", ">= 1", max_tokens);
  for (int32_t id : stop_token_ids) {
    if (id < 0) reject("stop_token_ids", "non-negative token ids", id);
  }
}

}  // namespace cadence
