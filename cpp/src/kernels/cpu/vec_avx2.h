// SIMD traits for the AVX2 + FMA path: 8 floats per register, 16 registers. Include only
// from files compiled with -mavx2 -mfma (the *_avx2.cc files).
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "kernels/isa.h"

namespace cadence::kernels::cpu {

struct Avx2Vec {
  using Reg = __m256;
  static constexpr Isa kIsa = Isa::kAvx2;
  static constexpr int kWidth = 8;
  // GEMM micro-tile limits: at most kGemmMaxRows rows of A, kGemmMaxAcc accumulator registers
  // (12 of the 16 leave room for the W vectors and one broadcast of A), kGemmMaxPanels panels.
  static constexpr int kGemmMaxRows = 6;
  static constexpr int kGemmMaxAcc = 12;
  static constexpr int kGemmMaxPanels = 6;

  static Reg zero() { return _mm256_setzero_ps(); }
  static Reg set1(float x) { return _mm256_set1_ps(x); }
  static Reg broadcast(const float* p) { return _mm256_broadcast_ss(p); }
  static Reg load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, Reg v) { _mm256_storeu_ps(p, v); }
  // 8 stored 16-bit weights widened to fp32, exactly as bf16_to_float / f16_to_float
  // (kernels/half.h): bf16 is the top half of an fp32; fp16 through F16C.
  static Reg load_bf16(const uint16_t* p) {
    const __m256i x = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(x, 16));
  }
  static Reg load_f16(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  // The GEMM widens a bf16 panel (16 weights of one k, 32 bytes) with one unpack against
  // zero per register instead of load_bf16's zero-extend + shift: half the instructions,
  // which is what bounds a bf16 GEMV on cores with 128-bit FP units (Zen 1: one thread went
  // from 1.1x to 1.6-1.85x the fp32 speed; docs/performance.md). The unpacks work
  // within 128-bit lanes, so part 0 holds rows 0-3 and 8-11 and part 1 rows 4-7 and 12-15;
  // load_interleaved / store_interleaved read and write C (16 floats) in that order.
  static constexpr bool kBf16Interleaved = true;
  static Reg load_bf16_interleaved(const uint16_t* p, int part) {
    const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const __m256i zero = _mm256_setzero_si256();
    return _mm256_castsi256_ps(part == 0 ? _mm256_unpacklo_epi16(zero, x)
                                         : _mm256_unpackhi_epi16(zero, x));
  }
  static Reg load_interleaved(const float* p, int part) {
    const __m128 lo = _mm_loadu_ps(p + 4 * part), hi = _mm_loadu_ps(p + 8 + 4 * part);
    return _mm256_insertf128_ps(_mm256_castps128_ps256(lo), hi, 1);
  }
  static void store_interleaved(float* p, int part, Reg v) {
    _mm_storeu_ps(p + 4 * part, _mm256_castps256_ps128(v));
    _mm_storeu_ps(p + 8 + 4 * part, _mm256_extractf128_ps(v, 1));
  }
  static Reg add(Reg a, Reg b) { return _mm256_add_ps(a, b); }
  static Reg sub(Reg a, Reg b) { return _mm256_sub_ps(a, b); }
  static Reg mul(Reg a, Reg b) { return _mm256_mul_ps(a, b); }
  static Reg div(Reg a, Reg b) { return _mm256_div_ps(a, b); }
  // a * b + c with a single rounding.
  static Reg fmadd(Reg a, Reg b, Reg c) { return _mm256_fmadd_ps(a, b, c); }
  // max/min return the second operand when either is NaN; callers put the constant first so
  // NaN inputs propagate.
  static Reg max(Reg a, Reg b) { return _mm256_max_ps(a, b); }
  static Reg min(Reg a, Reg b) { return _mm256_min_ps(a, b); }
  static Reg round_nearest(Reg x) {
    return _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  // p * 2^n for integral-valued n in [-150, 130]; applied as two factors so that neither
  // exponent field over- or underflows and the product rounds to inf / denormal / 0 naturally.
  static Reg ldexp(Reg p, Reg n) {
    const __m256i ni = _mm256_cvtps_epi32(n);
    const __m256i n1 = _mm256_srai_epi32(ni, 1);
    const __m256i n2 = _mm256_sub_epi32(ni, n1);
    const __m256i bias = _mm256_set1_epi32(127);
    const Reg s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    const Reg s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
  }

  // Horizontal sum with the fixed tree ((0+1)+(2+3)) + ((4+5)+(6+7)); reduce_add4 applies
  // exactly the same tree to each of its inputs (addition is commutative bit for bit), so a
  // dot product's value does not depend on which of the two computed it.
  static float reduce_add(Reg v) {
    const Reg h1 = _mm256_hadd_ps(v, v);    // [01 23 01 23 | 45 67 45 67]
    const Reg h2 = _mm256_hadd_ps(h1, h1);  // [0123 x4 | 4567 x4]
    const __m128 s = _mm_add_ps(_mm256_castps256_ps128(h2), _mm256_extractf128_ps(h2, 1));
    return _mm_cvtss_f32(s);
  }
  static void reduce_add4(Reg a, Reg b, Reg c, Reg d, float* out) {
    const Reg ab = _mm256_hadd_ps(a, b);      // [a01 a23 b01 b23 | a45 a67 b45 b67]
    const Reg cd = _mm256_hadd_ps(c, d);      // same for c, d
    const Reg abcd = _mm256_hadd_ps(ab, cd);  // [a0123 b0123 c0123 d0123 | a4567 ...]
    const __m128 s = _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
    _mm_storeu_ps(out, s);
  }
  static float reduce_max(Reg v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
  }
  // Lanes where x < limit take if_less, the others keep otherwise.
  static Reg select_lt(Reg x, Reg limit, Reg if_less, Reg otherwise) {
    return _mm256_blendv_ps(otherwise, if_less, _mm256_cmp_ps(x, limit, _CMP_LT_OQ));
  }
  static Reg select_gt(Reg x, Reg limit, Reg if_greater, Reg otherwise) {
    return _mm256_blendv_ps(otherwise, if_greater, _mm256_cmp_ps(x, limit, _CMP_GT_OQ));
  }
};

}  // namespace cadence::kernels::cpu
