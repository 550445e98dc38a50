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
#include <memory>
#include <vector>

#include "kernels/arena.h"
#include "kernels/ops.h"
#include "model/model.h"

namespace cadence {

// y = x W^T (+ bias). W is [out, in] (nn.Linear's layout), packed for the GEMM kernel.
struct Linear {
  kernels::PackedWeight weight;
  kernels::DeviceFloats bias;  // out floats, or empty: no bias

  bool empty() const { return weight.empty(); }
};

// RMSNorm (weight) or LayerNorm (weight and bias), per config.norm_kind.
struct Norm {
  kernels::DeviceFloats weight;
  kernels::DeviceFloats bias;  // LayerNorm only
};

struct DecoderLayerWeights {
  Norm attention_norm;  // before attention (pre-norm) or after its residual add (post-norm)
  Linear qkv;           // rows: q (num_heads * head_dim), k, v (num_kv_heads * head_dim each)
  kernels::DeviceFloats q_norm, k_norm;  // qk_norm only: [head_dim] RMSNorm weights
  Linear out_proj;                       // [hidden, num_heads * head_dim]
  Norm mlp_norm;
  // sandwich_norm only: applied to the attention / MLP output before its residual add.
  Norm attention_post_norm, mlp_post_norm;
  Linear up;    // "silu": rows gate (intermediate), up (intermediate); else fc1 [intermediate]
  Linear down;  // [hidden, intermediate]
};

struct DecoderWeights {
  // The memory the packed matrices live in (WeightLoader::weight_storage()). First, so that it
  // is destroyed last, after every PackedWeight in it.
  std::shared_ptr<kernels::Allocator> storage;
  // [vocab_size, word_embed_proj_dim], packed in the weight type: its rows are the input
  // embeddings, and it is the LM head when lm_head is empty (tied).
  kernels::PackedWeight token_embedding;
  Linear project_in;  // word_embed_proj_dim -> hidden; empty when equal
  // position_kind "learned": (max_position_embeddings + position_offset) x hidden_size.
  kernels::DeviceFloats position_embedding;
  std::vector<DecoderLayerWeights> layers;
  Norm final_norm;     // pre-norm only
  Linear project_out;  // hidden -> word_embed_proj_dim; empty when equal
  Linear lm_head;      // [vocab_size, word_embed_proj_dim]; empty: tied to token_embedding
  int64_t weight_bytes = 0;
};

class DecoderModel : public Model {
 public:
  // `config` is finalized; the weights' shapes were checked by the loader. The rotary table
  // and the activation arena come from options.allocator.
  DecoderModel(const ModelConfig& config, DecoderWeights weights, const ModelLoadOptions& options);

  void forward(const kernels::ExecutionContext& ctx, const ForwardBatch& batch, KvCache& cache,
               const kernels::TensorView& logits) override;
  const ModelConfig& config() const override { return config_; }
  int64_t weight_bytes() const override { return weights_.weight_bytes; }

 private:
  // This pass's scratch arrays, carved from arena_ (layout_activations).
  struct Activations {
    kernels::TensorView hidden, normed, qkv, attn_out, proj_out, mlp_in, mlp_act;
    kernels::TensorView embed_rows, final_rows, final_proj;  // only where the model needs them
  };
  void layout_activations(int64_t num_tokens, int64_t num_logits_rows);
  // One plan per distinct sliding window, for this step's batch.
  void plan_attention(const kernels::ExecutionContext& ctx, const ForwardBatch& batch);
  void embed(const kernels::ExecutionContext& ctx, const ForwardBatch& batch);
  void attention_block(const kernels::ExecutionContext& ctx, const DecoderLayerWeights& layer,
                       int64_t layer_index, const ForwardBatch& batch,
                       const kernels::TensorView& rope_rows, KvCache& cache);
  // The rows of rope_cos_sin_ each token reads: its position, or for LongRoPE in a sequence
  // past original_max_position_embeddings, long_rope_row_offset_ + its position.
  kernels::TensorView rope_positions(const ForwardBatch& batch);
  void mlp_block(const kernels::ExecutionContext& ctx, const DecoderLayerWeights& layer);
  void apply_norm(const kernels::ExecutionContext& ctx, const Norm& norm,
                  const kernels::TensorView& x, const kernels::TensorView& out) const;
  // hidden += sublayer_out, through post_norm first with sandwich_norm.
  void add_residual(const kernels::ExecutionContext& ctx, const Norm& post_norm,
                    const kernels::TensorView& sublayer_out);

  bool is_gated() const {
    return activation_ == Activation::kSilu || activation_ == Activation::kGeluTanhGated;
  }

  ModelConfig config_;
  DecoderWeights weights_;
  // config_'s block choices, decoded once.
  bool is_layer_norm_ = false;
  bool is_rope_ = true;
  Activation activation_ = Activation::kSilu;
  kernels::DeviceFloats rope_cos_sin_;  // position_kind "rope" only (rope.h's table)
  int64_t rope_rot_dim_ = 0;
  bool is_longrope_ = false;
  int64_t long_rope_row_offset_ = 0;     // first row of the long-factor table
  std::vector<int32_t> rope_positions_;  // host batch metadata, as ForwardBatch's arrays
  // Per layer: which of attention_plans_ it runs (one plan per distinct sliding window).
  std::vector<int64_t> layer_plan_;
  std::vector<int64_t> plan_windows_;  // AttentionBatch::sliding_window of each plan
  std::vector<kernels::AttentionPlan> attention_plans_;

  kernels::ActivationArena arena_;
  Activations act_;
};

}  // namespace cadence
