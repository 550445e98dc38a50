// Llama-family loader (Llama, Mistral and Qwen2 with or without sliding window, SmolLM, Qwen3):
// RMSNorm pre-norm blocks, GQA attention with RoPE (optional q/k/v bias: Qwen2; optional
// per-head q/k RMSNorm: Qwen3), SwiGLU MLP, final RMSNorm, LM head tied or not.
// q/k/v are packed as one GEMM matrix and gate/up as another.
#include <memory>
#include <string>

#include "model/architectures.h"
#include "model/decoder.h"
#include "model/weight_loader.h"

namespace cadence {

std::unique_ptr<Model> load_llama_family_model(const ModelConfig& config,
                                               const Checkpoint& checkpoint,
                                               const ModelLoadOptions& options) {
  require_rms_norm_rope_blocks(config, Activation::kSilu, /*sandwich_norm=*/false);
  require_config(config, config.qk_norm == (config.architecture == "Qwen3ForCausalLM"), "qk_norm",
                 config.qk_norm ? "false" : "true");
  const int64_t hidden = config.hidden_size;
  const int64_t head_dim = config.head_dim;
  const int64_t q_rows = config.num_heads * head_dim;
  const int64_t kv_rows = config.num_kv_heads * head_dim;
  const int64_t inter = config.intermediate_size;

  WeightLoader loader(checkpoint, options.weight_format, *options.allocator);
  DecoderWeights w;
  w.storage = loader.weight_storage();
  w.token_embedding = loader.embedding("model.embed_tokens.weight", config.vocab_size, hidden);
  for (int64_t l = 0; l < config.num_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    const std::string attn = p + "self_attn.";
    DecoderLayerWeights layer;
    layer.attention_norm = loader.norm(p + "input_layernorm.weight", "", hidden);
    std::vector<std::string> qkv_bias;
    if (config.attention_bias) {
      qkv_bias = {attn + "q_proj.bias", attn + "k_proj.bias", attn + "v_proj.bias"};
    }
    layer.qkv = loader.linear({{attn + "q_proj.weight", q_rows},
                               {attn + "k_proj.weight", kv_rows},
                               {attn + "v_proj.weight", kv_rows}},
                              hidden, qkv_bias);
    if (config.qk_norm) {
      layer.q_norm = loader.vector(attn + "q_norm.weight", head_dim);
      layer.k_norm = loader.vector(attn + "k_norm.weight", head_dim);
    }
    layer.out_proj =
        loader.linear({{attn + "o_proj.weight", hidden}}, q_rows,
                      config.attention_output_bias ? std::vector<std::string>{attn + "o_proj.bias"}
                                                   : std::vector<std::string>{});
    layer.mlp_norm = loader.norm(p + "post_attention_layernorm.weight", "", hidden);
    const std::string mlp = p + "mlp.";
    layer.up = loader.linear(
        {{mlp + "gate_proj.weight", inter}, {mlp + "up_proj.weight", inter}}, hidden,
        config.mlp_bias ? std::vector<std::string>{mlp + "gate_proj.bias", mlp + "up_proj.bias"}
                        : std::vector<std::string>{});
    layer.down = loader.linear({{mlp + "down_proj.weight", hidden}}, inter,
                               config.mlp_bias ? std::vector<std::string>{mlp + "down_proj.bias"}
                                               : std::vector<std::string>{});
    w.layers.push_back(std::move(layer));
  }
  w.final_norm = loader.norm("model.norm.weight", "", hidden);
  w.lm_head = loader.lm_head(config, hidden);
  w.weight_bytes = loader.weight_bytes();
  return std::make_unique<DecoderModel>(config, std::move(w), options);
}

}  // namespace cadence
