#include "model/weight_loader.h"

#include <stdexcept>

#include "kernels/half.h"

namespace cadence {

std::string WeightLoader::find_prefix(std::initializer_list<const char*> prefixes,
                                      const std::string& probe) const {
  std::string tried;
  for (const char* prefix : prefixes) {
    if (checkpoint_.has(prefix + probe)) return prefix;
    tried += (tried.empty() ? "" : ", ") + std::string(prefix) + probe;
  }
  throw std::runtime_error(checkpoint_.path() + ": tensor not found (tried " + tried + ")");
}

void WeightLoader::round_to_weight_type(std::vector<float>& values) const {
  using kernels::WeightType;
  if (weight_type_ == WeightType::kBF16) {
    for (float& v : values) v = kernels::bf16_to_float(kernels::float_to_bf16(v));
  } else if (weight_type_ == WeightType::kF16) {
    for (float& v : values) v = kernels::f16_to_float(kernels::float_to_f16(v));
  }
}

std::vector<float> WeightLoader::vector(const std::string& name, int64_t size) {
  weight_bytes_ += size * 4;
  std::vector<float> values = checkpoint_.read_float(name, {size});
  round_to_weight_type(values);
  return values;
}

std::vector<float> WeightLoader::table(const std::string& name, int64_t rows, int64_t cols) {
  weight_bytes_ += rows * cols * 4;
  std::vector<float> values = checkpoint_.read_float(name, {rows, cols});
  round_to_weight_type(values);
  return values;
}

kernels::PackedWeight WeightLoader::embedding(const std::string& name, int64_t rows, int64_t cols) {
  const std::vector<float> values = checkpoint_.read_float(name, {rows, cols});
  kernels::PackedWeight packed =
      kernels::PackedWeight::pack(values.data(), rows, cols, cols, weight_type_);
  weight_bytes_ += packed.size_bytes();
  return packed;
}

Linear WeightLoader::linear(const std::vector<std::pair<std::string, int64_t>>& parts,
                            int64_t num_cols, const std::vector<std::string>& bias_names) {
  std::vector<float> stacked;
  int64_t num_rows = 0;
  for (const auto& [name, rows] : parts) {
    std::vector<float> part = checkpoint_.read_float(name, {rows, num_cols});
    stacked.insert(stacked.end(), part.begin(), part.end());
    num_rows += rows;
  }
  Linear linear = pack(stacked, num_rows, num_cols);
  for (size_t i = 0; i < bias_names.size(); ++i) {
    std::vector<float> bias = vector(bias_names[i], parts[i].second);
    linear.bias.insert(linear.bias.end(), bias.begin(), bias.end());
  }
  return linear;
}

Linear WeightLoader::conv1d(const std::string& name, int64_t in_features, int64_t out_features,
                            const std::string& bias_name) {
  const std::vector<float> stored = checkpoint_.read_float(name, {in_features, out_features});
  std::vector<float> transposed(stored.size());
  for (int64_t i = 0; i < in_features; ++i) {
    for (int64_t o = 0; o < out_features; ++o) {
      transposed[o * in_features + i] = stored[i * out_features + o];
    }
  }
  Linear linear = pack(transposed, out_features, in_features);
  if (!bias_name.empty()) linear.bias = vector(bias_name, out_features);
  return linear;
}

Linear WeightLoader::pack(const std::vector<float>& matrix, int64_t rows, int64_t cols) {
  Linear linear;
  linear.weight = kernels::PackedWeight::pack(matrix.data(), rows, cols, cols, weight_type_);
  weight_bytes_ += linear.weight.size_bytes();
  return linear;
}

Linear WeightLoader::lm_head(const ModelConfig& config, int64_t in_dim) {
  if (config.tie_word_embeddings || !checkpoint_.has("lm_head.weight")) return Linear{};
  return linear({{"lm_head.weight", config.vocab_size}}, in_dim);
}

Norm WeightLoader::norm(const std::string& weight_name, const std::string& bias_name, int64_t size,
                        float weight_offset) {
  Norm norm;
  norm.weight = vector(weight_name, size);
  if (weight_offset != 0.0f) {
    for (float& w : norm.weight) w += weight_offset;
  }
  if (!bias_name.empty()) norm.bias = vector(bias_name, size);
  return norm;
}

void require_config(const ModelConfig& config, bool is_ok, const char* field,
                    const std::string& expected) {
  if (!is_ok) {
    throw std::invalid_argument("model config: " + config.architecture + " needs " + field + " = " +
                                expected);
  }
}

void require_rms_norm_rope_blocks(const ModelConfig& config, const std::string& activation,
                                  bool sandwich_norm) {
  require_config(config, config.norm_kind == "rms_norm", "norm_kind", "rms_norm");
  require_config(config, config.activation == activation, "activation", activation);
  require_config(config, config.position_kind == "rope", "position_kind", "rope");
  require_config(config, config.is_norm_before, "is_norm_before", "true");
  require_config(config, config.sandwich_norm == sandwich_norm, "sandwich_norm",
                 sandwich_norm ? "true" : "false");
  require_config(config, config.word_embed_proj_dim == config.hidden_size, "word_embed_proj_dim",
                 "hidden_size");
}

}  // namespace cadence
