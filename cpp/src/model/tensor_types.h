// Storage types of checkpoint tensors and how to turn their rows into fp32.
//
// The table is open: a quantized type lists its block geometry and a dequantizer, so a
// native quantized GEMM can later consume the same blocks without changing the loaders.
#pragma once

#include <cstdint>
#include <string>

namespace cadence {

// Values are GGML's type ids so GGUF tensor infos map directly. Only the types this build
// can read are listed; ggml_type_name() also knows the other GGML ids (for error messages).
enum class TensorType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kBF16 = 30,
};

struct TensorTypeTraits {
  const char* name;
  int64_t block_elements;  // elements per quantization block (1 for plain floats)
  int64_t block_bytes;     // bytes per block
  // Converts num_elements (a multiple of block_elements) starting at src into dst.
  void (*to_float)(const uint8_t* src, float* dst, int64_t num_elements);
  // Quantized types only (nullptr for F32/F16/BF16): the same elements as unsigned codes with
  // a scale and a minimum per code_block elements (kernels/quantized_rows.h), such that
  // fma(scale, code, min) == to_float's value (the product is exact in fp32 for every type):
  // codes[i], scales[i / code_block], mins[i / code_block].
  int64_t code_block;
  void (*to_codes)(const uint8_t* src, int64_t num_elements, uint8_t* codes, float* scales,
                   float* mins);
};

// nullptr for a type id this build cannot read.
const TensorTypeTraits* find_tensor_type(uint32_t type_id);
// GGML's name for any type id it defines ("Q2_K", "IQ4_XS", ...), readable or not;
// nullptr for an id GGML does not define.
const char* ggml_type_name(uint32_t type_id);
// "Q2_K (GGML type id 10)", or "unknown GGML type id 99": for error messages.
std::string describe_ggml_type(uint32_t type_id);
// The readable types, comma separated ("F32, F16, BF16, Q8_0, ..."): for error messages.
std::string supported_tensor_type_names();
const TensorTypeTraits& tensor_type_traits(TensorType type);
// Bytes needed for num_elements of this type; throws if not a whole number of blocks or
// if the byte count would overflow int64.
int64_t tensor_bytes(TensorType type, int64_t num_elements);

float half_to_float(uint16_t h);
float bfloat16_to_float(uint16_t b);

}  // namespace cadence
