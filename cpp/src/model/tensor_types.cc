#include "model/tensor_types.h"

#include <cstring>
#include <limits>
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

uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// The 5-bit value of element i (0..31) of a Q5_0 / Q5_1 block: its nibble as in Q4_0 (i < 16:
// low nibble of qs[i]; i >= 16: high nibble of qs[i - 16]) with bit i of qh (the block's 4
// qh bytes read as a little-endian uint32) on top as bit 4.
int q5_value(const uint8_t* qs, uint32_t qh, int i) {
  const int nibble = i < 16 ? (qs[i] & 0x0F) : (qs[i - 16] >> 4);
  return nibble | static_cast<int>(((qh >> i) & 1) << 4);
}

// Q5_0 block (22 bytes): fp16 scale d, 4 bytes qh, 16 bytes qs.  x = d * (q - 16).
void q5_0_to_float(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b, src += 22, dst += 32) {
    const float d = half_to_float(load_u16(src));
    const uint32_t qh = load_u32(src + 2);
    for (int i = 0; i < 32; ++i) dst[i] = d * static_cast<float>(q5_value(src + 6, qh, i) - 16);
  }
}

// Q5_1 block (24 bytes): fp16 scale d, fp16 minimum m, 4 bytes qh, 16 bytes qs.  x = d * q + m.
void q5_1_to_float(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b, src += 24, dst += 32) {
    const float d = half_to_float(load_u16(src));
    const float m = half_to_float(load_u16(src + 2));
    const uint32_t qh = load_u32(src + 4);
    for (int i = 0; i < 32; ++i) dst[i] = d * static_cast<float>(q5_value(src + 8, qh, i)) + m;
  }
}

// K-quants work on super-blocks of kQK = 256 elements.
constexpr int kQK = 256;

// Q4_K and Q5_K split a super-block into 8 sub-blocks of 32 elements, each with a 6-bit
// scale and a 6-bit min packed into 12 bytes (s = scale, m = min, digits = sub-block):
//   byte  0..3 : bits 0-5 s0..s3,         bits 6-7 = bits 4-5 of s4..s7
//   byte  4..7 : bits 0-5 m0..m3,         bits 6-7 = bits 4-5 of m4..m7
//   byte  8..11: bits 0-3 = bits 0-3 of s4..s7, bits 4-7 = bits 0-3 of m4..m7
void unpack_k_scales(const uint8_t* packed, int scales[8], int mins[8]) {
  for (int j = 0; j < 4; ++j) {
    scales[j] = packed[j] & 0x3F;
    mins[j] = packed[j + 4] & 0x3F;
    scales[j + 4] = (packed[j + 8] & 0x0F) | ((packed[j] >> 6) << 4);
    mins[j + 4] = (packed[j + 8] >> 4) | ((packed[j + 4] >> 6) << 4);
  }
}

// Q4_K super-block (144 bytes): fp16 d, fp16 dmin, 12 bytes of scales/mins, 128 bytes qs.
// Every 64 elements share 32 bytes of qs: element 64c + l (l < 32) is the low nibble of
// qs[32c + l] (sub-block 2c), element 64c + 32 + l its high nibble (sub-block 2c + 1).
//   x = (d * scale[sub]) * q - dmin * min[sub]
void q4_k_to_float(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b, src += 144, dst += kQK) {
    const float d = half_to_float(load_u16(src));
    const float dmin = half_to_float(load_u16(src + 2));
    int scales[8], mins[8];
    unpack_k_scales(src + 4, scales, mins);
    const uint8_t* qs = src + 16;
    for (int c = 0; c < 4; ++c) {
      const float d_lo = d * static_cast<float>(scales[2 * c]);
      const float m_lo = dmin * static_cast<float>(mins[2 * c]);
      const float d_hi = d * static_cast<float>(scales[2 * c + 1]);
      const float m_hi = dmin * static_cast<float>(mins[2 * c + 1]);
      for (int l = 0; l < 32; ++l) {
        const uint8_t byte = qs[32 * c + l];
        dst[64 * c + l] = d_lo * static_cast<float>(byte & 0x0F) - m_lo;
        dst[64 * c + 32 + l] = d_hi * static_cast<float>(byte >> 4) - m_hi;
      }
    }
  }
}

// Q5_K super-block (176 bytes): fp16 d, fp16 dmin, 12 bytes of scales/mins (as Q4_K),
// 32 bytes qh, 128 bytes qs. The low 4 bits come from qs exactly as in Q4_K; bit 4 of
// element 32 * sub + l is bit `sub` of qh[l].
//   x = (d * scale[sub]) * q - dmin * min[sub]
void q5_k_to_float(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b, src += 176, dst += kQK) {
    const float d = half_to_float(load_u16(src));
    const float dmin = half_to_float(load_u16(src + 2));
    int scales[8], mins[8];
    unpack_k_scales(src + 4, scales, mins);
    const uint8_t* qh = src + 16;
    const uint8_t* qs = src + 48;
    for (int c = 0; c < 4; ++c) {
      const int sub_lo = 2 * c, sub_hi = 2 * c + 1;
      const float d_lo = d * static_cast<float>(scales[sub_lo]);
      const float m_lo = dmin * static_cast<float>(mins[sub_lo]);
      const float d_hi = d * static_cast<float>(scales[sub_hi]);
      const float m_hi = dmin * static_cast<float>(mins[sub_hi]);
      for (int l = 0; l < 32; ++l) {
        const uint8_t byte = qs[32 * c + l];
        const int q_lo = (byte & 0x0F) | (((qh[l] >> sub_lo) & 1) << 4);
        const int q_hi = (byte >> 4) | (((qh[l] >> sub_hi) & 1) << 4);
        dst[64 * c + l] = d_lo * static_cast<float>(q_lo) - m_lo;
        dst[64 * c + 32 + l] = d_hi * static_cast<float>(q_hi) - m_hi;
      }
    }
  }
}

// Q6_K super-block (210 bytes): 128 bytes ql (low 4 bits), 64 bytes qh (high 2 bits),
// 16 int8 scales (one per 16 elements), fp16 d last. Each half h (128 elements) uses
// ql[64h .. 64h+63] and qh[32h .. 32h+31]; within a half, element 32g + l (l < 32) is
//   g = 0: low nibble of ql[l]        g = 1: low nibble of ql[32 + l]
//   g = 2: high nibble of ql[l]       g = 3: high nibble of ql[32 + l]
// with bits (2g, 2g+1) of qh[l] on top.  x = (d * scales[e / 16]) * (q - 32), e in [0, 256).
void q6_k_to_float(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b, src += 210, dst += kQK) {
    const uint8_t* ql_block = src;
    const uint8_t* qh_block = src + 128;
    const int8_t* scales = reinterpret_cast<const int8_t*>(src + 192);
    const float d = half_to_float(load_u16(src + 208));
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = ql_block + 64 * h;
      const uint8_t* qh = qh_block + 32 * h;
      for (int g = 0; g < 4; ++g) {
        const uint8_t* low_bytes = ql + 32 * (g & 1);
        const int low_shift = 4 * (g >> 1);
        for (int l = 0; l < 32; ++l) {
          const int e = 128 * h + 32 * g + l;
          const int q = ((low_bytes[l] >> low_shift) & 0x0F) | (((qh[l] >> (2 * g)) & 3) << 4);
          dst[e] = (d * static_cast<float>(scales[e / 16])) * static_cast<float>(q - 32);
        }
      }
    }
  }
}

// --- the same blocks as codes, scale and min (TensorTypeTraits::to_codes) ---------------------
// Signed GGUF levels q are stored as code = q + offset with min = -offset * scale.

void q8_0_to_codes(const uint8_t* src, int64_t n, uint8_t* codes, float* scales, float* mins) {
  for (int64_t b = 0; b < n / 32; ++b, src += 34) {
    const float d = half_to_float(load_u16(src));
    const int8_t* q = reinterpret_cast<const int8_t*>(src + 2);
    for (int i = 0; i < 32; ++i) codes[32 * b + i] = static_cast<uint8_t>(q[i] + 128);
    scales[b] = d;
    mins[b] = -128.0f * d;
  }
}

void q4_0_to_codes(const uint8_t* src, int64_t n, uint8_t* codes, float* scales, float* mins) {
  for (int64_t b = 0; b < n / 32; ++b, src += 18) {
    const float d = half_to_float(load_u16(src));
    for (int i = 0; i < 16; ++i) {
      codes[32 * b + i] = src[2 + i] & 0x0F;
      codes[32 * b + i + 16] = src[2 + i] >> 4;
    }
    scales[b] = d;
    mins[b] = -8.0f * d;
  }
}

void q4_1_to_codes(const uint8_t* src, int64_t n, uint8_t* codes, float* scales, float* mins) {
  for (int64_t b = 0; b < n / 32; ++b, src += 20) {
    for (int i = 0; i < 16; ++i) {
      codes[32 * b + i] = src[4 + i] & 0x0F;
      codes[32 * b + i + 16] = src[4 + i] >> 4;
    }
    scales[b] = half_to_float(load_u16(src));
    mins[b] = half_to_float(load_u16(src + 2));
  }
}

void q5_0_to_codes(const uint8_t* src, int64_t n, uint8_t* codes, float* scales, float* mins) {
  for (int64_t b = 0; b < n / 32; ++b, src += 22) {
    const float d = half_to_float(load_u16(src));
    const uint32_t qh = load_u32(src + 2);
    for (int i = 0; i < 32; ++i) codes[32 * b + i] = static_cast<uint8_t>(q5_value(src + 6, qh, i));
    scales[b] = d;
    mins[b] = -16.0f * d;
  }
}

void q5_1_to_codes(const uint8_t* src, int64_t n, uint8_t* codes, float* scales, float* mins) {
  for (int64_t b = 0; b < n / 32; ++b, src += 24) {
    const uint32_t qh = load_u32(src + 4);
    for (int i = 0; i < 32; ++i) codes[32 * b + i] = static_cast<uint8_t>(q5_value(src + 8, qh, i));
    scales[b] = half_to_float(load_u16(src));
    mins[b] = half_to_float(load_u16(src + 2));
  }
}

// Q4_K / Q5_K: code block 32 (one sub-block), scale d * scale[sub], min -(dmin * min[sub]).
template <bool kFiveBits>
void qk_to_codes(const uint8_t* src, int64_t n, uint8_t* codes, float* scales, float* mins) {
  constexpr int64_t kBytes = kFiveBits ? 176 : 144;
  for (int64_t b = 0; b < n / kQK; ++b, src += kBytes) {
    const float d = half_to_float(load_u16(src));
    const float dmin = half_to_float(load_u16(src + 2));
    int sub_scales[8], sub_mins[8];
    unpack_k_scales(src + 4, sub_scales, sub_mins);
    const uint8_t* qh = src + 16;
    const uint8_t* qs = src + (kFiveBits ? 48 : 16);
    uint8_t* out = codes + b * kQK;
    for (int c = 0; c < 4; ++c) {
      for (int l = 0; l < 32; ++l) {
        const uint8_t byte = qs[32 * c + l];
        int q_lo = byte & 0x0F, q_hi = byte >> 4;
        if (kFiveBits) {
          q_lo |= ((qh[l] >> (2 * c)) & 1) << 4;
          q_hi |= ((qh[l] >> (2 * c + 1)) & 1) << 4;
        }
        out[64 * c + l] = static_cast<uint8_t>(q_lo);
        out[64 * c + 32 + l] = static_cast<uint8_t>(q_hi);
      }
    }
    for (int sub = 0; sub < 8; ++sub) {
      scales[8 * b + sub] = d * static_cast<float>(sub_scales[sub]);
      mins[8 * b + sub] = -(dmin * static_cast<float>(sub_mins[sub]));
    }
  }
}

// Q6_K: code block 16 (one int8 scale each), code = q (0..63), scale d * scales[e / 16], min
// -32 * scale.
void q6_k_to_codes(const uint8_t* src, int64_t n, uint8_t* codes, float* scales, float* mins) {
  for (int64_t b = 0; b < n / kQK; ++b, src += 210) {
    const int8_t* sub_scales = reinterpret_cast<const int8_t*>(src + 192);
    const float d = half_to_float(load_u16(src + 208));
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = src + 64 * h;
      const uint8_t* qh = src + 128 + 32 * h;
      for (int g = 0; g < 4; ++g) {
        const uint8_t* low_bytes = ql + 32 * (g & 1);
        const int low_shift = 4 * (g >> 1);
        for (int l = 0; l < 32; ++l) {
          const int e = 128 * h + 32 * g + l;
          const int q = ((low_bytes[l] >> low_shift) & 0x0F) | (((qh[l] >> (2 * g)) & 3) << 4);
          codes[b * kQK + e] = static_cast<uint8_t>(q);
        }
      }
    }
    for (int sub = 0; sub < 16; ++sub) {
      const float scale = d * static_cast<float>(sub_scales[sub]);
      scales[16 * b + sub] = scale;
      mins[16 * b + sub] = -32.0f * scale;
    }
  }
}

const TensorTypeTraits kF32{"F32", 1, 4, f32_to_float, 0, nullptr};
const TensorTypeTraits kF16{"F16", 1, 2, f16_to_float, 0, nullptr};
const TensorTypeTraits kBF16{"BF16", 1, 2, bf16_to_float, 0, nullptr};
const TensorTypeTraits kQ8_0{"Q8_0", 32, 34, q8_0_to_float, 32, q8_0_to_codes};
const TensorTypeTraits kQ4_0{"Q4_0", 32, 18, q4_0_to_float, 32, q4_0_to_codes};
const TensorTypeTraits kQ4_1{"Q4_1", 32, 20, q4_1_to_float, 32, q4_1_to_codes};
const TensorTypeTraits kQ5_0{"Q5_0", 32, 22, q5_0_to_float, 32, q5_0_to_codes};
const TensorTypeTraits kQ5_1{"Q5_1", 32, 24, q5_1_to_float, 32, q5_1_to_codes};
const TensorTypeTraits kQ4_K{"Q4_K", kQK, 144, q4_k_to_float, 32, qk_to_codes<false>};
const TensorTypeTraits kQ5_K{"Q5_K", kQK, 176, q5_k_to_float, 32, qk_to_codes<true>};
const TensorTypeTraits kQ6_K{"Q6_K", kQK, 210, q6_k_to_float, 16, q6_k_to_codes};

// GGML's type names indexed by type id (ggml.h); the readable ones are also in TensorType.
// Ids 4-5 (Q4_2, Q4_3) and 31-33, 36-38 (repacked Q4_0 / IQ4_NL) are retired in GGML but
// named so an old file's error message still says what it holds.
const char* const kGgmlTypeNames[] = {
    "F32",   "F16",        "Q4_0",       "Q4_1",       "Q4_2",     "Q4_3",     "Q5_0",
    "Q5_1",  "Q8_0",       "Q8_1",       "Q2_K",       "Q3_K",     "Q4_K",     "Q5_K",
    "Q6_K",  "Q8_K",       "IQ2_XXS",    "IQ2_XS",     "IQ3_XXS",  "IQ1_S",    "IQ4_NL",
    "IQ3_S", "IQ2_S",      "IQ4_XS",     "I8",         "I16",      "I32",      "I64",
    "F64",   "IQ1_M",      "BF16",       "Q4_0_4_4",   "Q4_0_4_8", "Q4_0_8_8", "TQ1_0",
    "TQ2_0", "IQ4_NL_4_4", "IQ4_NL_4_8", "IQ4_NL_8_8", "MXFP4",    "NVFP4",    "Q1_0",
};

// In the order supported_tensor_type_names() lists them.
constexpr TensorType kReadableTypes[] = {
    TensorType::kF32,  TensorType::kF16,  TensorType::kBF16, TensorType::kQ8_0,
    TensorType::kQ4_0, TensorType::kQ4_1, TensorType::kQ5_0, TensorType::kQ5_1,
    TensorType::kQ4_K, TensorType::kQ5_K, TensorType::kQ6_K,
};

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
    case TensorType::kQ5_0:
      return &kQ5_0;
    case TensorType::kQ5_1:
      return &kQ5_1;
    case TensorType::kQ4_K:
      return &kQ4_K;
    case TensorType::kQ5_K:
      return &kQ5_K;
    case TensorType::kQ6_K:
      return &kQ6_K;
  }
  return nullptr;
}

const char* ggml_type_name(uint32_t type_id) {
  constexpr uint32_t kNumNames = sizeof(kGgmlTypeNames) / sizeof(kGgmlTypeNames[0]);
  return type_id < kNumNames ? kGgmlTypeNames[type_id] : nullptr;
}

std::string describe_ggml_type(uint32_t type_id) {
  const char* name = ggml_type_name(type_id);
  if (name == nullptr) return "unknown GGML type id " + std::to_string(type_id);
  return std::string(name) + " (GGML type id " + std::to_string(type_id) + ")";
}

std::string supported_tensor_type_names() {
  std::string out;
  for (TensorType type : kReadableTypes) {
    if (!out.empty()) out += ", ";
    out += tensor_type_traits(type).name;
  }
  return out;
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
  const int64_t num_blocks = num_elements / traits.block_elements;
  if (num_blocks > std::numeric_limits<int64_t>::max() / traits.block_bytes) {
    throw std::runtime_error(std::string(traits.name) + " tensor of " +
                             std::to_string(num_elements) + " elements is too large");
  }
  return num_blocks * traits.block_bytes;
}

}  // namespace cadence
