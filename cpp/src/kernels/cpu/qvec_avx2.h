// Integer SIMD traits for the quantized GEMM (simd_qgemm.h) on AVX2: one 16-row panel is a pair
// of 256-bit registers (rows 0-7, rows 8-15). Include only from files compiled with the AVX2
// flags (-mavx2 -mfma -mf16c).
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace cadence::kernels::cpu {

struct Avx2QVec {
  struct F {
    __m256 lo, hi;
  };
  struct I {
    __m256i lo, hi;
  };
  // 16 registers: H x NP int sums and fp32 accumulators are pairs each, plus the codes.
  static constexpr int kMaxRows = 2;
  static constexpr int kMaxAcc = 2;
  static constexpr int kMaxPanels = 2;

  static F fzero() { return {_mm256_setzero_ps(), _mm256_setzero_ps()}; }
  static F fset1(float x) { return {_mm256_set1_ps(x), _mm256_set1_ps(x)}; }
  static F fload(const float* p) { return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)}; }
  static void fstore(float* p, F v) {
    _mm256_storeu_ps(p, v.lo);
    _mm256_storeu_ps(p + 8, v.hi);
  }
  static F fadd(F a, F b) { return {_mm256_add_ps(a.lo, b.lo), _mm256_add_ps(a.hi, b.hi)}; }
  static F fmul(F a, F b) { return {_mm256_mul_ps(a.lo, b.lo), _mm256_mul_ps(a.hi, b.hi)}; }
  static F fmadd(F a, F b, F c) {
    return {_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi)};
  }
  // |x|; max(x, acc) that returns acc where x is NaN (maxps returns its second operand then).
  static F fabs(F v) {
    const __m256 mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    return {_mm256_and_ps(v.lo, mask), _mm256_and_ps(v.hi, mask)};
  }
  static F fmax_skip_nan(F x, F acc) {
    return {_mm256_max_ps(x.lo, acc.lo), _mm256_max_ps(x.hi, acc.hi)};
  }
  static float freduce_max(F v) {
    __m256 m = _mm256_max_ps(v.lo, v.hi);
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
    return _mm_cvtss_f32(h);
  }
  // Rounds 16 floats to nearest even (cvtps2dq in the default rounding mode; NaN and
  // out-of-range give INT_MIN), clamps to [-127, 127], stores them as int8 and returns their sum.
  static int32_t store_codes16(int8_t* out, F scaled) {
    const __m256i limit = _mm256_set1_epi32(127), neg_limit = _mm256_set1_epi32(-127);
    const __m256i lo =
        _mm256_min_epi32(_mm256_max_epi32(_mm256_cvtps_epi32(scaled.lo), neg_limit), limit);
    const __m256i hi =
        _mm256_min_epi32(_mm256_max_epi32(_mm256_cvtps_epi32(scaled.hi), neg_limit), limit);
    // packs work within 128-bit lanes: words [lo0-3 hi0-3 | lo4-7 hi4-7], then a lane permute.
    const __m256i words = _mm256_permute4x64_epi64(_mm256_packs_epi32(lo, hi), 0xD8);
    const __m128i bytes =
        _mm_packs_epi16(_mm256_castsi256_si128(words), _mm256_extracti128_si256(words, 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), bytes);
    __m256i s = _mm256_add_epi32(lo, hi);
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xB1));
    return _mm_cvtsi128_si32(s4);
  }
  static F to_float(I v) { return {_mm256_cvtepi32_ps(v.lo), _mm256_cvtepi32_ps(v.hi)}; }
  // 16 scales (or mins) in row order, fp16 (widened exactly by F16C) or fp32.
  template <bool kF16>
  static F load_scales(const unsigned char* p) {
    if constexpr (kF16) {
      return {_mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))),
              _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16)))};
    } else {
      return fload(reinterpret_cast<const float*>(p));
    }
  }

  static I izero() { return {_mm256_setzero_si256(), _mm256_setzero_si256()}; }
  static I load_codes(const unsigned char* p) {
    return {_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)),
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32))};
  }
  static I low_nibbles(I v) {
    const __m256i mask = _mm256_set1_epi8(0x0F);
    return {_mm256_and_si256(v.lo, mask), _mm256_and_si256(v.hi, mask)};
  }
  static I high_nibbles(I v) {
    const __m256i mask = _mm256_set1_epi8(0x0F);
    return {_mm256_and_si256(_mm256_srli_epi16(v.lo, 4), mask),
            _mm256_and_si256(_mm256_srli_epi16(v.hi, 4), mask)};
  }
  // Four int8 activations broadcast to every 32-bit lane.
  static I bcast4(const int8_t* p) {
    int32_t x;
    std::memcpy(&x, p, 4);
    const __m256i v = _mm256_set1_epi32(x);
    return {v, v};
  }
  // acc + the sum of four u8 (w) x s8 (a) products per lane, exactly. maddubs adds two
  // products into a saturating int16: safe when w < 128 (|a| <= 127 after quantization:
  // 2 * 127 * 127 < 2^15). kFull (codes up to 255): w - 128 in [-128, 127] times a through
  // the sign trick (|w - 128| * sign(a, w - 128), at most 2 * 128 * 127 < 2^15), plus 128 * (the
  // four a's sum), which is the same integer.
  template <bool kFull>
  static I dot4(I acc, I w, I a) {
    return {dot4_half<kFull>(acc.lo, w.lo, a.lo), dot4_half<kFull>(acc.hi, w.hi, a.hi)};
  }

 private:
  template <bool kFull>
  static __m256i dot4_half(__m256i acc, __m256i w, __m256i a) {
    const __m256i ones16 = _mm256_set1_epi16(1);
    if constexpr (!kFull) {
      return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(w, a), ones16));
    } else {
      const __m256i centered = _mm256_xor_si256(w, _mm256_set1_epi8(static_cast<char>(0x80)));
      const __m256i prod =
          _mm256_maddubs_epi16(_mm256_abs_epi8(centered), _mm256_sign_epi8(a, centered));
      const __m256i a_sum = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), a), ones16);
      return _mm256_add_epi32(_mm256_add_epi32(acc, _mm256_madd_epi16(prod, ones16)),
                              _mm256_slli_epi32(a_sum, 7));
    }
  }
};

}  // namespace cadence::kernels::cpu
