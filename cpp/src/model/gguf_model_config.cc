// load_gguf_model_config (cadence/model_config.h): GGUF metadata -> ModelConfig.
//
// Keys are read as llama.cpp reads them (llama-model.cpp, load_hparams), with llama.cpp's
// defaults for optional keys, so a file means the same here as there (one exception: Phi-3's
// sliding window, below). "<arch>." prefixes the
// architecture keys (e.g. "qwen3.embedding_length"). Per architecture (general.architecture):
//
//   llama   LlamaForCausalLM. llama.cpp converts Mistral checkpoints to "llama" as well, and
//           neither its converter nor its runtime knows Mistral's sliding window, so such
//           files attend fully (as in llama.cpp); a file that does carry
//           llama.attention.sliding_window gets that window on every layer.
//   qwen2   Qwen2ForCausalLM (q/k/v biases). As in llama.cpp, no sliding window is read
//           (released Qwen2 models do not use theirs).
//   qwen3   Qwen3ForCausalLM: per-head q/k RMSNorm (attn_q_norm / attn_k_norm); head_dim from
//           attention.key_length.
//   phi3    Phi3ForCausalLM: the first rope.dimension_count dims of each head rotate; LongRoPE
//           when the file has the rope_factors_long / rope_factors_short tensors, with
//           rope.scaling.original_context_length and (if present) rope.scaling.attn_factor;
//           attention.sliding_window on every layer (0: none, as Phi-4 files say). Here cadence
//           departs from llama.cpp, which currently ignores Phi's window (its PR #13676), and
//           follows transformers, whose Phi3 attention applies it, so a GGUF and its HF
//           checkpoint agree.
//   gemma2  Gemma2ForCausalLM: see fill_gemma2.
//
// Biases are taken from the tensors present in layer 0 (attn_q.bias, attn_output.bias,
// ffn_up.bias); the LM head is tied when the file has no output.weight. Missing required keys
// and unsupported values throw std::runtime_error naming the file and the key.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "cadence/model_config.h"
#include "model/architectures.h"
#include "model/gguf_checkpoint.h"
#include "model/gguf_file.h"

namespace cadence {

namespace {

// The "<arch>.*" keys of one file. Typed lookups throw naming the key and the file (GgufFile).
class ArchKeys {
 public:
  ArchKeys(const GgufFile& gguf, const std::string& arch) : gguf_(gguf), prefix_(arch + ".") {}

  std::string key(const std::string& name) const { return prefix_ + name; }
  bool has(const std::string& name) const { return gguf_.find(key(name)) != nullptr; }
  int64_t get_int(const std::string& name) const { return gguf_.get_int(key(name)); }
  int64_t get_int(const std::string& name, int64_t fallback) const {
    return has(name) ? get_int(name) : fallback;
  }
  double get_float(const std::string& name) const { return gguf_.get_float(key(name)); }
  double get_float(const std::string& name, double fallback) const {
    return has(name) ? get_float(name) : fallback;
  }

 private:
  const GgufFile& gguf_;
  std::string prefix_;
};

bool has_tensor(const GgufFile& gguf, const std::string& name) {
  for (const GgufTensorInfo& info : gguf.tensor_infos()) {
    if (info.name == name) return true;
  }
  return false;
}

[[noreturn]] void fail(const GgufFile& gguf, const std::string& message) {
  throw std::runtime_error(gguf.path() + ": " + message);
}

// The hyper-parameters every architecture has, and its building blocks' presence.
void fill_common(const GgufFile& gguf, const ArchKeys& keys, ModelConfig& config) {
  config.hidden_size = keys.get_int("embedding_length");
  config.intermediate_size = keys.get_int("feed_forward_length");
  config.num_layers = keys.get_int("block_count");
  config.num_heads = keys.get_int("attention.head_count");
  config.num_kv_heads = keys.get_int("attention.head_count_kv", config.num_heads);
  config.rms_norm_eps = keys.get_float("attention.layer_norm_rms_epsilon");
  config.rope_theta = keys.get_float("rope.freq_base", 10000.0);
  config.max_position_embeddings = keys.get_int("context_length");
  if (keys.has("attention.key_length")) config.head_dim = keys.get_int("attention.key_length");
  if (keys.has("attention.value_length") &&
      keys.get_int("attention.value_length") != config.head_dim) {
    fail(gguf, keys.key("attention.value_length") + " (" +
                   std::to_string(keys.get_int("attention.value_length")) +
                   ") differs from attention.key_length (" + std::to_string(config.head_dim) +
                   "); cadence needs equal key and value head sizes");
  }
  if (keys.has("rope.dimension_count")) config.rotary_dim = keys.get_int("rope.dimension_count");
  if (const GgufValue* type = gguf.find(keys.key("rope.scaling.type"))) {
    if (type->string_value == "linear") {
      config.rope_scaling.type = RopeScalingType::kLinear;
      config.rope_scaling.factor = keys.get_float("rope.scaling.factor");
    } else if (type->string_value != "none") {
      fail(gguf, "rope scaling '" + type->string_value + "' (" + keys.key("rope.scaling.type") +
                     ") is not supported (supported: none, linear)");
    }
  }
  if (has_tensor(gguf, "rope_freqs.weight")) {
    fail(gguf,
         "per-dimension rope_freqs (Llama-3.1 scaling in GGUF) is not supported yet; load the "
         "HF checkpoint instead");
  }
  if (const GgufValue* tokens = gguf.find("tokenizer.ggml.tokens")) {
    config.vocab_size = tokens->array_length;
  }
  config.vocab_size = keys.get_int("vocab_size", config.vocab_size);
  config.tie_word_embeddings = !has_tensor(gguf, "output.weight");
  config.attention_bias = has_tensor(gguf, "blk.0.attn_q.bias");
  config.attention_output_bias = has_tensor(gguf, "blk.0.attn_output.bias");
  config.mlp_bias = has_tensor(gguf, "blk.0.ffn_up.bias");
  // llama.cpp ends generation at any end-of-generation token: EOS, and end-of-turn (e.g.
  // <|eot_id|>) where the file names one.
  for (const char* key : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"}) {
    if (gguf.find(key) == nullptr) continue;
    const auto id = static_cast<int32_t>(gguf.get_int(key));
    bool seen = false;
    for (int32_t known : config.eos_token_ids) seen |= known == id;
    if (!seen) config.eos_token_ids.push_back(id);
  }
}

// Every layer attends to the `attention.sliding_window` newest positions when the key is > 0.
void fill_sliding_window(const ArchKeys& keys, ModelConfig& config) {
  config.sliding_window = std::max<int64_t>(0, keys.get_int("attention.sliding_window", 0));
}

// llama.cpp rotates whole heads of "llama" models (and refuses files that say otherwise); the
// q/k row un-permutation (GgufCheckpoint) relies on it too.
void check_llama_rotary_dim(const GgufFile& gguf, const ArchKeys& keys, const ModelConfig& config) {
  const int64_t head_dim = config.head_dim != 0
                               ? config.head_dim
                               : config.hidden_size / std::max<int64_t>(1, config.num_heads);
  if (config.rotary_dim != 0 && config.rotary_dim != head_dim) {
    fail(gguf, keys.key("rope.dimension_count") + " is " + std::to_string(config.rotary_dim) +
                   ", but llama models rotate the whole head (" + std::to_string(head_dim) + ")");
  }
}

// Phi-3 LongRoPE: llama.cpp's converter stores HF's long_factor / short_factor as the
// rope_factors_long / rope_factors_short tensors and HF's original_max_position_embeddings as
// rope.scaling.original_context_length. `factor` is context_length / original (HF's default);
// attention_factor is the file's rope.scaling.attn_factor, else derived from `factor` (rope.h).
void fill_longrope(const GgufFile& gguf, const ArchKeys& keys, ModelConfig& config) {
  const bool has_long = has_tensor(gguf, "rope_factors_long.weight");
  const bool has_short = has_tensor(gguf, "rope_factors_short.weight");
  if (!has_long && !has_short) return;
  if (has_long != has_short) {
    fail(gguf, std::string("LongRoPE needs both rope_factors_long.weight and "
                           "rope_factors_short.weight; the file has only ") +
                   (has_long ? "rope_factors_long.weight" : "rope_factors_short.weight"));
  }
  RopeScaling& scaling = config.rope_scaling;
  if (scaling.type != RopeScalingType::kDefault) {
    fail(gguf, "rope_factors_long/short and " + keys.key("rope.scaling.type") + " '" +
                   to_string(scaling.type) + "' cannot both apply");
  }
  scaling.type = RopeScalingType::kLongrope;
  const auto read_factors = [&gguf](const char* tensor) {
    const FloatTensor factors = read_gguf_tensor(gguf, tensor);
    return std::vector<double>(factors.values.begin(), factors.values.end());
  };
  scaling.long_factor = read_factors("rope_factors_long.weight");
  scaling.short_factor = read_factors("rope_factors_short.weight");
  scaling.original_max_position_embeddings = keys.get_int("rope.scaling.original_context_length");
  if (scaling.original_max_position_embeddings <= 0) {
    fail(gguf, keys.key("rope.scaling.original_context_length") + " must be > 0");
  }
  scaling.factor = static_cast<double>(config.max_position_embeddings) /
                   static_cast<double>(scaling.original_max_position_embeddings);
  scaling.attention_factor = keys.get_float("rope.scaling.attn_factor", 0.0);
}

// Gemma 2, as llama.cpp runs it:
// - norms: the converter stored weight + 1, so norm_weight_offset is 0 (HF checkpoints: 1);
// - GeGLU MLP, sandwich norms, embeddings scaled by sqrt(hidden_size);
// - attn_logit_softcapping / final_logit_softcapping (llama.cpp's defaults 50 / 30 when
//   absent);
// - attention.sliding_window (default 4096) on the even layers, full attention on the odd
//   ones (HF's layer_types; llama.cpp's swa pattern 2);
// - attention scale: GGUF has no query_pre_attn_scalar. llama.cpp picks it by model size:
//   the 27B model (46 layers) uses 1/sqrt(hidden_size / num_heads) (its query_pre_attn_scalar
//   144), every other size 1/sqrt(head_dim) (2B and 9B: query_pre_attn_scalar == head_dim).
void fill_gemma2(const ArchKeys& keys, ModelConfig& config) {
  config.activation = Activation::kGeluTanhGated;
  config.sandwich_norm = true;
  config.norm_weight_offset = 0.0;
  config.embedding_scale = std::sqrt(static_cast<double>(config.hidden_size));
  config.attn_logit_softcapping = keys.get_float("attn_logit_softcapping", 50.0);
  config.final_logit_softcapping = keys.get_float("final_logit_softcapping", 30.0);
  config.sliding_window = std::max<int64_t>(0, keys.get_int("attention.sliding_window", 4096));
  if (config.sliding_window > 0) {
    for (int64_t layer = 1; layer < config.num_layers; layer += 2) {
      config.full_attention_layers.push_back(static_cast<int32_t>(layer));
    }
  }
  constexpr int64_t kGemma2_27bLayers = 46;
  const int64_t heads = std::max<int64_t>(1, config.num_heads);
  const int64_t head_dim = config.head_dim != 0 ? config.head_dim : config.hidden_size / heads;
  const int64_t scale_dim =
      config.num_layers == kGemma2_27bLayers ? config.hidden_size / heads : head_dim;
  if (scale_dim > 0) config.attention_scale = 1.0 / std::sqrt(static_cast<double>(scale_dim));
}

}  // namespace

ModelConfig load_gguf_model_config(const std::string& path) {
  const GgufFile gguf(path);
  const std::string arch = supported_gguf_architecture(gguf);
  const ArchKeys keys(gguf, arch);
  ModelConfig config;
  fill_common(gguf, keys, config);
  config.architecture = find_gguf_architecture(arch)->hf_name;  // supported: checked above
  // The reading specific to each GGUF architecture (the common keys are read above).
  if (arch == "llama") {
    check_llama_rotary_dim(gguf, keys, config);
    fill_sliding_window(keys, config);
  } else if (arch == "qwen3") {
    config.qk_norm = true;
  } else if (arch == "phi3") {
    fill_sliding_window(keys, config);
    fill_longrope(gguf, keys, config);
  } else if (arch == "gemma2") {
    fill_gemma2(keys, config);
  }
  config.finalize();
  return config;
}

}  // namespace cadence
