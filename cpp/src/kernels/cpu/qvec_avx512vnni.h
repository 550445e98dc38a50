// Integer SIMD traits for the quantized GEMM (simd_qgemm.h) on AVX-512 with VNNI: one 16-row
// panel is one register; vpdpbusd adds four u8 x s8 products per 32-bit lane, exactly, for any
// codes. Include only from files compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vnni.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/cpu/vec_avx512.h"  // first: its warning suppression covers <immintrin.h>

namespace cadence::kernels::cpu {

struct Avx512VnniQVec {
  using F = __m512;
  using I = __m512i;
  // 32 registers: up to 12 int sums + 12 accumulators + codes and broadcasts (H = 6 x NP = 2
  // for prefill; H = 1 x NP = 4 streams for decode).
  static constexpr int kMaxRows = 6;
  static constexpr int kMaxAcc = 12;
  static constexpr int kMaxPanels = 4;

  static F fzero() { return _mm512_setzero_ps(); }
  static F fset1(float x) { return _mm512_set1_ps(x); }
  static F fload(const float* p) { return _mm512_loadu_ps(p); }
  static void fstore(float* p, F v) { _mm512_storeu_ps(p, v); }
  static F fadd(F a, F b) { return _mm512_add_ps(a, b); }
  static F fmul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F fmadd(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static F to_float(I v) { return _mm512_cvtepi32_ps(v); }
  static F fabs(F v) { return _mm512_abs_ps(v); }
  static F fmax_skip_nan(F x, F acc) { return _mm512_max_ps(x, acc); }  // NaN x -> acc
  static float freduce_max(F v) { return _mm512_reduce_max_ps(v); }     // exact, no NaN here
  // As Avx2QVec::store_codes16.
  static int32_t store_codes16(int8_t* out, F scaled) {
    const __m512i clamped =
        _mm512_min_epi32(_mm512_max_epi32(_mm512_cvtps_epi32(scaled), _mm512_set1_epi32(-127)),
                         _mm512_set1_epi32(127));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm512_cvtepi32_epi8(clamped));
    return _mm512_reduce_add_epi32(clamped);
  }
  template <bool kF16>
  static F load_scales(const unsigned char* p) {
    if constexpr (kF16) {
      return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    } else {
      return _mm512_loadu_ps(reinterpret_cast<const float*>(p));
    }
  }

  static I izero() { return _mm512_setzero_si512(); }
  static I load_codes(const unsigned char* p) { return _mm512_loadu_si512(p); }
  static I low_nibbles(I v) { return _mm512_and_si512(v, _mm512_set1_epi8(0x0F)); }
  static I high_nibbles(I v) {
    return _mm512_and_si512(_mm512_srli_epi16(v, 4), _mm512_set1_epi8(0x0F));
  }
  static I bcast4(const int8_t* p) {
    int32_t x;
    std::memcpy(&x, p, 4);
    return _mm512_set1_epi32(x);
  }
  template <bool kFull>
  static I dot4(I acc, I w, I a) {
    return _mm512_dpbusd_epi32(acc, w, a);
  }
};

}  // namespace cadence::kernels::cpu
