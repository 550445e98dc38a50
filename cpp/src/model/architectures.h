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
                                               const Checkpoint& checkpoint, int64_t max_positions);
// GPT-2: gpt2_model.cc.
std::unique_ptr<Model> load_gpt2_model(const ModelConfig& config, const Checkpoint& checkpoint,
                                       int64_t max_positions);
// OPT: opt_model.cc.
std::unique_ptr<Model> load_opt_model(const ModelConfig& config, const Checkpoint& checkpoint,
                                      int64_t max_positions);
// Phi-3 (fused qkv_proj / gate_up_proj, partial RoPE, LongRoPE): phi3_model.cc.
std::unique_ptr<Model> load_phi3_model(const ModelConfig& config, const Checkpoint& checkpoint,
                                       int64_t max_positions);

}  // namespace cadence
