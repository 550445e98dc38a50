#include "cadence/model_config.h"

#include <cmath>
#include <stdexcept>

#include "model/architectures.h"

namespace cadence {

namespace {

void require_positive(int64_t value, const char* name) {
  if (value <= 0) {
    throw std::invalid_argument(std::string("model config: ") + name + " must be > 0, got " +
                                std::to_string(value));
  }
}

void check_longrope(const RopeScaling& scaling, int64_t rotary_dim) {
  const size_t num_freqs = static_cast<size_t>(rotary_dim / 2);
  for (const auto* factors : {&scaling.short_factor, &scaling.long_factor}) {
    if (factors->size() != num_freqs) {
      throw std::invalid_argument("model config: longrope short_factor and long_factor need " +
                                  std::to_string(num_freqs) + " values (rotary_dim / 2), got " +
                                  std::to_string(factors->size()));
    }
    for (double f : *factors) {
      if (!(f > 0)) throw std::invalid_argument("model config: longrope factors must be > 0");
    }
  }
  require_positive(scaling.original_max_position_embeddings, "original_max_position_embeddings");
  if (scaling.attention_factor < 0) {
    throw std::invalid_argument("model config: longrope attention_factor must be >= 0");
  }
}

}  // namespace

void ModelConfig::finalize() {
  if (find_hf_architecture(architecture) == nullptr) {
    std::string names;
    for (const auto& name : supported_architectures()) names += (names.empty() ? "" : ", ") + name;
    throw std::invalid_argument("unsupported architecture '" + architecture +
                                "'; supported: " + names);
  }
  require_positive(vocab_size, "vocab_size");
  require_positive(hidden_size, "hidden_size");
  require_positive(intermediate_size, "intermediate_size");
  require_positive(num_layers, "num_hidden_layers");
  require_positive(num_heads, "num_attention_heads");
  if (num_kv_heads == 0) num_kv_heads = num_heads;
  require_positive(num_kv_heads, "num_key_value_heads");
  if (num_heads % num_kv_heads != 0) {
    throw std::invalid_argument("model config: num_attention_heads (" + std::to_string(num_heads) +
                                ") must be a multiple of num_key_value_heads (" +
                                std::to_string(num_kv_heads) + ")");
  }
  if (head_dim == 0) {
    if (hidden_size % num_heads != 0) {
      throw std::invalid_argument("model config: hidden_size is not a multiple of num_heads");
    }
    head_dim = hidden_size / num_heads;
  }
  if (!(embedding_scale > 0)) {
    throw std::invalid_argument("model config: embedding_scale must be > 0");
  }
  if (attention_scale < 0 || attn_logit_softcapping < 0 || final_logit_softcapping < 0) {
    throw std::invalid_argument(
        "model config: attention_scale, attn_logit_softcapping and final_logit_softcapping "
        "must be >= 0 (0 = unused)");
  }
  if (sandwich_norm && !is_norm_before) {
    throw std::invalid_argument("model config: sandwich_norm needs is_norm_before");
  }
  if (position_offset < 0 || (position_kind == PositionKind::kRope && position_offset != 0)) {
    throw std::invalid_argument(
        "model config: position_offset must be >= 0 (and 0 with rope), got " +
        std::to_string(position_offset));
  }
  if (word_embed_proj_dim == 0) word_embed_proj_dim = hidden_size;
  require_positive(word_embed_proj_dim, "word_embed_proj_dim");
  require_positive(max_position_embeddings, "max_position_embeddings");
  if (sliding_window < 0) {
    throw std::invalid_argument("model config: sliding_window must be >= 0, got " +
                                std::to_string(sliding_window));
  }
  for (int32_t layer : full_attention_layers) {
    if (layer < 0 || layer >= num_layers) {
      throw std::invalid_argument("model config: full_attention_layers holds layer " +
                                  std::to_string(layer) + ", not in [0, num_hidden_layers)");
    }
  }
  if (position_kind == PositionKind::kLearned) return;  // the RoPE fields are unused
  if (head_dim % 2 != 0) throw std::invalid_argument("model config: head_dim must be even");
  if (rotary_dim == 0) rotary_dim = head_dim;
  if (rotary_dim < 0 || rotary_dim > head_dim || rotary_dim % 2 != 0) {
    throw std::invalid_argument("model config: rotary_dim must be even and in (0, head_dim], got " +
                                std::to_string(rotary_dim));
  }
  if (!(rope_theta > 0)) throw std::invalid_argument("model config: rope_theta must be > 0");
  const RopeScalingType type = rope_scaling.type;
  if (type != RopeScalingType::kDefault && !(rope_scaling.factor > 0)) {
    throw std::invalid_argument("model config: rope_scaling factor must be > 0");
  }
  if (type == RopeScalingType::kLongrope) check_longrope(rope_scaling, rotary_dim);
}

}  // namespace cadence
