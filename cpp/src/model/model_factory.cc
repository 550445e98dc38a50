#include <stdexcept>

#include "model/architectures.h"
#include "model/model.h"

namespace cadence {

std::unique_ptr<Model> create_model(const ModelConfig& config, const Checkpoint& checkpoint,
                                    const ModelLoadOptions& options) {
  const Architecture* architecture = find_hf_architecture(config.architecture);
  if (architecture != nullptr) return architecture->load(config, checkpoint, options);
  throw std::invalid_argument("no model loader for architecture '" + config.architecture + "'");
}

}  // namespace cadence
