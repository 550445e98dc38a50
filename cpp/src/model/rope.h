// RoPE frequency tables (HF semantics for rope_type default / linear / llama3 / longrope).
#pragma once

#include <cstdint>
#include <vector>

#include "cadence/model_config.h"

namespace cadence {

// Inverse frequencies inv_freq[i], i < rot_dim / 2, computed in fp32 as HF does. For longrope,
// `long_factors` picks long_factor over short_factor (ignored by the other types).
std::vector<float> rope_inverse_frequencies(const ModelConfig& config, int64_t rot_dim,
                                            bool long_factors = false);

// The factor HF multiplies cos and sin by: longrope's attention_factor (derived from factor and
// original_max_position_embeddings when 0), 1 for the other types.
double rope_attention_factor(const RopeScaling& scaling);

// The cos/sin table the rope_neox kernel reads, for positions [0, num_positions):
// table[p * rot_dim + i] = cos(p * inv_freq[i]) * a, table[p * rot_dim + rot_dim/2 + i] =
// sin(...) * a, a = rope_attention_factor. longrope: rope_table_rows(config, num_positions) rows,
// the short-factor table, then the long-factor one (its row p at num_positions + p).
std::vector<float> rope_cos_sin_table(const ModelConfig& config, int64_t rot_dim,
                                      int64_t num_positions);

// Rows of rope_cos_sin_table: num_positions, or 2 * num_positions for longrope.
int64_t rope_table_rows(const ModelConfig& config, int64_t num_positions);

}  // namespace cadence
