#include "model/tensor_types.h"

#include <cstring>
#include <stdexcept>

namespace cadence {

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exponent = (h >> 10) & 0x1F;
  uint32_t mantissa = h & 0x3FF;
  uint32_t bits;
  if (exponent == 0) {
    if (mantissa == 0) {
      bits = sign;
    } else {  // subnormal: renormalize
      exponent = 127 - 15 + 1;
      while ((mantissa & 0x400) == 0) {
        mantissa <<= 1;
        --exponent;
      }
      mantissa &= 0x3FF;
      bits = sign | (exponent << 23) | (mantissa << 13);
    }
  } else if (exponent == 0x1F) {
    bits = sign | 0x7F800000u | (mantissa << 13);
  } else {
    bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
  }
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

float bfloat16_to_float(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

namespace {

uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

void f32_to_float(const uint8_t* src, float* dst, int64_t n) {
  std::memcpy(dst, src, static_cast<size_t>(n) * 4);
}

void f16_to_float(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = half_to_float(load_u16(src + 2 * i));
}

void bf16_to_float(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = bfloat16_to_float(load_u16(src + 2 * i));
}

// Q8_0 block (34 bytes): fp16 scale d, 32 x int8 q.  x[i] = d * q[i].
void q8_0_to_float(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b, src += 34, dst += 32) {
    const float d = half_to_float(load_u16(src));
    const int8_t* q = reinterpret_cast<const int8_t*>(src + 2);
    for (int i = 0; i < 32; ++i) dst[i] = d * static_cast<float>(q[i]);
  }
}

// Q4_0 block (18 bytes): fp16 scale d, 16 bytes of nibbles. Element i < 16 is the low
// nibble of byte i, element i + 16 the high nibble.  x = d * (nibble - 8).
void q4_0_to_float(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b, src += 18, dst += 32) {
    const float d = half_to_float(load_u16(src));
    const uint8_t* q = src + 2;
    for (int i = 0; i < 16; ++i) {
      dst[i] = d * static_cast<float>((q[i] & 0x0F) - 8);
      dst[i + 16] = d * static_cast<float>((q[i] >> 4) - 8);
    }
  }
}

// Q4_1 block (20 bytes): fp16 scale d, fp16 minimum m, 16 bytes of nibbles laid out as
// in Q4_0.  x = d * nibble + m.
void q4_1_to_float(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b, src += 20, dst += 32) {
    const float d = half_to_float(load_u16(src));
    const float m = half_to_float(load_u16(src + 2));
    const uint8_t* q = src + 4;
    for (int i = 0; i < 16; ++i) {
      dst[i] = d * static_cast<float>(q[i] & 0x0F) + m;
      dst[i + 16] = d * static_cast<float>(q[i] >> 4) + m;
    }
  }
}

const TensorTypeTraits kF32{"F32", 1, 4, f32_to_float};
const TensorTypeTraits kF16{"F16", 1, 2, f16_to_float};
const TensorTypeTraits kBF16{"BF16", 1, 2, bf16_to_float};
const TensorTypeTraits kQ8_0{"Q8_0", 32, 34, q8_0_to_float};
const TensorTypeTraits kQ4_0{"Q4_0", 32, 18, q4_0_to_float};
const TensorTypeTraits kQ4_1{"Q4_1", 32, 20, q4_1_to_float};

}  // namespace

const TensorTypeTraits* find_tensor_type(uint32_t type_id) {
  switch (static_cast<TensorType>(type_id)) {
    case TensorType::kF32:
      return &kF32;
    case TensorType::kF16:
      return &kF16;
    case TensorType::kBF16:
      return &kBF16;
    case TensorType::kQ8_0:
      return &kQ8_0;
    case TensorType::kQ4_0:
      return &kQ4_0;
    case TensorType::kQ4_1:
      return &kQ4_1;
  }
  return nullptr;
}

const TensorTypeTraits& tensor_type_traits(TensorType type) {
  const TensorTypeTraits* traits = find_tensor_type(static_cast<uint32_t>(type));
  if (traits == nullptr) throw std::logic_error("unknown TensorType");
  return *traits;
}

int64_t tensor_bytes(TensorType type, int64_t num_elements) {
  const TensorTypeTraits& traits = tensor_type_traits(type);
  if (num_elements % traits.block_elements != 0) {
    throw std::runtime_error(std::string(traits.name) + " tensor of " +
                             std::to_string(num_elements) + " elements is not a whole number of " +
                             std::to_string(traits.block_elements) + "-element blocks");
  }
  return num_elements / traits.block_elements * traits.block_bytes;
}

}  // namespace cadence
