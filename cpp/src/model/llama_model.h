// Llama-family decoder (Llama, Mistral without sliding window, SmolLM, Qwen2 with q/k/v
// bias): embedding -> N x [RMSNorm, GQA attention with RoPE over the paged KV cache,
// residual, RMSNorm, SwiGLU MLP, residual] -> RMSNorm -> LM head (tied or not).
// Weights are converted to fp32 and packed for the GEMM kernel at load.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "cadence/model_config.h"
#include "kernels/ops.h"
#include "kv/kv_cache.h"
#include "model/checkpoint.h"
#include "model/forward_batch.h"
#include "util/thread_pool.h"

namespace cadence {

class LlamaModel {
 public:
  // Throws std::runtime_error naming the tensor when a weight is missing or misshaped.
  LlamaModel(const ModelConfig& config, const Checkpoint& checkpoint, int64_t max_positions);

  // Runs the batch, writing its keys/values into `cache`, and fills `logits` with
  // batch.logits_rows.size() rows of vocab_size floats.
  void forward(ThreadPool& pool, const ForwardBatch& batch, KvCache& cache,
               std::vector<float>& logits);

  const ModelConfig& config() const { return config_; }
  int64_t weight_bytes() const { return weight_bytes_; }

 private:
  struct Layer {
    std::vector<float> input_norm;
    kernels::PackedWeight qkv;    // rows: q (num_heads*head_dim), k, v (num_kv_heads*head_dim)
    std::vector<float> qkv_bias;  // empty without attention_bias
    kernels::PackedWeight o_proj;
    std::vector<float> post_attention_norm;
    kernels::PackedWeight gate_up;  // rows: gate (intermediate), up (intermediate)
    kernels::PackedWeight down;
  };

  void attention_block(ThreadPool& pool, const Layer& layer, int64_t layer_index,
                       const ForwardBatch& batch, KvCache& cache);
  void mlp_block(ThreadPool& pool, const Layer& layer, int64_t num_tokens);

  ModelConfig config_;
  std::vector<float> embed_tokens_;  // vocab_size x hidden_size
  std::vector<Layer> layers_;
  std::vector<float> final_norm_;
  kernels::PackedWeight lm_head_;
  std::vector<float> rope_cos_sin_;
  int64_t max_positions_ = 0;
  int64_t weight_bytes_ = 0;

  // Activation scratch, grown on demand and reused across steps.
  std::vector<float> hidden_, normed_, qkv_, attn_out_, proj_out_, gate_up_, mlp_act_;
  std::vector<float> final_rows_;
};

}  // namespace cadence
