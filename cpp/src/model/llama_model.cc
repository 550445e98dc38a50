#include "model/llama_model.h"

#include <cmath>
#include <cstring>
#include <stdexcept>

#include "model/rope.h"

namespace cadence {

namespace {

std::string layer_prefix(int64_t layer) { return "model.layers." + std::to_string(layer) + "."; }

// Packs the row-wise concatenation of several [rows_i, num_cols] checkpoint tensors.
kernels::PackedWeight pack_rows(const Checkpoint& checkpoint,
                                const std::vector<std::pair<std::string, int64_t>>& parts,
                                int64_t num_cols, int64_t& weight_bytes) {
  std::vector<float> stacked;
  int64_t num_rows = 0;
  for (const auto& [name, rows] : parts) {
    std::vector<float> part = checkpoint.read_float(name, {rows, num_cols});
    stacked.insert(stacked.end(), part.begin(), part.end());
    num_rows += rows;
  }
  kernels::PackedWeight packed =
      kernels::PackedWeight::pack(stacked.data(), num_rows, num_cols, num_cols);
  weight_bytes += packed.size_bytes();
  return packed;
}

std::vector<float> read_vector(const Checkpoint& checkpoint, const std::string& name, int64_t size,
                               int64_t& weight_bytes) {
  weight_bytes += size * 4;
  return checkpoint.read_float(name, {size});
}

void grow(std::vector<float>& buffer, int64_t num_floats) {
  if (static_cast<int64_t>(buffer.size()) < num_floats) buffer.resize(num_floats);
}

}  // namespace

LlamaModel::LlamaModel(const ModelConfig& config, const Checkpoint& checkpoint,
                       int64_t max_positions)
    : config_(config), max_positions_(max_positions) {
  const int64_t hidden = config_.hidden_size;
  const int64_t q_rows = config_.num_heads * config_.head_dim;
  const int64_t kv_rows = config_.num_kv_heads * config_.head_dim;
  const int64_t inter = config_.intermediate_size;

  embed_tokens_ = checkpoint.read_float("model.embed_tokens.weight", {config_.vocab_size, hidden});
  weight_bytes_ += static_cast<int64_t>(embed_tokens_.size()) * 4;
  for (int64_t l = 0; l < config_.num_layers; ++l) {
    const std::string p = layer_prefix(l);
    Layer layer;
    layer.input_norm = read_vector(checkpoint, p + "input_layernorm.weight", hidden, weight_bytes_);
    layer.qkv = pack_rows(checkpoint,
                          {{p + "self_attn.q_proj.weight", q_rows},
                           {p + "self_attn.k_proj.weight", kv_rows},
                           {p + "self_attn.v_proj.weight", kv_rows}},
                          hidden, weight_bytes_);
    if (config_.attention_bias) {
      for (const char* name : {"q_proj", "k_proj", "v_proj"}) {
        const int64_t rows = std::string(name) == "q_proj" ? q_rows : kv_rows;
        std::vector<float> bias =
            read_vector(checkpoint, p + "self_attn." + name + ".bias", rows, weight_bytes_);
        layer.qkv_bias.insert(layer.qkv_bias.end(), bias.begin(), bias.end());
      }
    }
    layer.o_proj =
        pack_rows(checkpoint, {{p + "self_attn.o_proj.weight", hidden}}, q_rows, weight_bytes_);
    layer.post_attention_norm =
        read_vector(checkpoint, p + "post_attention_layernorm.weight", hidden, weight_bytes_);
    layer.gate_up = pack_rows(
        checkpoint, {{p + "mlp.gate_proj.weight", inter}, {p + "mlp.up_proj.weight", inter}},
        hidden, weight_bytes_);
    layer.down =
        pack_rows(checkpoint, {{p + "mlp.down_proj.weight", hidden}}, inter, weight_bytes_);
    layers_.push_back(std::move(layer));
  }
  final_norm_ = read_vector(checkpoint, "model.norm.weight", hidden, weight_bytes_);
  if (config_.tie_word_embeddings || !checkpoint.has("lm_head.weight")) {
    lm_head_ =
        kernels::PackedWeight::pack(embed_tokens_.data(), config_.vocab_size, hidden, hidden);
    weight_bytes_ += lm_head_.size_bytes();
  } else {
    lm_head_ =
        pack_rows(checkpoint, {{"lm_head.weight", config_.vocab_size}}, hidden, weight_bytes_);
  }
  rope_cos_sin_ = rope_cos_sin_table(config_, config_.head_dim, max_positions_);
}

void LlamaModel::forward(ThreadPool& pool, const ForwardBatch& batch, KvCache& cache,
                         std::vector<float>& logits) {
  const int64_t num_tokens = batch.num_tokens();
  const int64_t hidden = config_.hidden_size;
  grow(hidden_, num_tokens * hidden);
  for (int64_t t = 0; t < num_tokens; ++t) {
    std::memcpy(&hidden_[t * hidden], &embed_tokens_[batch.token_ids[t] * hidden],
                static_cast<size_t>(hidden) * sizeof(float));
  }
  for (int64_t l = 0; l < config_.num_layers; ++l) {
    attention_block(pool, layers_[l], l, batch, cache);
    mlp_block(pool, layers_[l], num_tokens);
  }

  const int64_t num_rows = static_cast<int64_t>(batch.logits_rows.size());
  grow(final_rows_, num_rows * hidden);
  for (int64_t r = 0; r < num_rows; ++r) {
    std::memcpy(&final_rows_[r * hidden], &hidden_[batch.logits_rows[r] * hidden],
                static_cast<size_t>(hidden) * sizeof(float));
  }
  kernels::rms_norm(pool, final_rows_.data(), num_rows, hidden, hidden, final_norm_.data(),
                    static_cast<float>(config_.rms_norm_eps), final_rows_.data(), hidden);
  logits.resize(static_cast<size_t>(num_rows * config_.vocab_size));
  kernels::gemm(pool, final_rows_.data(), num_rows, hidden, lm_head_, nullptr, logits.data(),
                config_.vocab_size);
}

void LlamaModel::attention_block(ThreadPool& pool, const Layer& layer, int64_t layer_index,
                                 const ForwardBatch& batch, KvCache& cache) {
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

  kernels::rms_norm(pool, hidden_.data(), num_tokens, hidden, hidden, layer.input_norm.data(),
                    static_cast<float>(config_.rms_norm_eps), normed_.data(), hidden);
  kernels::gemm(pool, normed_.data(), num_tokens, hidden, layer.qkv,
                layer.qkv_bias.empty() ? nullptr : layer.qkv_bias.data(), qkv_.data(), qkv_width);
  float* q = qkv_.data();
  float* k = qkv_.data() + q_width;
  const float* v = qkv_.data() + q_width + kv_width;
  kernels::rope_neox(pool, q, num_tokens, config_.num_heads, head_dim, head_dim, qkv_width,
                     batch.positions.data(), rope_cos_sin_.data());
  kernels::rope_neox(pool, k, num_tokens, config_.num_kv_heads, head_dim, head_dim, qkv_width,
                     batch.positions.data(), rope_cos_sin_.data());
  const kernels::PagedKvCache& layer_cache = cache.layer(layer_index);
  kernels::write_kv_cache(pool, k, v, num_tokens, qkv_width, batch.slot_mapping.data(),
                          layer_cache);

  kernels::AttentionBatch attention;
  attention.num_seqs = batch.num_seqs();
  attention.query_start = batch.query_start.data();
  attention.context_lens = batch.context_lens.data();
  attention.block_tables = batch.block_tables.data();
  attention.max_blocks_per_seq = batch.max_blocks_per_seq;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  kernels::paged_attention(pool, q, qkv_width, config_.num_heads, attention, layer_cache, scale,
                           attn_out_.data(), q_width);
  kernels::gemm(pool, attn_out_.data(), num_tokens, q_width, layer.o_proj, nullptr,
                proj_out_.data(), hidden);
  kernels::add_inplace(pool, hidden_.data(), proj_out_.data(), num_tokens * hidden);
}

void LlamaModel::mlp_block(ThreadPool& pool, const Layer& layer, int64_t num_tokens) {
  const int64_t hidden = config_.hidden_size;
  const int64_t inter = config_.intermediate_size;
  grow(gate_up_, num_tokens * 2 * inter);
  grow(mlp_act_, num_tokens * inter);
  kernels::rms_norm(pool, hidden_.data(), num_tokens, hidden, hidden,
                    layer.post_attention_norm.data(), static_cast<float>(config_.rms_norm_eps),
                    normed_.data(), hidden);
  kernels::gemm(pool, normed_.data(), num_tokens, hidden, layer.gate_up, nullptr, gate_up_.data(),
                2 * inter);
  kernels::silu_mul(pool, gate_up_.data(), num_tokens, inter, 2 * inter, mlp_act_.data(), inter);
  kernels::gemm(pool, mlp_act_.data(), num_tokens, inter, layer.down, nullptr, proj_out_.data(),
                hidden);
  kernels::add_inplace(pool, hidden_.data(), proj_out_.data(), num_tokens * hidden);
}

}  // namespace cadence
