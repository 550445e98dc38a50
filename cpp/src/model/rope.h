// RoPE frequency tables (HF semantics for rope_type default / linear / llama3).
#pragma once

#include <cstdint>
#include <vector>

#include "cadence/model_config.h"

namespace cadence {

// Inverse frequencies inv_freq[i], i < rot_dim / 2, computed in fp32 as HF does.
std::vector<float> rope_inverse_frequencies(const ModelConfig& config, int64_t rot_dim);

// The cos/sin table the rope_neox kernel reads, for positions [0, num_positions):
// table[p * rot_dim + i] = cos(p * inv_freq[i]), table[p * rot_dim + rot_dim/2 + i] = sin(...).
std::vector<float> rope_cos_sin_table(const ModelConfig& config, int64_t rot_dim,
                                      int64_t num_positions);

}  // namespace cadence
