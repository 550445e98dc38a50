// Scalar conversions between fp32 and the two 16-bit float formats weights may be stored in:
// bfloat16 (1 sign, 8 exponent, 7 mantissa bits: the top half of an fp32) and IEEE 754
// binary16 "fp16" (1, 5, 10). Portable integer code, no intrinsics, usable anywhere.
//
// Rounding is to nearest, ties to even, bit for bit as torch's `.to(torch.bfloat16)` /
// `.to(torch.float16)` on x86 CPUs (checked once against torch 2.13 on every 15th fp32 bit
// pattern, 2.9e8 inputs, and on all 2^16 patterns back to fp32; tests/cpp/test_half_weights.cc
// keeps the edge cases):
// - bf16: overflow rounds to +-inf the usual way (values >= 0x7F7F8000 in magnitude);
//   every NaN becomes 0xFFFF, which is what torch's CPU conversion produces.
// - fp16: magnitudes >= 65520 become +-inf, fp16 subnormals (below 2^-14) are rounded
//   correctly, magnitudes <= 2^-25 become +-0; a NaN keeps its sign and the top 9 bits of
//   its payload and is made quiet (sign | 0x7E00 | mantissa >> 13), as F16C's vcvtps2ph does.
// - Back to fp32 is exact. bf16 is a plain shift (a NaN keeps its bits); an fp16 NaN is made
//   quiet (sign | 0x7FC00000 | mantissa << 13), as F16C's vcvtph2ps does, so these functions
//   and the SIMD GEMM paths widen every pattern to the same fp32 bits.
#pragma once

#include <cstdint>
#include <cstring>

namespace cadence::kernels {

namespace half_detail {
inline uint32_t bits_of(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return u;
}
inline float float_of(uint32_t u) {
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}
}  // namespace half_detail

inline uint16_t float_to_bf16(float x) {
  const uint32_t u = half_detail::bits_of(x);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return 0xFFFF;  // NaN
  // Adding 0x7FFF plus the lowest kept bit rounds to nearest, ties to even; a carry out of
  // the mantissa bumps the exponent, which is what rounding up to the next binade (or from
  // the largest finite value to inf) means.
  const uint32_t lsb = (u >> 16) & 1u;
  return static_cast<uint16_t>((u + 0x7FFFu + lsb) >> 16);
}

inline float bf16_to_float(uint16_t h) { return half_detail::float_of(uint32_t{h} << 16); }

inline uint16_t float_to_f16(float x) {
  const uint32_t u = half_detail::bits_of(x);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t abs = u & 0x7FFFFFFFu;
  if (abs > 0x7F800000u) return static_cast<uint16_t>(sign | 0x7E00u | ((abs >> 13) & 0x3FFu));
  if (abs >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);  // >= 65520: inf
  const int32_t exp = static_cast<int32_t>(abs >> 23) - 127;             // unbiased
  if (exp >= -14) {
    // Normal fp16: rebias the exponent (127 -> 15) and drop 13 mantissa bits, rounding to
    // nearest even; a carry into the exponent is the correct round-up (65520 is excluded).
    const uint32_t rebiased = abs - (112u << 23);
    const uint32_t lsb = (rebiased >> 13) & 1u;
    return static_cast<uint16_t>(sign | ((rebiased + 0xFFFu + lsb) >> 13));
  }
  if (exp < -25) return sign;  // below half the smallest subnormal (2^-25 itself: tie to 0)
  // Subnormal fp16: value = mantissa * 2^-24. With the implicit bit, the fp32 significand
  // (24 bits, value m * 2^(exp - 23)) shifts right by (-14 - exp) + 13 bits; a round-up
  // into 0x400 correctly gives the smallest normal.
  const uint32_t m = (abs & 0x7FFFFFu) | 0x800000u;
  const int shift = -exp - 1;  // in [14, 24]
  const uint32_t kept = m >> shift;
  const uint32_t rest = m & ((1u << shift) - 1u);
  const uint32_t half = 1u << (shift - 1);
  const uint32_t rounded = kept + ((rest > half || (rest == half && (kept & 1u))) ? 1u : 0u);
  return static_cast<uint16_t>(sign | rounded);
}

inline float f16_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  const uint32_t mant = h & 0x3FFu;
  if (exp == 0x1F) {
    const uint32_t quiet = mant != 0 ? 0x00400000u : 0u;  // inf stays inf, NaN made quiet
    return half_detail::float_of(sign | 0x7F800000u | quiet | (mant << 13));
  }
  if (exp != 0) return half_detail::float_of(sign | ((exp + 112u) << 23) | (mant << 13));
  // Zero or subnormal: mant * 2^-24, exact in fp32.
  const float magnitude = static_cast<float>(mant) * half_detail::float_of(0x33800000u);
  return half_detail::float_of(sign | half_detail::bits_of(magnitude));
}

}  // namespace cadence::kernels
