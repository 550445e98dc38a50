// Reading one tensor of a GGUF file, dequantized, for inspection and tests. The engine
// loads its weights itself; this is the same reader seen from outside.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cadence {

struct FloatTensor {
  std::vector<int64_t> shape;  // outermost first: the GGUF dims reversed (numpy order)
  std::vector<float> values;   // row-major
};

// The tensor `gguf_name` (its name inside the file, e.g. "blk.0.attn_q.weight") exactly as
// stored, dequantized to fp32. Rows stay in file order: llama q/k rows keep llama.cpp's
// permutation, which the engine undoes at load. Throws std::runtime_error naming the file
// and the tensor when it is absent, its type is not readable (GGML's type name and id are
// given) or its bytes lie outside the file; the file itself is checked as the engine checks
// it (magic, version, every header read bounded).
FloatTensor read_gguf_tensor(const std::string& path, const std::string& gguf_name);

}  // namespace cadence
