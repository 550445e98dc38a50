// RoPE tables (model/rope.h) for LongRoPE (Phi-3) and partial rotary dims, and the ModelConfig
// checks of the fields they read. Reference values are computed here in double precision from
// HF's formulas: inv_freq[i] = 1 / (ext[i] * base^(2i / dim)), ext = short_factor, or
// long_factor for a sequence longer than original_max_position_embeddings; cos and sin scaled
// by sqrt(1 + ln(factor) / ln(original)) when factor > 1.
#include <cmath>
#include <stdexcept>
#include <vector>

#include "cadence/model_config.h"
#include "model/rope.h"
#include "test_harness.h"

using cadence::ModelConfig;

namespace {

ModelConfig phi3_longrope_config() {
  ModelConfig config;
  config.architecture = "Phi3ForCausalLM";
  config.vocab_size = 32;
  config.hidden_size = 64;
  config.intermediate_size = 8;
  config.num_layers = 2;
  config.num_heads = 4;  // head_dim 16
  config.rotary_dim = 12;
  config.rope_theta = 10000.0;
  config.max_position_embeddings = 512;
  config.rope_scaling.type = cadence::RopeScalingType::kLongrope;
  config.rope_scaling.factor = 512.0 / 48.0;
  config.rope_scaling.original_max_position_embeddings = 48;
  config.rope_scaling.short_factor = {1.0, 1.1, 1.3, 1.2, 1.5, 1.05};
  config.rope_scaling.long_factor = {1.5, 3.0, 6.0, 9.0, 14.0, 20.0};
  return config;
}

bool throws_invalid(ModelConfig config) {
  try {
    config.finalize();
  } catch (const std::invalid_argument&) {
    return true;
  }
  return false;
}

}  // namespace

TEST(longrope_attention_factor_follows_hf) {
  ModelConfig config = phi3_longrope_config();
  const double expected = std::sqrt(1.0 + std::log(512.0 / 48.0) / std::log(48.0));
  CHECK(std::fabs(cadence::rope_attention_factor(config.rope_scaling) - expected) < 1e-12);
  config.rope_scaling.attention_factor = 1.25;  // explicit value wins
  CHECK(cadence::rope_attention_factor(config.rope_scaling) == 1.25);
  config.rope_scaling.attention_factor = 0.0;
  config.rope_scaling.factor = 1.0;  // no extension: no scaling
  CHECK(cadence::rope_attention_factor(config.rope_scaling) == 1.0);
  config.rope_scaling.type = cadence::RopeScalingType::kDefault;
  config.rope_scaling.factor = 8.0;
  CHECK(cadence::rope_attention_factor(config.rope_scaling) == 1.0);
}

TEST(longrope_table_holds_short_then_long_rows) {
  ModelConfig config = phi3_longrope_config();
  config.finalize();
  CHECK(config.rotary_dim == 12 && config.head_dim == 16);
  const int64_t rot = config.rotary_dim, half = rot / 2, positions = 100;
  const std::vector<float> table = cadence::rope_cos_sin_table(config, rot, positions);
  CHECK(cadence::rope_table_rows(config, positions) == 2 * positions);
  CHECK(static_cast<int64_t>(table.size()) == 2 * positions * rot);
  const double scale = cadence::rope_attention_factor(config.rope_scaling);
  int num_bad = 0;
  for (int is_long = 0; is_long < 2; ++is_long) {
    const std::vector<double>& ext =
        is_long ? config.rope_scaling.long_factor : config.rope_scaling.short_factor;
    for (int64_t p = 0; p < positions; ++p) {
      for (int64_t i = 0; i < half; ++i) {
        const double inv_freq = 1.0 / (ext[i] * std::pow(10000.0, 2.0 * i / rot));
        const float* row = &table[(is_long * positions + p) * rot];
        // fp32 inverse frequency and angle: ~p * 1e-7 radians of error.
        const double tol = 1e-6 + 2e-7 * static_cast<double>(p);
        num_bad += !(std::fabs(row[i] - std::cos(p * inv_freq) * scale) < tol);
        num_bad += !(std::fabs(row[half + i] - std::sin(p * inv_freq) * scale) < tol);
      }
    }
  }
  CHECK(num_bad == 0);
}

TEST(default_rope_table_is_unscaled_over_rotary_dim) {
  ModelConfig config = phi3_longrope_config();
  config.rope_scaling = cadence::RopeScaling();
  config.finalize();
  const std::vector<float> table = cadence::rope_cos_sin_table(config, config.rotary_dim, 10);
  CHECK(static_cast<int64_t>(table.size()) == 10 * config.rotary_dim);
  const double inv_freq_1 = 1.0 / std::pow(10000.0, 2.0 / 12.0);
  CHECK(std::fabs(table[3 * 12 + 1] - std::cos(3 * inv_freq_1)) < 1e-6);
}

TEST(config_rejects_bad_rotary_and_window_fields) {
  CHECK(!throws_invalid(phi3_longrope_config()));
  ModelConfig odd = phi3_longrope_config();
  odd.rotary_dim = 11;
  CHECK(throws_invalid(odd));
  ModelConfig wide = phi3_longrope_config();
  wide.rotary_dim = 18;
  CHECK(throws_invalid(wide));
  ModelConfig short_list = phi3_longrope_config();
  short_list.rope_scaling.long_factor.pop_back();
  CHECK(throws_invalid(short_list));
  ModelConfig zero_factor = phi3_longrope_config();
  zero_factor.rope_scaling.short_factor[2] = 0.0;
  CHECK(throws_invalid(zero_factor));
  ModelConfig negative_window = phi3_longrope_config();
  negative_window.sliding_window = -1;
  CHECK(throws_invalid(negative_window));
  ModelConfig bad_layer = phi3_longrope_config();
  bad_layer.sliding_window = 8;
  bad_layer.full_attention_layers = {2};
  CHECK(throws_invalid(bad_layer));
}

TEST_MAIN()
