// Phi-3 loader (Phi3ForCausalLM): the Llama block structure (RMSNorm pre-norm, GQA attention
// with RoPE, SwiGLU MLP, final RMSNorm) with fused projections and no biases.
//
// Weight layout: self_attn.qkv_proj is [q (num_heads * head_dim) | k | v (num_kv_heads *
// head_dim each), hidden] and mlp.gate_up_proj is [gate (intermediate) | up (intermediate),
// hidden] (HF chunks it in two: up * act(gate)), which are exactly the row orders of the
// decoder's packed qkv and gate_up GEMMs, so each loads as one matrix. RoPE may rotate only
// the first rotary_dim dims (partial_rotary_factor) and may use LongRoPE scaling (rope.h);
// sliding_window, when configured, is honoured by the attention of every layer.
#include <memory>
#include <string>

#include "model/architectures.h"
#include "model/decoder.h"
#include "model/weight_loader.h"

namespace cadence {

std::unique_ptr<Model> load_phi3_model(const ModelConfig& config, const Checkpoint& checkpoint,
                                       const ModelLoadOptions& options) {
  require_rms_norm_rope_blocks(config, Activation::kSilu, /*sandwich_norm=*/false);
  require_config(config, !config.qk_norm, "qk_norm", "false");
  require_config(config,
                 !config.attention_bias && !config.attention_output_bias && !config.mlp_bias,
                 "attention_bias, attention_output_bias and mlp_bias", "false");
  const int64_t hidden = config.hidden_size;
  const int64_t qkv_rows = (config.num_heads + 2 * config.num_kv_heads) * config.head_dim;
  const int64_t inter = config.intermediate_size;

  WeightLoader loader(checkpoint, options.weight_format, *options.allocator);
  DecoderWeights w;
  w.storage = loader.weight_storage();
  w.token_embedding = loader.embedding("model.embed_tokens.weight", config.vocab_size, hidden);
  for (int64_t l = 0; l < config.num_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    DecoderLayerWeights layer;
    layer.attention_norm = loader.norm(p + "input_layernorm.weight", "", hidden);
    layer.qkv = loader.linear({{p + "self_attn.qkv_proj.weight", qkv_rows}}, hidden);
    layer.out_proj = loader.linear({{p + "self_attn.o_proj.weight", hidden}},
                                   config.num_heads * config.head_dim);
    layer.mlp_norm = loader.norm(p + "post_attention_layernorm.weight", "", hidden);
    layer.up = loader.linear({{p + "mlp.gate_up_proj.weight", 2 * inter}}, hidden);
    layer.down = loader.linear({{p + "mlp.down_proj.weight", hidden}}, inter);
    w.layers.push_back(std::move(layer));
  }
  w.final_norm = loader.norm("model.norm.weight", "", hidden);
  w.lm_head = loader.lm_head(config, hidden);
  w.weight_bytes = loader.weight_bytes();
  return std::make_unique<DecoderModel>(config, std::move(w), options);
}

}  // namespace cadence
