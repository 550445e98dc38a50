// One loader per architecture: maps the checkpoint's tensor names and layouts onto the shared
// DecoderWeights and checks the config's building blocks are the ones that architecture has.
// Same contract as create_model (model.h).
#pragma once

#include <cstdint>
#include <memory>

#include "model/model.h"

namespace cadence {

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
