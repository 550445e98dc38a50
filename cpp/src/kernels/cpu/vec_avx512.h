// SIMD traits for the AVX-512 path: 16 floats per register (one GEMM panel), 32 registers.
// Include only from files compiled with -mavx512f -mavx512bw -mavx512vl (the *_avx512.cc files).
#pragma once

// GCC 12's avx512fintrin.h builds _mm512_undefined_*() from a self-initialized variable, which
// -Wall reports as uninitialized once inlined (GCC bug 105593, fixed in 12.3 / 13).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <cstdint>

#include "kernels/isa.h"

namespace cadence::kernels::cpu {

struct Avx512Vec {
  using Reg = __m512;
  static constexpr Isa kIsa = Isa::kAvx512;
  static constexpr int kWidth = 16;
  // 24 accumulators of the 32 registers; the rest hold W vectors and broadcasts of A.
  static constexpr int kGemmMaxRows = 12;
  static constexpr int kGemmMaxAcc = 24;
  static constexpr int kGemmMaxPanels = 8;

  static Reg zero() { return _mm512_setzero_ps(); }
  static Reg set1(float x) { return _mm512_set1_ps(x); }
  static Reg broadcast(const float* p) { return _mm512_set1_ps(*p); }
  static Reg load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, Reg v) { _mm512_storeu_ps(p, v); }
  // 16 stored 16-bit weights widened to fp32 (see Avx2Vec::load_bf16 / load_f16), in row
  // order (one register is a whole panel).
  static constexpr bool kBf16Interleaved = false;
  static Reg load_bf16(const uint16_t* p) {
    const __m512i x =
        _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(x, 16));
  }
  static Reg load_f16(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static Reg add(Reg a, Reg b) { return _mm512_add_ps(a, b); }
  static Reg sub(Reg a, Reg b) { return _mm512_sub_ps(a, b); }
  static Reg mul(Reg a, Reg b) { return _mm512_mul_ps(a, b); }
  static Reg div(Reg a, Reg b) { return _mm512_div_ps(a, b); }
  static Reg fmadd(Reg a, Reg b, Reg c) { return _mm512_fmadd_ps(a, b, c); }
  static Reg max(Reg a, Reg b) { return _mm512_max_ps(a, b); }
  static Reg min(Reg a, Reg b) { return _mm512_min_ps(a, b); }
  static Reg round_nearest(Reg x) {
    return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  // p * 2^n for integral-valued n in [-150, 130] (see Avx2Vec::ldexp).
  static Reg ldexp(Reg p, Reg n) {
    const __m512i ni = _mm512_cvtps_epi32(n);
    const __m512i n1 = _mm512_srai_epi32(ni, 1);
    const __m512i n2 = _mm512_sub_epi32(ni, n1);
    const __m512i bias = _mm512_set1_epi32(127);
    const Reg s1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n1, bias), 23));
    const Reg s2 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n2, bias), 23));
    return _mm512_mul_ps(_mm512_mul_ps(p, s1), s2);
  }
  // Horizontal sum, fixed tree: halves, then quarters, ... (same for reduce_add4).
  static float reduce_add(Reg v) {
    const __m256 h =
        _mm256_add_ps(_mm512_castps512_ps256(v),
                      _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
  }
  static void reduce_add4(Reg a, Reg b, Reg c, Reg d, float* out) {
    out[0] = reduce_add(a);
    out[1] = reduce_add(b);
    out[2] = reduce_add(c);
    out[3] = reduce_add(d);
  }
  static float reduce_max(Reg v) { return _mm512_reduce_max_ps(v); }
  static Reg select_lt(Reg x, Reg limit, Reg if_less, Reg otherwise) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, limit, _CMP_LT_OQ), otherwise, if_less);
  }
  static Reg select_gt(Reg x, Reg limit, Reg if_greater, Reg otherwise) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, limit, _CMP_GT_OQ), otherwise, if_greater);
  }
};

}  // namespace cadence::kernels::cpu
