#include "model/rope.h"

#include <cmath>

namespace cadence {

std::vector<float> rope_inverse_frequencies(const ModelConfig& config, int64_t rot_dim,
                                            bool long_factors) {
  const int64_t half = rot_dim / 2;
  std::vector<float> inv_freq(static_cast<size_t>(half));
  const float base = static_cast<float>(config.rope_theta);
  for (int64_t i = 0; i < half; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(rot_dim);
    inv_freq[i] = 1.0f / std::pow(base, exponent);
  }
  const RopeScaling& scaling = config.rope_scaling;
  const float factor = static_cast<float>(scaling.factor);
  if (scaling.type == RopeScalingType::kLongrope) {
    // HF: 1 / (ext_factor[i] * base^(2i / dim)), all in fp32.
    const std::vector<double>& ext = long_factors ? scaling.long_factor : scaling.short_factor;
    for (int64_t i = 0; i < half; ++i) {
      const float exponent = static_cast<float>(2 * i) / static_cast<float>(rot_dim);
      inv_freq[i] = 1.0f / (static_cast<float>(ext[i]) * std::pow(base, exponent));
    }
  } else if (scaling.type == RopeScalingType::kLinear) {
    for (float& f : inv_freq) f /= factor;
  } else if (scaling.type == RopeScalingType::kLlama3) {
    // Long wavelengths are slowed by `factor`, short ones kept, the band between blended.
    const float old_context = static_cast<float>(scaling.original_max_position_embeddings);
    const float low = static_cast<float>(scaling.low_freq_factor);
    const float high = static_cast<float>(scaling.high_freq_factor);
    const float low_freq_wavelen = old_context / low;
    const float high_freq_wavelen = old_context / high;
    const float two_pi = 6.283185307179586f;
    for (float& f : inv_freq) {
      const float wavelen = two_pi / f;
      float scaled = wavelen > low_freq_wavelen ? f / factor : f;
      const bool is_medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
      if (is_medium) {
        const float smooth = (old_context / wavelen - low) / (high - low);
        scaled = (1.0f - smooth) * scaled / factor + smooth * scaled;
      }
      f = scaled;
    }
  }
  return inv_freq;
}

double rope_attention_factor(const RopeScaling& scaling) {
  if (scaling.type != RopeScalingType::kLongrope) return 1.0;
  if (scaling.attention_factor > 0) return scaling.attention_factor;
  if (scaling.factor <= 1.0) return 1.0;
  return std::sqrt(1.0 + std::log(scaling.factor) / std::log(static_cast<double>(
                                                        scaling.original_max_position_embeddings)));
}

int64_t rope_table_rows(const ModelConfig& config, int64_t num_positions) {
  return config.rope_scaling.type == RopeScalingType::kLongrope ? 2 * num_positions : num_positions;
}

namespace {

// Appends rows [0, num_positions) of one table (see rope_cos_sin_table).
void append_table(const std::vector<float>& inv_freq, int64_t rot_dim, int64_t num_positions,
                  float scale, std::vector<float>& table) {
  const int64_t half = rot_dim / 2;
  const size_t start = table.size();
  table.resize(start + static_cast<size_t>(num_positions * rot_dim));
  float* rows = table.data() + start;
  for (int64_t p = 0; p < num_positions; ++p) {
    for (int64_t i = 0; i < half; ++i) {
      const float angle = static_cast<float>(p) * inv_freq[i];  // fp32 product, as HF
      const float c = static_cast<float>(std::cos(static_cast<double>(angle)));
      const float s = static_cast<float>(std::sin(static_cast<double>(angle)));
      rows[p * rot_dim + i] = c * scale;  // HF: emb.cos() * attention_scaling, in fp32
      rows[p * rot_dim + half + i] = s * scale;
    }
  }
}

}  // namespace

std::vector<float> rope_cos_sin_table(const ModelConfig& config, int64_t rot_dim,
                                      int64_t num_positions) {
  const float scale = static_cast<float>(rope_attention_factor(config.rope_scaling));
  std::vector<float> table;
  table.reserve(static_cast<size_t>(rope_table_rows(config, num_positions) * rot_dim));
  append_table(rope_inverse_frequencies(config, rot_dim, false), rot_dim, num_positions, scale,
               table);
  if (config.rope_scaling.type == RopeScalingType::kLongrope) {
    append_table(rope_inverse_frequencies(config, rot_dim, true), rot_dim, num_positions, scale,
                 table);
  }
  return table;
}

}  // namespace cadence
