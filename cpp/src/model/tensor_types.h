// Storage types of checkpoint tensors and how to turn their rows into fp32.
//
// The table is open: a quantized type lists its block geometry and a dequantizer, so a
// native quantized GEMM can later consume the same blocks without changing the loaders.
#pragma once

#include <cstdint>
#include <string>

namespace cadence {

// Values are GGML's type ids so GGUF tensor infos map directly.
enum class TensorType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ8_0 = 8,
  kBF16 = 30,
};

struct TensorTypeTraits {
  const char* name;
  int64_t block_elements;  // elements per quantization block (1 for plain floats)
  int64_t block_bytes;     // bytes per block
  // Converts num_elements (a multiple of block_elements) starting at src into dst.
  void (*to_float)(const uint8_t* src, float* dst, int64_t num_elements);
};

// nullptr for a type id this build cannot read.
const TensorTypeTraits* find_tensor_type(uint32_t type_id);
const TensorTypeTraits& tensor_type_traits(TensorType type);
// Bytes needed for num_elements of this type; throws if not a whole number of blocks.
int64_t tensor_bytes(TensorType type, int64_t num_elements);

float half_to_float(uint16_t h);
float bfloat16_to_float(uint16_t b);

}  // namespace cadence
