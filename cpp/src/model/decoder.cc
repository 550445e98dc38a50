#include "model/decoder.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "model/rope.h"

namespace cadence {

namespace {

void grow(std::vector<float>& buffer, int64_t num_floats) {
  if (static_cast<int64_t>(buffer.size()) < num_floats) buffer.resize(num_floats);
}

// Copies rows[indices[i] + offset] (each `width` floats) to out row i.
template <typename Index>
void gather_rows(const std::vector<float>& rows, const Index* indices, int64_t num_indices,
                 int64_t offset, int64_t width, float* out) {
  for (int64_t i = 0; i < num_indices; ++i) {
    std::memcpy(out + i * width, &rows[(static_cast<int64_t>(indices[i]) + offset) * width],
                static_cast<size_t>(width) * sizeof(float));
  }
}

}  // namespace

DecoderModel::DecoderModel(const ModelConfig& config, DecoderWeights weights, int64_t max_positions)
    : config_(config),
      weights_(std::move(weights)),
      is_layer_norm_(config.norm_kind == "layer_norm"),
      is_rope_(config.position_kind == "rope"),
      activation_(config.activation == "gelu_tanh"         ? Activation::kGeluTanh
                  : config.activation == "gelu_tanh_gated" ? Activation::kGeluTanhGated
                  : config.activation == "relu"            ? Activation::kRelu
                                                           : Activation::kSiluGated) {
  if (is_rope_) {
    rope_cos_sin_ = rope_cos_sin_table(config_, config_.rotary_dim, max_positions);
    is_longrope_ = config_.rope_scaling.type == "longrope";
    long_rope_row_offset_ = max_positions;
  }
  layer_windows_.assign(static_cast<size_t>(config_.num_layers), config_.sliding_window);
  for (int32_t layer : config_.full_attention_layers) layer_windows_[layer] = 0;
}

const int32_t* DecoderModel::rope_positions(const ForwardBatch& batch) {
  if (!is_longrope_) return batch.positions.data();
  // LongRoPE: a sequence longer than original_max_position_embeddings (its prompt, or its
  // tokens after this step) reads the long-factor table, rows offset by long_rope_row_offset_.
  const int64_t original = config_.rope_scaling.original_max_position_embeddings;
  rope_positions_.resize(batch.positions.size());
  for (int64_t s = 0; s < batch.num_seqs(); ++s) {
    int64_t length = batch.context_lens[s];
    if (!batch.prompt_lens.empty()) length = std::max<int64_t>(length, batch.prompt_lens[s]);
    const int64_t offset = length > original ? long_rope_row_offset_ : 0;
    for (int32_t t = batch.query_start[s]; t < batch.query_start[s + 1]; ++t) {
      rope_positions_[t] = static_cast<int32_t>(batch.positions[t] + offset);
    }
  }
  return rope_positions_.data();
}

void DecoderModel::apply_norm(ThreadPool& pool, const Norm& norm, const float* x, int64_t num_rows,
                              float* out) const {
  const int64_t hidden = config_.hidden_size;
  if (is_layer_norm_) {
    kernels::layer_norm(pool, x, num_rows, hidden, hidden, norm.weight.data(), norm.bias.data(),
                        static_cast<float>(config_.layer_norm_eps), out, hidden);
  } else {
    kernels::rms_norm(pool, x, num_rows, hidden, hidden, norm.weight.data(),
                      static_cast<float>(config_.rms_norm_eps), out, hidden);
  }
}

void DecoderModel::embed(ThreadPool& pool, const ForwardBatch& batch) {
  const int64_t num_tokens = batch.num_tokens();
  const int64_t hidden = config_.hidden_size;
  const int64_t embed_dim = config_.word_embed_proj_dim;
  grow(hidden_, num_tokens * hidden);
  const kernels::PackedWeight& table = weights_.token_embedding;
  if (weights_.project_in.empty()) {
    for (int64_t i = 0; i < num_tokens; ++i) {
      table.unpack_row(batch.token_ids[i], hidden_.data() + i * hidden);
    }
  } else {
    grow(embed_rows_, num_tokens * embed_dim);
    for (int64_t i = 0; i < num_tokens; ++i) {
      table.unpack_row(batch.token_ids[i], embed_rows_.data() + i * embed_dim);
    }
    kernels::gemm(pool, embed_rows_.data(), num_tokens, embed_dim, weights_.project_in.weight,
                  weights_.project_in.bias_or_null(), hidden_.data(), hidden);
  }
  if (config_.embedding_scale != 1.0) {
    const auto scale = static_cast<float>(config_.embedding_scale);
    for (int64_t i = 0; i < num_tokens * hidden; ++i) hidden_[i] *= scale;
  }
  if (!is_rope_) {  // learned positions
    grow(proj_out_, num_tokens * hidden);
    gather_rows(weights_.position_embedding, batch.positions.data(), num_tokens,
                config_.position_offset, hidden, proj_out_.data());
    kernels::add_inplace(pool, hidden_.data(), proj_out_.data(), num_tokens * hidden);
  }
}

void DecoderModel::forward(ThreadPool& pool, const ForwardBatch& batch, KvCache& cache,
                           std::vector<float>& logits) {
  const int64_t num_tokens = batch.num_tokens();
  const int64_t hidden = config_.hidden_size;
  embed(pool, batch);
  const int32_t* rope_rows = is_rope_ ? rope_positions(batch) : nullptr;
  for (int64_t l = 0; l < config_.num_layers; ++l) {
    attention_block(pool, weights_.layers[l], l, batch, rope_rows, cache);
    mlp_block(pool, weights_.layers[l], num_tokens);
  }

  const int64_t num_rows = static_cast<int64_t>(batch.logits_rows.size());
  grow(final_rows_, num_rows * hidden);
  gather_rows(hidden_, batch.logits_rows.data(), num_rows, 0, hidden, final_rows_.data());
  if (config_.is_norm_before) {
    apply_norm(pool, weights_.final_norm, final_rows_.data(), num_rows, final_rows_.data());
  }
  const float* head_in = final_rows_.data();
  int64_t head_in_width = hidden;
  if (!weights_.project_out.empty()) {
    head_in_width = config_.word_embed_proj_dim;
    grow(final_proj_, num_rows * head_in_width);
    kernels::gemm(pool, final_rows_.data(), num_rows, hidden, weights_.project_out.weight,
                  weights_.project_out.bias_or_null(), final_proj_.data(), head_in_width);
    head_in = final_proj_.data();
  }
  logits.resize(static_cast<size_t>(num_rows * config_.vocab_size));
  const bool is_tied = weights_.lm_head.empty();
  kernels::gemm(pool, head_in, num_rows, head_in_width,
                is_tied ? weights_.token_embedding : weights_.lm_head.weight,
                is_tied ? nullptr : weights_.lm_head.bias_or_null(), logits.data(),
                config_.vocab_size);
  if (config_.final_logit_softcapping > 0) {
    const auto cap = static_cast<float>(config_.final_logit_softcapping);
    float* z = logits.data();
    pool.parallel_for_grain(num_rows * config_.vocab_size, 4096, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) z[i] = cap * std::tanh(z[i] / cap);
    });
  }
}

void DecoderModel::add_residual(ThreadPool& pool, const Norm& post_norm, float* sublayer_out,
                                int64_t num_tokens) {
  if (config_.sandwich_norm) apply_norm(pool, post_norm, sublayer_out, num_tokens, sublayer_out);
  kernels::add_inplace(pool, hidden_.data(), sublayer_out, num_tokens * config_.hidden_size);
}

void DecoderModel::attention_block(ThreadPool& pool, const DecoderLayerWeights& layer,
                                   int64_t layer_index, const ForwardBatch& batch,
                                   const int32_t* rope_rows, KvCache& cache) {
  const int64_t num_tokens = batch.num_tokens();
  const int64_t hidden = config_.hidden_size;
  const int64_t head_dim = config_.head_dim;
  const int64_t q_width = config_.num_heads * head_dim;
  const int64_t kv_width = config_.num_kv_heads * head_dim;
  const int64_t qkv_width = q_width + 2 * kv_width;
  grow(normed_, num_tokens * hidden);
  grow(qkv_, num_tokens * qkv_width);
  grow(attn_out_, num_tokens * q_width);
  grow(proj_out_, num_tokens * hidden);

  const float* input = hidden_.data();
  if (config_.is_norm_before) {
    apply_norm(pool, layer.attention_norm, hidden_.data(), num_tokens, normed_.data());
    input = normed_.data();
  }
  kernels::gemm(pool, input, num_tokens, hidden, layer.qkv.weight, layer.qkv.bias_or_null(),
                qkv_.data(), qkv_width);
  float* q = qkv_.data();
  float* k = qkv_.data() + q_width;
  const float* v = qkv_.data() + q_width + kv_width;
  if (config_.qk_norm) {  // each head's head_dim slice is one RMSNorm row
    const float eps = static_cast<float>(config_.rms_norm_eps);
    for (int64_t h = 0; h < config_.num_heads; ++h) {
      float* qh = q + h * head_dim;
      kernels::rms_norm(pool, qh, num_tokens, head_dim, qkv_width, layer.q_norm.data(), eps, qh,
                        qkv_width);
    }
    for (int64_t h = 0; h < config_.num_kv_heads; ++h) {
      float* kh = k + h * head_dim;
      kernels::rms_norm(pool, kh, num_tokens, head_dim, qkv_width, layer.k_norm.data(), eps, kh,
                        qkv_width);
    }
  }
  if (is_rope_) {
    const int64_t rot_dim = config_.rotary_dim;
    kernels::rope_neox(pool, q, num_tokens, config_.num_heads, head_dim, rot_dim, qkv_width,
                       rope_rows, rope_cos_sin_.data());
    kernels::rope_neox(pool, k, num_tokens, config_.num_kv_heads, head_dim, rot_dim, qkv_width,
                       rope_rows, rope_cos_sin_.data());
  }
  const kernels::PagedKvCache& layer_cache = cache.layer(layer_index);
  kernels::write_kv_cache(pool, k, v, num_tokens, qkv_width, batch.slot_mapping.data(),
                          layer_cache);

  kernels::AttentionBatch attention;
  attention.num_seqs = batch.num_seqs();
  attention.query_start = batch.query_start.data();
  attention.context_lens = batch.context_lens.data();
  attention.block_tables = batch.block_tables.data();
  attention.max_blocks_per_seq = batch.max_blocks_per_seq;
  attention.sliding_window = layer_windows_[layer_index];
  attention.softcap = static_cast<float>(config_.attn_logit_softcapping);
  const float scale = config_.attention_scale > 0 ? static_cast<float>(config_.attention_scale)
                                                  : 1.0f / std::sqrt(static_cast<float>(head_dim));
  kernels::paged_attention(pool, q, qkv_width, config_.num_heads, attention, layer_cache, scale,
                           attn_out_.data(), q_width);
  kernels::gemm(pool, attn_out_.data(), num_tokens, q_width, layer.out_proj.weight,
                layer.out_proj.bias_or_null(), proj_out_.data(), hidden);
  add_residual(pool, layer.attention_post_norm, proj_out_.data(), num_tokens);
  if (!config_.is_norm_before) {
    apply_norm(pool, layer.attention_norm, hidden_.data(), num_tokens, hidden_.data());
  }
}

void DecoderModel::mlp_block(ThreadPool& pool, const DecoderLayerWeights& layer,
                             int64_t num_tokens) {
  const int64_t hidden = config_.hidden_size;
  const int64_t inter = config_.intermediate_size;
  const bool is_gated =
      activation_ == Activation::kSiluGated || activation_ == Activation::kGeluTanhGated;
  const int64_t up_width = is_gated ? 2 * inter : inter;
  grow(mlp_in_, num_tokens * up_width);
  grow(proj_out_, num_tokens * hidden);
  const float* input = hidden_.data();
  if (config_.is_norm_before) {
    apply_norm(pool, layer.mlp_norm, hidden_.data(), num_tokens, normed_.data());
    input = normed_.data();
  }
  kernels::gemm(pool, input, num_tokens, hidden, layer.up.weight, layer.up.bias_or_null(),
                mlp_in_.data(), up_width);
  const float* activated = mlp_in_.data();
  if (is_gated) {
    grow(mlp_act_, num_tokens * inter);
    if (activation_ == Activation::kSiluGated) {
      kernels::silu_mul(pool, mlp_in_.data(), num_tokens, inter, up_width, mlp_act_.data(), inter);
    } else {
      kernels::gelu_tanh_mul(pool, mlp_in_.data(), num_tokens, inter, up_width, mlp_act_.data(),
                             inter);
    }
    activated = mlp_act_.data();
  } else if (activation_ == Activation::kGeluTanh) {
    kernels::gelu_tanh(pool, mlp_in_.data(), num_tokens * inter, mlp_in_.data());
  } else {
    kernels::relu(pool, mlp_in_.data(), num_tokens * inter, mlp_in_.data());
  }
  kernels::gemm(pool, activated, num_tokens, inter, layer.down.weight, layer.down.bias_or_null(),
                proj_out_.data(), hidden);
  add_residual(pool, layer.mlp_post_norm, proj_out_.data(), num_tokens);
  if (!config_.is_norm_before) {
    apply_norm(pool, layer.mlp_norm, hidden_.data(), num_tokens, hidden_.data());
  }
}

}  // namespace cadence
