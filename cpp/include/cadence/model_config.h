// The architecture hyper-parameters the runtime needs, independent of file format.
// Python fills it from an HF config.json (transformers.AutoConfig); C++ programs can
// read it from GGUF metadata with load_gguf_model_config().
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cadence {

// RoPE frequency scaling (HF `rope_scaling` / `rope_parameters`).
struct RopeScaling {
  std::string type = "default";                     // "default" | "linear" | "llama3"
  double factor = 1.0;                              // linear and llama3
  double low_freq_factor = 1.0;                     // llama3 only
  double high_freq_factor = 4.0;                    // llama3 only
  int64_t original_max_position_embeddings = 8192;  // llama3 only
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
  int64_t max_position_embeddings = 2048;
  bool tie_word_embeddings = false;
  bool attention_bias = false;         // q/k/v projections carry a bias (Qwen2)
  std::vector<int32_t> eos_token_ids;  // from the checkpoint; may be empty

  // Fills derived fields and throws std::invalid_argument on inconsistent values.
  void finalize();
  static const std::vector<std::string>& supported_architectures();
};

// Reads the hyper-parameters of a GGUF file (llama-family metadata).
// Throws std::runtime_error naming the file and the missing key.
ModelConfig load_gguf_model_config(const std::string& path);

}  // namespace cadence
