// The one interface the engine runs a model through, and the factory that picks the
// architecture. Every architecture is a DecoderModel (decoder.h) assembled from shared blocks
// by a small loader per architecture (llama_model.cc, gpt2_model.cc, opt_model.cc,
// phi3_model.cc, gemma2_model.cc).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "cadence/model_config.h"
#include "kernels/allocator.h"
#include "kernels/context.h"
#include "kernels/packed_weight.h"
#include "kernels/tensor_view.h"
#include "kv/kv_cache.h"
#include "model/checkpoint.h"
#include "model/forward_batch.h"

namespace cadence {

class Model {
 public:
  virtual ~Model() = default;

  // Runs the batch on ctx's device, writing its keys/values into `cache`, and fills the first
  // batch.logits_rows.size() rows of `logits` (rows of vocab_size floats, owned by the caller,
  // on ctx's device) with the next-token logits of those rows.
  virtual void forward(const kernels::ExecutionContext& ctx, const ForwardBatch& batch,
                       KvCache& cache, const kernels::TensorView& logits) = 0;

  virtual const ModelConfig& config() const = 0;
  virtual int64_t weight_bytes() const = 0;
};

// How the loader stores weight matrices and the token embedding (EngineConfig::weight_dtype
// and quantization); compute is fp32 whatever it is.
struct WeightFormat {
  // Matrices converted to floats are stored as this (kF32, kBF16 or kF16); vectors are rounded
  // to it (weight_loader.h).
  kernels::WeightType float_type = kernels::WeightType::kF32;
  // "native" (GGUF): a quantized tensor keeps its codes (repacked for the int8 GEMM), a float
  // matrix its stored type (F32, F16, BF16); float_type is not used.
  bool keep_stored_types = false;
  // quantization="int8": float matrices whose row length is a multiple of 32 are quantized at
  // load to int8 per group of 32 (kernels/quantized_rows.h); others stay float_type.
  bool quantize_int8 = false;
};

struct ModelLoadOptions {
  int64_t max_positions = 0;  // positions [0, max_positions) are run (RoPE / position tables)
  WeightFormat weight_format;
  // The device memory the model's vectors, tables and activation arena come from.
  kernels::Allocator* allocator = &kernels::host_allocator();
};

// Builds the model of config.architecture (a finalized config) from the checkpoint. Throws
// std::invalid_argument for an architecture without a loader, std::runtime_error naming the
// tensor when a weight is missing or misshaped.
std::unique_ptr<Model> create_model(const ModelConfig& config, const Checkpoint& checkpoint,
                                    const ModelLoadOptions& options);

}  // namespace cadence
