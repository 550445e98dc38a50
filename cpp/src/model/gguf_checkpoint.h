// A GGUF file seen as a checkpoint with HF tensor names.
//
// Each GGUF architecture (general.architecture) has its own name table: llama.cpp names the
// same HF tensor differently per architecture (e.g. `ffn_norm` is Llama's
// post_attention_layernorm but Gemma 2's pre_feedforward_layernorm), and Phi-3 keeps its fused
// qkv_proj / gate_up_proj as `attn_qkv` / `ffn_up`.
//
// llama.cpp's converter permutes the rows of q_proj/k_proj (weights and biases) of "llama"
// models only, so that its interleaved RoPE matches HF's half-split RoPE; read_float undoes
// that permutation so the runtime uses one RoPE layout for every format (as transformers
// does). The other architectures use llama.cpp's NEOX RoPE, which is HF's layout already.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cadence/gguf_tensor.h"  // read_gguf_tensor, implemented in gguf_checkpoint.cc
#include "model/checkpoint.h"
#include "model/gguf_file.h"

namespace cadence {

// The GGUF architectures cadence loads (general.architecture values): the registry's
// (model/architectures.h), in its order.
const std::vector<std::string>& gguf_supported_architectures();

// general.architecture of `gguf`. Throws std::runtime_error naming the file and listing
// gguf_supported_architectures() when it is not one of them.
std::string supported_gguf_architecture(const GgufFile& gguf);

class GgufCheckpoint : public Checkpoint {
 public:
  explicit GgufCheckpoint(const std::string& path);

  std::vector<float> read_float(const std::string& name,
                                const std::vector<int64_t>& expected_shape) const override;
  kernels::QuantizedRows read_codes(const std::string& name,
                                    const std::vector<int64_t>& expected_shape) const override;
  const GgufFile& gguf() const { return *gguf_; }

 private:
  // The file row each HF row comes from (empty: the identity) for tensor `name`.
  std::vector<int64_t> hf_row_sources(const std::string& name) const;

  std::unique_ptr<GgufFile> gguf_;
  int64_t num_heads_ = 0;
  int64_t num_kv_heads_ = 0;
  bool rope_rows_permuted_ = false;
};

// The HF name of a tensor of a GGUF file of architecture `arch` (one of
// gguf_supported_architectures()), e.g. for "llama": "blk.3.attn_q.weight" ->
// "model.layers.3.self_attn.q_proj.weight"; "" when the tensor has no HF counterpart (e.g.
// Phi-3's rope_factors_long, which the config reads instead) or the architecture is unknown.
std::string gguf_to_hf_tensor_name(const std::string& arch, const std::string& gguf_name);

// A checked view of one tensor of a GGUF file (name and source_name: its GGUF name; shape:
// outermost first). Throws std::runtime_error naming the file and the tensor when its type is
// not readable (the message gives GGML's type name and id, and the readable types), when its
// row length is not a whole number of blocks, or when its bytes are not inside the file.
TensorRef gguf_tensor_ref(const GgufFile& gguf, const GgufTensorInfo& info);

// read_gguf_tensor (cadence/gguf_tensor.h) on a file already open.
FloatTensor read_gguf_tensor(const GgufFile& gguf, const std::string& gguf_name);

}  // namespace cadence
