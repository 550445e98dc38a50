#include "model/architectures.h"

namespace cadence {

const std::vector<Architecture>& architecture_table() {
  // In the order error messages and the docs list them. A GGUF name maps to one HF name:
  // llama.cpp converts Mistral checkpoints to "llama", read back as LlamaForCausalLM.
  static const std::vector<Architecture> kTable = {
      {"LlamaForCausalLM", "llama", "llama", load_llama_family_model},
      {"MistralForCausalLM", nullptr, "llama", load_llama_family_model},
      {"Qwen2ForCausalLM", "qwen2", "llama", load_llama_family_model},
      {"Qwen3ForCausalLM", "qwen3", "llama", load_llama_family_model},
      {"GPT2LMHeadModel", nullptr, "gpt2", load_gpt2_model},
      {"OPTForCausalLM", nullptr, "opt", load_opt_model},
      {"Phi3ForCausalLM", "phi3", "phi3", load_phi3_model},
      {"Gemma2ForCausalLM", "gemma2", "gemma2", load_gemma2_model},
  };
  return kTable;
}

const Architecture* find_hf_architecture(const std::string& hf_name) {
  for (const Architecture& row : architecture_table()) {
    if (hf_name == row.hf_name) return &row;
  }
  return nullptr;
}

const Architecture* find_gguf_architecture(const std::string& gguf_name) {
  for (const Architecture& row : architecture_table()) {
    if (row.gguf_name != nullptr && gguf_name == row.gguf_name) return &row;
  }
  return nullptr;
}

const std::vector<ArchitectureInfo>& architecture_registry() {
  static const std::vector<ArchitectureInfo> kInfo = [] {
    std::vector<ArchitectureInfo> info;
    for (const Architecture& row : architecture_table()) {
      info.push_back({row.hf_name, row.gguf_name != nullptr ? row.gguf_name : "", row.family});
    }
    return info;
  }();
  return kInfo;
}

const std::vector<std::string>& ModelConfig::supported_architectures() {
  static const std::vector<std::string> kNames = [] {
    std::vector<std::string> names;
    for (const Architecture& row : architecture_table()) names.emplace_back(row.hf_name);
    return names;
  }();
  return kNames;
}

}  // namespace cadence
