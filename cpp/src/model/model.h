// The one interface the engine runs a model through, and the factory that picks the
// architecture. Every architecture is a DecoderModel (decoder.h) assembled from shared blocks
// by a small loader per architecture (llama_model.cc, gpt2_model.cc, opt_model.cc,
// phi3_model.cc, gemma2_model.cc).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "cadence/model_config.h"
#include "kernels/packed_weight.h"
#include "kv/kv_cache.h"
#include "model/checkpoint.h"
#include "model/forward_batch.h"
#include "util/thread_pool.h"

namespace cadence {

class Model {
 public:
  virtual ~Model() = default;

  // Runs the batch, writing its keys/values into `cache`, and fills `logits` with
  // batch.logits_rows.size() rows of vocab_size floats.
  virtual void forward(ThreadPool& pool, const ForwardBatch& batch, KvCache& cache,
                       std::vector<float>& logits) = 0;

  virtual const ModelConfig& config() const = 0;
  virtual int64_t weight_bytes() const = 0;
};

struct ModelLoadOptions {
  int64_t max_positions = 0;  // positions [0, max_positions) are run (RoPE / position tables)
  // How the weights are stored (weight_loader.h); compute is fp32 whatever it is.
  kernels::WeightType weight_type = kernels::WeightType::kF32;
};

// Builds the model of config.architecture (a finalized config) from the checkpoint. Throws
// std::invalid_argument for an architecture without a loader, std::runtime_error naming the
// tensor when a weight is missing or misshaped.
std::unique_ptr<Model> create_model(const ModelConfig& config, const Checkpoint& checkpoint,
                                    const ModelLoadOptions& options);

}  // namespace cadence
