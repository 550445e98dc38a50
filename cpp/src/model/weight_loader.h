// Load-time helpers the architecture loaders share: read checkpoint tensors (checking their
// shapes), convert them to fp32, lay matrices out as nn.Linear's [out, in] and pack them for the
// GEMM kernel in the engine's weight type, and count the bytes the model keeps.
//
// Weight format (model.h WeightFormat): matrices and the token embedding are stored as its
// float type, kept in their checkpoint's quantized or float type ("native"), or quantized to
// int8 at load. With a 2-byte float type, vectors and small tables (norms, biases, learned
// positions) stay fp32 but are rounded to it, so the model computes what HF computes with
// model.to(dtype).float(). One tensor at a time is held converted, never the whole model.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/checkpoint.h"
#include "model/decoder.h"

namespace cadence {

class WeightLoader {
 public:
  // Vectors and tables go to `allocator`'s device; packed matrices are host memory, packed
  // together by weight_storage() (which DecoderWeights::storage must keep alive).
  WeightLoader(const Checkpoint& checkpoint, const WeightFormat& format,
               kernels::Allocator& allocator)
      : checkpoint_(checkpoint),
        format_(format),
        allocator_(allocator),
        weight_storage_(std::make_shared<kernels::BumpAllocator>(kernels::host_allocator())) {}

  // Where the packed matrices live: give it to DecoderWeights::storage.
  std::shared_ptr<kernels::Allocator> weight_storage() const { return weight_storage_; }

  const Checkpoint& checkpoint() const { return checkpoint_; }
  bool has(const std::string& name) const { return checkpoint_.has(name); }

  // The first of `prefixes` under which `probe` exists ("" is a valid prefix), e.g. GPT-2's
  // "transformer." (saved by GPT2LMHeadModel) or "" (saved by GPT2Model). Throws
  // std::runtime_error naming the checkpoint and the names tried when none fits.
  std::string find_prefix(std::initializer_list<const char*> prefixes,
                          const std::string& probe) const;

  // A vector of `size` floats, on the device.
  kernels::DeviceFloats vector(const std::string& name, int64_t size);
  // An unpacked [rows, cols] fp32 table (learned position embeddings), on the device.
  kernels::DeviceFloats table(const std::string& name, int64_t rows, int64_t cols);
  // The token embedding [rows, cols], packed like a Linear weight: the decoder gathers its
  // rows (PackedWeight::unpack_row) and multiplies by it as the LM head when that is tied.
  kernels::PackedWeight embedding(const std::string& name, int64_t rows, int64_t cols);

  // nn.Linear weights [rows_i, num_cols] stacked by rows (e.g. q, k, v), with their biases
  // (`bias_names` empty: no bias; else one per part, in the same order).
  Linear linear(const std::vector<std::pair<std::string, int64_t>>& parts, int64_t num_cols,
                const std::vector<std::string>& bias_names = {});
  // A Conv1D weight (GPT-2) stored [in_features, out_features], i.e. y = x W + b: transposed
  // to [out, in] at load. `bias_name` empty: no bias.
  Linear conv1d(const std::string& name, int64_t in_features, int64_t out_features,
                const std::string& bias_name);
  // Packs an [rows, cols] fp32 matrix already in memory, as `type` (float) or int8-quantized
  // when the format asks for it.
  Linear pack(const std::vector<float>& matrix, int64_t rows, int64_t cols,
              kernels::WeightType type);
  // The LM head [vocab_size, in_dim] from `lm_head.weight`; empty (the decoder then uses the
  // token embedding) when the config ties them or the checkpoint has no head.
  Linear lm_head(const ModelConfig& config, int64_t in_dim);

  // RMSNorm (`bias_name` empty) or LayerNorm weights of `size` floats, plus `weight_offset`
  // (Gemma's RMSNorm multiplies by 1 + weight).
  Norm norm(const std::string& weight_name, const std::string& bias_name, int64_t size,
            float weight_offset = 0.0f);

  int64_t weight_bytes() const { return weight_bytes_; }

 private:
  // Rounds fp32 values to the float type and back (no-op for fp32 and "native").
  void round_to_weight_type(std::vector<float>& values) const;
  // The vector `name` of `size` floats on the host, rounded to the weight type.
  std::vector<float> read_vector(const std::string& name, int64_t size);
  // The packed [sum of rows, num_cols] matrix stacked from parts, in the format's storage.
  kernels::PackedWeight pack_parts(const std::vector<std::pair<std::string, int64_t>>& parts,
                                   int64_t num_cols);
  // The float type a matrix stacked from these tensors is stored as.
  kernels::WeightType float_type_of(const std::vector<std::string>& names) const;

  const Checkpoint& checkpoint_;
  WeightFormat format_;
  kernels::Allocator& allocator_;
  std::shared_ptr<kernels::BumpAllocator> weight_storage_;
  int64_t weight_bytes_ = 0;
};

// Throws std::invalid_argument naming the field when `config` asks for a building block the
// architecture does not have (e.g. GPT-2 with norm_kind "rms_norm").
void require_config(const ModelConfig& config, bool is_ok, const char* field,
                    const std::string& expected);

// The checks the RMSNorm + RoPE pre-norm loaders (Llama family, Phi-3, Gemma 2) share:
// norm_kind "rms_norm", position_kind "rope", is_norm_before, word_embed_proj_dim ==
// hidden_size, and the architecture's `activation` and `sandwich_norm`.
void require_rms_norm_rope_blocks(const ModelConfig& config, Activation activation,
                                  bool sandwich_norm);

}  // namespace cadence
