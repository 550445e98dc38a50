// OPT loader (OPTForCausalLM): learned absolute positions with OPT's offset of 2 (the position
// table has max_position_embeddings + 2 rows and position p reads row p + 2, a leftover of
// fairseq's padding rows), LayerNorm (with bias) blocks, multi-head attention, ReLU MLP
// (fc1 / fc2), biases on every projection, LM head tied to the token embedding.
//
// Variants:
// - do_layer_norm_before=True (125m, 1.3b, ...): pre-norm blocks and a final LayerNorm.
// - do_layer_norm_before=False (350m): post-norm blocks, no final LayerNorm.
// - word_embed_proj_dim != hidden_size (350m): token embeddings and the LM head are
//   word_embed_proj_dim wide; project_in [hidden, proj] and project_out [proj, hidden]
//   (no bias) map to and from the hidden size; positions are added after project_in.
// Names: "model.decoder...." as OPTForCausalLM saves them, or "decoder...." (OPTModel).
#include <memory>
#include <string>

#include "model/architectures.h"
#include "model/decoder.h"
#include "model/weight_loader.h"

namespace cadence {

constexpr int64_t kOptPositionOffset = 2;

std::unique_ptr<Model> load_opt_model(const ModelConfig& config, const Checkpoint& checkpoint,
                                      const ModelLoadOptions& options) {
  require_config(config, config.norm_kind == NormKind::kLayerNorm, "norm_kind",
                 to_string(NormKind::kLayerNorm));
  require_config(config, config.activation == Activation::kRelu, "activation",
                 to_string(Activation::kRelu));
  require_config(config, !config.sandwich_norm, "sandwich_norm", "false");
  require_config(config,
                 config.position_kind == PositionKind::kLearned &&
                     config.position_offset == kOptPositionOffset,
                 "position_kind", "learned (offset 2)");
  require_config(config, !config.qk_norm, "qk_norm", "false");
  require_config(config, config.num_kv_heads == config.num_heads, "num_kv_heads", "num_heads");
  require_config(config, config.num_heads * config.head_dim == config.hidden_size, "head_dim",
                 "hidden_size / num_heads");
  require_config(config, config.attention_bias && config.attention_output_bias && config.mlp_bias,
                 "attention_bias, attention_output_bias and mlp_bias", "true");
  const int64_t hidden = config.hidden_size;
  const int64_t inter = config.intermediate_size;
  const int64_t embed_dim = config.word_embed_proj_dim;

  WeightLoader loader(checkpoint, options.weight_format, *options.allocator);
  const std::string root =
      loader.find_prefix({"model.decoder.", "decoder."}, "embed_tokens.weight");
  DecoderWeights w;
  w.storage = loader.weight_storage();
  w.token_embedding = loader.embedding(root + "embed_tokens.weight", config.vocab_size, embed_dim);
  w.position_embedding = loader.table(root + "embed_positions.weight",
                                      config.max_position_embeddings + kOptPositionOffset, hidden);
  if (embed_dim != hidden) {
    w.project_in = loader.linear({{root + "project_in.weight", hidden}}, embed_dim);
    w.project_out = loader.linear({{root + "project_out.weight", embed_dim}}, hidden);
  }
  for (int64_t l = 0; l < config.num_layers; ++l) {
    const std::string p = root + "layers." + std::to_string(l) + ".";
    const std::string attn = p + "self_attn.";
    DecoderLayerWeights layer;
    layer.attention_norm =
        loader.norm(p + "self_attn_layer_norm.weight", p + "self_attn_layer_norm.bias", hidden);
    layer.qkv =
        loader.linear({{attn + "q_proj.weight", hidden},
                       {attn + "k_proj.weight", hidden},
                       {attn + "v_proj.weight", hidden}},
                      hidden, {attn + "q_proj.bias", attn + "k_proj.bias", attn + "v_proj.bias"});
    layer.out_proj =
        loader.linear({{attn + "out_proj.weight", hidden}}, hidden, {attn + "out_proj.bias"});
    layer.mlp_norm =
        loader.norm(p + "final_layer_norm.weight", p + "final_layer_norm.bias", hidden);
    layer.up = loader.linear({{p + "fc1.weight", inter}}, hidden, {p + "fc1.bias"});
    layer.down = loader.linear({{p + "fc2.weight", hidden}}, inter, {p + "fc2.bias"});
    w.layers.push_back(std::move(layer));
  }
  if (config.is_norm_before) {
    w.final_norm =
        loader.norm(root + "final_layer_norm.weight", root + "final_layer_norm.bias", hidden);
  }
  w.lm_head = loader.lm_head(config, embed_dim);
  w.weight_bytes = loader.weight_bytes();
  return std::make_unique<DecoderModel>(config, std::move(w), options);
}

}  // namespace cadence
