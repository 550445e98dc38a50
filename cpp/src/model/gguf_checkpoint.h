// A GGUF file seen as a checkpoint with HF tensor names.
//
// llama.cpp's converter permutes the rows of q_proj/k_proj of "llama" models so that its
// interleaved RoPE matches HF's half-split RoPE; read_float undoes that permutation so
// the runtime uses one RoPE layout for every format (as transformers does).
#pragma once

#include <memory>
#include <set>
#include <string>

#include "cadence/gguf_tensor.h"  // read_gguf_tensor, implemented in gguf_checkpoint.cc
#include "model/checkpoint.h"
#include "model/gguf_file.h"

namespace cadence {

class GgufCheckpoint : public Checkpoint {
 public:
  explicit GgufCheckpoint(const std::string& path);

  std::vector<float> read_float(const std::string& name,
                                const std::vector<int64_t>& expected_shape) const override;
  const GgufFile& gguf() const { return *gguf_; }

 private:
  std::unique_ptr<GgufFile> gguf_;
  int64_t num_heads_ = 0;
  int64_t num_kv_heads_ = 0;
  bool rope_rows_permuted_ = false;
};

// "blk.3.attn_q.weight" -> "model.layers.3.self_attn.q_proj.weight"; "" when unknown.
std::string gguf_to_hf_tensor_name(const std::string& gguf_name);

// A checked view of one tensor of a GGUF file (name and source_name: its GGUF name; shape:
// outermost first). Throws std::runtime_error naming the file and the tensor when its type is
// not readable (the message gives GGML's type name and id, and the readable types), when its
// row length is not a whole number of blocks, or when its bytes are not inside the file.
TensorRef gguf_tensor_ref(const GgufFile& gguf, const GgufTensorInfo& info);

}  // namespace cadence
