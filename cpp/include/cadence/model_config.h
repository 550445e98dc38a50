// The architecture hyper-parameters the runtime needs, independent of file format.
// Python fills it from an HF config.json (transformers.AutoConfig); C++ programs can
// read it from GGUF metadata with load_gguf_model_config().
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cadence/config_enums.h"

namespace cadence {

// RoPE frequency scaling (HF `rope_scaling` / `rope_parameters`).
struct RopeScaling {
  RopeScalingType type = RopeScalingType::kDefault;
  double factor = 1.0;                              // linear, llama3 and longrope
  double low_freq_factor = 1.0;                     // llama3 only
  double high_freq_factor = 4.0;                    // llama3 only
  int64_t original_max_position_embeddings = 8192;  // llama3 and longrope
  // longrope (Phi-3's LongRoPE, HF's former "su"): per-frequency divisors of inv_freq, one per
  // rotary_dim / 2 frequencies. A sequence uses long_factor once it is longer than
  // original_max_position_embeddings (its prompt, or its tokens so far), short_factor before.
  std::vector<double> short_factor;
  std::vector<double> long_factor;
  // longrope: multiplies cos and sin. 0 = HF's default from `factor`:
  // 1 if factor <= 1, else sqrt(1 + ln(factor) / ln(original_max_position_embeddings)).
  double attention_factor = 0.0;
};

struct ModelConfig {
  // HF architecture name, e.g. "LlamaForCausalLM", "Qwen2ForCausalLM".
  std::string architecture;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;  // == num_heads without GQA
  int64_t head_dim = 0;      // 0 = hidden_size / num_heads
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  // Leading dims of each head that RoPE rotates (HF partial_rotary_factor * head_dim); the rest
  // pass through. 0 = head_dim.
  int64_t rotary_dim = 0;
  int64_t max_position_embeddings = 2048;
  // Sliding-window attention (Mistral, Qwen2 use_sliding_window, Phi-3): a token attends to
  // the sliding_window newest positions, its own included. 0 = full causal attention.
  int64_t sliding_window = 0;
  // Layers that attend fully despite sliding_window (Qwen2 below max_window_layers).
  std::vector<int32_t> full_attention_layers;
  bool tie_word_embeddings = false;
  bool attention_bias = false;         // q/k/v projections carry a bias (Qwen2)
  bool attention_output_bias = false;  // the attention output projection carries a bias
  bool mlp_bias = false;               // the MLP projections carry biases

  // Building blocks; the defaults are the Llama family's. Python sets them from config.json.
  NormKind norm_kind = NormKind::kRmsNorm;
  double layer_norm_eps = 1e-5;  // LayerNorm's eps (rms_norm_eps is RMSNorm's)
  // Pre-norm blocks (x += f(norm(x)), then a final norm); false: post-norm blocks
  // (x = norm(x + f(x)), no final norm), as OPT with do_layer_norm_before=False.
  bool is_norm_before = true;
  bool qk_norm = false;  // per-head RMSNorm of q and k (weights [head_dim]) before RoPE (Qwen3)
  Activation activation = Activation::kSilu;  // see config_enums.h
  // kRope: rotary q/k (rope_theta, rope_scaling); kLearned: a position table added to the
  // token embeddings, whose row p + position_offset holds position p (OPT: offset 2).
  PositionKind position_kind = PositionKind::kRope;
  int64_t position_offset = 0;
  // Width of the token embeddings and the LM head when they differ from hidden_size (OPT-350m:
  // project_in / project_out map between the two). 0 = hidden_size.
  int64_t word_embed_proj_dim = 0;
  // Gemma 2's blocks (the defaults leave every other architecture unchanged):
  // Token embeddings are multiplied by this (Gemma: sqrt(hidden_size)).
  double embedding_scale = 1.0;
  // Multiplies q·k in attention; 0 = 1 / sqrt(head_dim) (Gemma 2: query_pre_attn_scalar^-1/2).
  double attention_scale = 0.0;
  // > 0: attention scores s (after the scale) become cap * tanh(s / cap) before the softmax.
  double attn_logit_softcapping = 0.0;
  // > 0: the final logits z become cap * tanh(z / cap).
  double final_logit_softcapping = 0.0;
  // Pre-norm blocks that also normalize each sub-layer's output before the residual add:
  // x += norm_post(attention(norm(x))); x += norm_post(mlp(norm(x))) (Gemma 2's
  // post_attention_layernorm / post_feedforward_layernorm). Needs is_norm_before.
  bool sandwich_norm = false;
  // RMSNorm multiplies by (norm_weight_offset + weight): Gemma checkpoints store weight - 1
  // (offset 1); llama.cpp's Gemma converter folds the 1 into the GGUF weights (offset 0).
  // The loaders add it at load time, so the kernels always see the final weights.
  double norm_weight_offset = 0.0;
  std::vector<int32_t> eos_token_ids;  // from the checkpoint; may be empty

  // Fills derived fields and throws std::invalid_argument on inconsistent values.
  void finalize();
  // The HF names of architecture_registry(), in its order.
  static const std::vector<std::string>& supported_architectures();
};

// One architecture cadence runs, as the registry (src/model/architectures.cc) lists it: the
// only list of architectures; every other list (Python's, the GGUF reader's, error messages)
// is read from it.
struct ArchitectureInfo {
  std::string hf_name;    // config.json's architectures[0], e.g. "Qwen2ForCausalLM"
  std::string gguf_name;  // the GGUF general.architecture read as it; "" = no GGUF reader
  std::string family;     // the loader it shares with others, e.g. "llama" for Qwen2
};
const std::vector<ArchitectureInfo>& architecture_registry();

// Reads the hyper-parameters of a GGUF file of one of the registry's GGUF architectures
// (llama also covers Mistral), as llama.cpp reads them (src/model/gguf_model_config.cc).
// Throws std::runtime_error naming the file and the missing key, or the unsupported
// architecture and the supported ones.
ModelConfig load_gguf_model_config(const std::string& path);

}  // namespace cadence
