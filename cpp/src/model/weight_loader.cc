#include "model/weight_loader.h"

#include <stdexcept>

#include "kernels/half.h"
#include "util/large_alloc.h"

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
  if (format_.keep_stored_types) return;
  if (format_.float_type == WeightType::kBF16) {
    for (float& v : values) v = kernels::bf16_to_float(kernels::float_to_bf16(v));
  } else if (format_.float_type == WeightType::kF16) {
    for (float& v : values) v = kernels::f16_to_float(kernels::float_to_f16(v));
  }
}

std::vector<float> WeightLoader::read_vector(const std::string& name, int64_t size) {
  weight_bytes_ += size * 4;
  std::vector<float> values = checkpoint_.read_float(name, {size});
  round_to_weight_type(values);
  return values;
}

kernels::DeviceFloats WeightLoader::vector(const std::string& name, int64_t size) {
  return kernels::DeviceFloats(allocator_, read_vector(name, size));
}

kernels::DeviceFloats WeightLoader::table(const std::string& name, int64_t rows, int64_t cols) {
  weight_bytes_ += rows * cols * 4;
  std::vector<float> values = checkpoint_.read_float(name, {rows, cols});
  round_to_weight_type(values);
  return kernels::DeviceFloats(allocator_, values);
}

kernels::WeightType WeightLoader::float_type_of(const std::vector<std::string>& names) const {
  if (!format_.keep_stored_types) return format_.float_type;
  // Native: the parts' common 2-byte type, else fp32.
  const TensorType first = checkpoint_.get(names[0]).type;
  for (const std::string& name : names) {
    if (checkpoint_.get(name).type != first) return kernels::WeightType::kF32;
  }
  if (first == TensorType::kBF16) return kernels::WeightType::kBF16;
  if (first == TensorType::kF16) return kernels::WeightType::kF16;
  return kernels::WeightType::kF32;
}

kernels::PackedWeight WeightLoader::pack_parts(
    const std::vector<std::pair<std::string, int64_t>>& parts, int64_t num_cols) {
  release_free_heap();  // the previous tensor's temporaries (see large_alloc.h)
  std::vector<std::string> names;
  bool all_quantized = format_.keep_stored_types;
  for (const auto& part : parts) {
    names.push_back(part.first);
    all_quantized = all_quantized && checkpoint_.is_quantized(part.first);
  }
  if (all_quantized) {
    std::vector<kernels::QuantizedRows> codes;
    for (const auto& [name, rows] : parts)
      codes.push_back(checkpoint_.read_codes(name, {rows, num_cols}));
    kernels::PackedWeight packed = kernels::PackedWeight::pack_quantized(
        codes.size() == 1 ? codes[0] : kernels::stack_quantized_rows(codes), *weight_storage_);
    weight_bytes_ += packed.size_bytes();
    return packed;
  }
  std::vector<float> stacked;
  int64_t num_rows = 0;
  for (const auto& [name, rows] : parts) {
    std::vector<float> part = checkpoint_.read_float(name, {rows, num_cols});
    if (parts.size() == 1) {
      stacked = std::move(part);
    } else {
      stacked.insert(stacked.end(), part.begin(), part.end());
    }
    num_rows += rows;
  }
  return pack(stacked, num_rows, num_cols, float_type_of(names)).weight;
}

kernels::PackedWeight WeightLoader::embedding(const std::string& name, int64_t rows, int64_t cols) {
  return pack_parts({{name, rows}}, cols);
}

Linear WeightLoader::linear(const std::vector<std::pair<std::string, int64_t>>& parts,
                            int64_t num_cols, const std::vector<std::string>& bias_names) {
  Linear linear;
  linear.weight = pack_parts(parts, num_cols);
  std::vector<float> stacked_bias;
  for (size_t i = 0; i < bias_names.size(); ++i) {
    std::vector<float> bias = read_vector(bias_names[i], parts[i].second);
    stacked_bias.insert(stacked_bias.end(), bias.begin(), bias.end());
  }
  if (!stacked_bias.empty()) linear.bias = kernels::DeviceFloats(allocator_, stacked_bias);
  return linear;
}

Linear WeightLoader::conv1d(const std::string& name, int64_t in_features, int64_t out_features,
                            const std::string& bias_name) {
  release_free_heap();
  const std::vector<float> stored = checkpoint_.read_float(name, {in_features, out_features});
  std::vector<float> transposed(stored.size());
  for (int64_t i = 0; i < in_features; ++i) {
    for (int64_t o = 0; o < out_features; ++o) {
      transposed[o * in_features + i] = stored[i * out_features + o];
    }
  }
  Linear linear = pack(transposed, out_features, in_features, float_type_of({name}));
  if (!bias_name.empty()) linear.bias = vector(bias_name, out_features);
  return linear;
}

Linear WeightLoader::pack(const std::vector<float>& matrix, int64_t rows, int64_t cols,
                          kernels::WeightType type) {
  Linear linear;
  if (format_.quantize_int8 && cols > 0 && cols % 32 == 0) {
    linear.weight = kernels::PackedWeight::pack_quantized(
        kernels::quantize_rows_int8(matrix.data(), rows, cols, cols), *weight_storage_);
  } else {
    linear.weight =
        kernels::PackedWeight::pack(matrix.data(), rows, cols, cols, type, *weight_storage_);
  }
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
  std::vector<float> weight = read_vector(weight_name, size);
  if (weight_offset != 0.0f) {
    for (float& w : weight) w += weight_offset;
  }
  norm.weight = kernels::DeviceFloats(allocator_, weight);
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

void require_rms_norm_rope_blocks(const ModelConfig& config, Activation activation,
                                  bool sandwich_norm) {
  require_config(config, config.norm_kind == NormKind::kRmsNorm, "norm_kind",
                 to_string(NormKind::kRmsNorm));
  require_config(config, config.activation == activation, "activation", to_string(activation));
  require_config(config, config.position_kind == PositionKind::kRope, "position_kind",
                 to_string(PositionKind::kRope));
  require_config(config, config.is_norm_before, "is_norm_before", "true");
  require_config(config, config.sandwich_norm == sandwich_norm, "sandwich_norm",
                 sandwich_norm ? "true" : "false");
  require_config(config, config.word_embed_proj_dim == config.hidden_size, "word_embed_proj_dim",
                 "hidden_size");
}

}  // namespace cadence
