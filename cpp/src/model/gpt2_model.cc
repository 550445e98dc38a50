// GPT-2 loader (GPT2LMHeadModel): learned absolute positions, pre-norm LayerNorm (with bias)
// blocks, multi-head attention and a GELU-tanh MLP, biases on every projection, final LayerNorm,
// LM head tied to the token embedding.
//
// Weight layout: GPT-2's Conv1D stores W as [in_features, out_features] (y = x W + b), the
// transpose of nn.Linear; c_attn is [hidden, 3 * hidden] with q | k | v along out_features, so
// after the transpose its rows are exactly the q, k, v rows the packed qkv GEMM expects.
// Names: "transformer.h.N...." as GPT2LMHeadModel saves them, or "h.N...." (GPT2Model, the
// original hub checkpoints).
#include <memory>
#include <string>

#include "model/architectures.h"
#include "model/decoder.h"
#include "model/weight_loader.h"

namespace cadence {

std::unique_ptr<Model> load_gpt2_model(const ModelConfig& config, const Checkpoint& checkpoint,
                                       const ModelLoadOptions& options) {
  require_config(config, config.norm_kind == NormKind::kLayerNorm, "norm_kind",
                 to_string(NormKind::kLayerNorm));
  require_config(config, config.activation == Activation::kGeluTanh, "activation",
                 to_string(Activation::kGeluTanh));
  require_config(config, !config.sandwich_norm, "sandwich_norm", "false");
  require_config(config,
                 config.position_kind == PositionKind::kLearned && config.position_offset == 0,
                 "position_kind", "learned (offset 0)");
  require_config(config, config.is_norm_before, "is_norm_before", "true");
  require_config(config, !config.qk_norm, "qk_norm", "false");
  require_config(config, config.num_kv_heads == config.num_heads, "num_kv_heads", "num_heads");
  require_config(config, config.num_heads * config.head_dim == config.hidden_size, "head_dim",
                 "hidden_size / num_heads");
  require_config(config, config.word_embed_proj_dim == config.hidden_size, "word_embed_proj_dim",
                 "hidden_size");
  require_config(config, config.attention_bias && config.attention_output_bias && config.mlp_bias,
                 "attention_bias, attention_output_bias and mlp_bias", "true");
  const int64_t hidden = config.hidden_size;
  const int64_t inter = config.intermediate_size;

  WeightLoader loader(checkpoint, options.weight_format, *options.allocator);
  const std::string root = loader.find_prefix({"transformer.", ""}, "wte.weight");
  DecoderWeights w;
  w.storage = loader.weight_storage();
  w.token_embedding = loader.embedding(root + "wte.weight", config.vocab_size, hidden);
  w.position_embedding = loader.table(root + "wpe.weight", config.max_position_embeddings, hidden);
  for (int64_t l = 0; l < config.num_layers; ++l) {
    const std::string p = root + "h." + std::to_string(l) + ".";
    DecoderLayerWeights layer;
    layer.attention_norm = loader.norm(p + "ln_1.weight", p + "ln_1.bias", hidden);
    layer.qkv = loader.conv1d(p + "attn.c_attn.weight", hidden, 3 * hidden, p + "attn.c_attn.bias");
    layer.out_proj =
        loader.conv1d(p + "attn.c_proj.weight", hidden, hidden, p + "attn.c_proj.bias");
    layer.mlp_norm = loader.norm(p + "ln_2.weight", p + "ln_2.bias", hidden);
    layer.up = loader.conv1d(p + "mlp.c_fc.weight", hidden, inter, p + "mlp.c_fc.bias");
    layer.down = loader.conv1d(p + "mlp.c_proj.weight", inter, hidden, p + "mlp.c_proj.bias");
    w.layers.push_back(std::move(layer));
  }
  w.final_norm = loader.norm(root + "ln_f.weight", root + "ln_f.bias", hidden);
  w.lm_head = loader.lm_head(config, hidden);
  w.weight_bytes = loader.weight_bytes();
  return std::make_unique<DecoderModel>(config, std::move(w), options);
}

}  // namespace cadence
