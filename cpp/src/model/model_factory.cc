#include <stdexcept>

#include "model/architectures.h"
#include "model/model.h"

namespace cadence {

std::unique_ptr<Model> create_model(const ModelConfig& config, const Checkpoint& checkpoint,
                                    const ModelLoadOptions& options) {
  const std::string& arch = config.architecture;
  if (arch == "LlamaForCausalLM" || arch == "MistralForCausalLM" || arch == "Qwen2ForCausalLM" ||
      arch == "Qwen3ForCausalLM") {
    return load_llama_family_model(config, checkpoint, options);
  }
  if (arch == "GPT2LMHeadModel") return load_gpt2_model(config, checkpoint, options);
  if (arch == "OPTForCausalLM") return load_opt_model(config, checkpoint, options);
  if (arch == "Phi3ForCausalLM") return load_phi3_model(config, checkpoint, options);
  if (arch == "Gemma2ForCausalLM") return load_gemma2_model(config, checkpoint, options);
  throw std::invalid_argument("no model loader for architecture '" + arch + "'");
}

}  // namespace cadence
