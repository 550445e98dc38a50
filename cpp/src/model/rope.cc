#include "model/rope.h"

#include <cmath>

namespace cadence {

std::vector<float> rope_inverse_frequencies(const ModelConfig& config, int64_t rot_dim) {
  const int64_t half = rot_dim / 2;
  std::vector<float> inv_freq(static_cast<size_t>(half));
  const float base = static_cast<float>(config.rope_theta);
  for (int64_t i = 0; i < half; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(rot_dim);
    inv_freq[i] = 1.0f / std::pow(base, exponent);
  }
  const RopeScaling& scaling = config.rope_scaling;
  const float factor = static_cast<float>(scaling.factor);
  if (scaling.type == "linear") {
    for (float& f : inv_freq) f /= factor;
  } else if (scaling.type == "llama3") {
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

std::vector<float> rope_cos_sin_table(const ModelConfig& config, int64_t rot_dim,
                                      int64_t num_positions) {
  const std::vector<float> inv_freq = rope_inverse_frequencies(config, rot_dim);
  const int64_t half = rot_dim / 2;
  std::vector<float> table(static_cast<size_t>(num_positions * rot_dim));
  for (int64_t p = 0; p < num_positions; ++p) {
    for (int64_t i = 0; i < half; ++i) {
      const float angle = static_cast<float>(p) * inv_freq[i];  // fp32 product, as HF
      table[p * rot_dim + i] = static_cast<float>(std::cos(static_cast<double>(angle)));
      table[p * rot_dim + half + i] = static_cast<float>(std::sin(static_cast<double>(angle)));
    }
  }
  return table;
}

}  // namespace cadence
