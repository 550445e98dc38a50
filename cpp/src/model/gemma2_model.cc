// Gemma 2 loader (Gemma2ForCausalLM): RMSNorm "sandwich" blocks (input_layernorm before
// attention and post_attention_layernorm after it; pre_feedforward_layernorm before the MLP and
// post_feedforward_layernorm after it), GQA attention with RoPE scaled by
// query_pre_attn_scalar^-1/2 and soft-capped scores, sliding-window attention on alternating
// layers, a GeGLU MLP (gelu_tanh(gate) * up), embeddings scaled by sqrt(hidden_size), a final
// RMSNorm, the tied LM head and soft-capped logits. All of those are ModelConfig fields the
// shared decoder reads (Python fills them from config.json, the GGUF reader from metadata).
//
// Gemma's RMSNorm multiplies by (1 + weight); config.norm_weight_offset (1 for HF checkpoints,
// 0 for GGUF files, whose converter already added it) is folded into the weights here.
#include <memory>
#include <string>

#include "model/architectures.h"
#include "model/decoder.h"
#include "model/weight_loader.h"

namespace cadence {

std::unique_ptr<Model> load_gemma2_model(const ModelConfig& config, const Checkpoint& checkpoint,
                                         const ModelLoadOptions& options) {
  require_rms_norm_rope_blocks(config, Activation::kGeluTanhGated, /*sandwich_norm=*/true);
  require_config(config, !config.qk_norm, "qk_norm", "false");
  require_config(config,
                 !config.attention_bias && !config.attention_output_bias && !config.mlp_bias,
                 "attention_bias, attention_output_bias and mlp_bias", "false");
  const int64_t hidden = config.hidden_size;
  const int64_t q_rows = config.num_heads * config.head_dim;
  const int64_t kv_rows = config.num_kv_heads * config.head_dim;
  const int64_t inter = config.intermediate_size;
  const auto offset = static_cast<float>(config.norm_weight_offset);

  WeightLoader loader(checkpoint, options.weight_format, *options.allocator);
  auto norm = [&](const std::string& name) { return loader.norm(name, "", hidden, offset); };
  DecoderWeights w;
  w.storage = loader.weight_storage();
  w.token_embedding = loader.embedding("model.embed_tokens.weight", config.vocab_size, hidden);
  for (int64_t l = 0; l < config.num_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    const std::string attn = p + "self_attn.";
    const std::string mlp = p + "mlp.";
    DecoderLayerWeights layer;
    layer.attention_norm = norm(p + "input_layernorm.weight");
    layer.qkv = loader.linear({{attn + "q_proj.weight", q_rows},
                               {attn + "k_proj.weight", kv_rows},
                               {attn + "v_proj.weight", kv_rows}},
                              hidden);
    layer.out_proj = loader.linear({{attn + "o_proj.weight", hidden}}, q_rows);
    layer.attention_post_norm = norm(p + "post_attention_layernorm.weight");
    layer.mlp_norm = norm(p + "pre_feedforward_layernorm.weight");
    layer.up =
        loader.linear({{mlp + "gate_proj.weight", inter}, {mlp + "up_proj.weight", inter}}, hidden);
    layer.down = loader.linear({{mlp + "down_proj.weight", hidden}}, inter);
    layer.mlp_post_norm = norm(p + "post_feedforward_layernorm.weight");
    w.layers.push_back(std::move(layer));
  }
  w.final_norm = norm("model.norm.weight");
  w.lm_head = loader.lm_head(config, hidden);
  w.weight_bytes = loader.weight_bytes();
  return std::make_unique<DecoderModel>(config, std::move(w), options);
}

}  // namespace cadence
