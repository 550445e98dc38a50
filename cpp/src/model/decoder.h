// The shared decoder every architecture is assembled from:
//
//   x = embed(token) [* embedding_scale] [-> project_in] [+ position_table[position + offset]]
//   N x pre-norm:   x += attention(norm1(x));  x += mlp(norm2(x))
//       sandwich:   x += norm1_post(attention(norm1(x)));  x += norm2_post(mlp(norm2(x)))
//       post-norm:  x = norm1(x + attention(x));  x = norm2(x + mlp(x))
//   [final norm (pre-norm only)] [-> project_out] -> LM head [-> cap * tanh(logits / cap)]
//
//   attention: qkv GEMM (+bias) -> [per-head q/k RMSNorm] -> [RoPE on the first rotary_dim
//              dims of each head; LongRoPE picks short/long tables per sequence] -> paged
//              attention (causal, or sliding-window on the layers that have one; scale
//              1/sqrt(head_dim) or attention_scale; optional score soft-capping) -> out GEMM
//   mlp:       "silu": gate_up GEMM -> silu(gate) * up -> down GEMM (SwiGLU)
//              "gelu_tanh_gated": the same with gelu_tanh(gate) (GeGLU)
//              "gelu_tanh" | "relu": fc1 GEMM (+bias) -> activation -> fc2 GEMM (+bias)
//
// The blocks are picked by ModelConfig (norm_kind, is_norm_before, sandwich_norm, qk_norm,
// activation, position_kind, the soft-caps); the loaders (architectures.h) fill DecoderWeights from
// a checkpoint.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/ops.h"
#include "model/model.h"

namespace cadence {

// y = x W^T (+ bias). W is [out, in] (nn.Linear's layout), packed for the GEMM kernel.
struct Linear {
  kernels::PackedWeight weight;
  std::vector<float> bias;  // out floats, or empty: no bias

  bool empty() const { return weight.empty(); }
  const float* bias_or_null() const { return bias.empty() ? nullptr : bias.data(); }
};

// RMSNorm (weight) or LayerNorm (weight and bias), per config.norm_kind.
struct Norm {
  std::vector<float> weight;
  std::vector<float> bias;  // LayerNorm only
};

struct DecoderLayerWeights {
  Norm attention_norm;  // before attention (pre-norm) or after its residual add (post-norm)
  Linear qkv;           // rows: q (num_heads * head_dim), k, v (num_kv_heads * head_dim each)
  std::vector<float> q_norm, k_norm;  // qk_norm only: [head_dim] RMSNorm weights
  Linear out_proj;                    // [hidden, num_heads * head_dim]
  Norm mlp_norm;
  // sandwich_norm only: applied to the attention / MLP output before its residual add.
  Norm attention_post_norm, mlp_post_norm;
  Linear up;    // "silu": rows gate (intermediate), up (intermediate); else fc1 [intermediate]
  Linear down;  // [hidden, intermediate]
};

struct DecoderWeights {
  // [vocab_size, word_embed_proj_dim], packed in the weight type: its rows are the input
  // embeddings, and it is the LM head when lm_head is empty (tied).
  kernels::PackedWeight token_embedding;
  Linear project_in;  // word_embed_proj_dim -> hidden; empty when equal
  // position_kind "learned": (max_position_embeddings + position_offset) x hidden_size.
  std::vector<float> position_embedding;
  std::vector<DecoderLayerWeights> layers;
  Norm final_norm;     // pre-norm only
  Linear project_out;  // hidden -> word_embed_proj_dim; empty when equal
  Linear lm_head;      // [vocab_size, word_embed_proj_dim]; empty: tied to token_embedding
  int64_t weight_bytes = 0;
};

class DecoderModel : public Model {
 public:
  // `config` is finalized; the weights' shapes were checked by the loader.
  DecoderModel(const ModelConfig& config, DecoderWeights weights, int64_t max_positions);

  void forward(ThreadPool& pool, const ForwardBatch& batch, KvCache& cache,
               std::vector<float>& logits) override;
  const ModelConfig& config() const override { return config_; }
  int64_t weight_bytes() const override { return weights_.weight_bytes; }

 private:
  void embed(ThreadPool& pool, const ForwardBatch& batch);
  void attention_block(ThreadPool& pool, const DecoderLayerWeights& layer, int64_t layer_index,
                       const ForwardBatch& batch, const int32_t* rope_rows, KvCache& cache);
  // The rows of rope_cos_sin_ each token reads: its position, or for LongRoPE in a sequence
  // past original_max_position_embeddings, long_rope_row_offset_ + its position.
  const int32_t* rope_positions(const ForwardBatch& batch);
  void mlp_block(ThreadPool& pool, const DecoderLayerWeights& layer, int64_t num_tokens);
  void apply_norm(ThreadPool& pool, const Norm& norm, const float* x, int64_t num_rows,
                  float* out) const;
  // hidden_ += sublayer_out (num_tokens rows), through post_norm first with sandwich_norm.
  void add_residual(ThreadPool& pool, const Norm& post_norm, float* sublayer_out,
                    int64_t num_tokens);

  enum class Activation { kSiluGated, kGeluTanhGated, kGeluTanh, kRelu };

  ModelConfig config_;
  DecoderWeights weights_;
  // config_'s block choices, decoded once.
  bool is_layer_norm_ = false;
  bool is_rope_ = true;
  Activation activation_ = Activation::kSiluGated;
  std::vector<float> rope_cos_sin_;  // position_kind "rope" only (rope.h's table)
  bool is_longrope_ = false;
  int64_t long_rope_row_offset_ = 0;  // first row of the long-factor table
  std::vector<int32_t> rope_positions_;
  std::vector<int64_t> layer_windows_;  // per layer: AttentionBatch::sliding_window

  // Activation scratch, grown on demand and reused across steps.
  std::vector<float> hidden_, normed_, qkv_, attn_out_, proj_out_, mlp_in_, mlp_act_;
  std::vector<float> embed_rows_, final_rows_, final_proj_;
};

}  // namespace cadence
