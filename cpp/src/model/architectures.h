// The architecture registry and one loader per architecture family: a loader maps the
// checkpoint's tensor names and layouts onto the shared DecoderWeights and checks the
// config's building blocks are the ones that architecture has. Same contract as
// create_model (model.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/model.h"

namespace cadence {

using ModelLoader = std::unique_ptr<Model> (*)(const ModelConfig&, const Checkpoint&,
                                               const ModelLoadOptions&);

// One row of the registry (architectures.cc): the one table of supported architectures.
struct Architecture {
  const char* hf_name;    // config.json's architectures[0]
  const char* gguf_name;  // GGUF general.architecture read as this one; nullptr = none
  const char* family;     // shared loader / config reader, e.g. "llama"
  ModelLoader load;
};

const std::vector<Architecture>& architecture_table();
// The row of an HF architecture name / a GGUF general.architecture; nullptr when unsupported.
const Architecture* find_hf_architecture(const std::string& hf_name);
const Architecture* find_gguf_architecture(const std::string& gguf_name);

// Llama, Mistral, Qwen2 (q/k/v bias), Qwen3 (q/k RMSNorm): llama_model.cc.
std::unique_ptr<Model> load_llama_family_model(const ModelConfig& config,
                                               const Checkpoint& checkpoint,
                                               const ModelLoadOptions& options);
// GPT-2: gpt2_model.cc.
std::unique_ptr<Model> load_gpt2_model(const ModelConfig& config, const Checkpoint& checkpoint,
                                       const ModelLoadOptions& options);
// OPT: opt_model.cc.
std::unique_ptr<Model> load_opt_model(const ModelConfig& config, const Checkpoint& checkpoint,
                                      const ModelLoadOptions& options);
// Gemma 2 (sandwich norms, GeGLU, soft-capping, alternating sliding window): gemma2_model.cc.
std::unique_ptr<Model> load_gemma2_model(const ModelConfig& config, const Checkpoint& checkpoint,
                                         const ModelLoadOptions& options);
// Phi-3 (fused qkv_proj / gate_up_proj, partial RoPE, LongRoPE): phi3_model.cc.
std::unique_ptr<Model> load_phi3_model(const ModelConfig& config, const Checkpoint& checkpoint,
                                       const ModelLoadOptions& options);

}  // namespace cadence
