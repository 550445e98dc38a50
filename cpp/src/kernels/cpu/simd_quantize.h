// KernelTable::quantize_rows on SIMD registers of 16 floats (the integer traits Q of
// simd_qgemm.h), bit for bit the scalar contract of quantize_acts.h: max |x| is exact in any
// order (NaNs skipped), scale and 1 / scale are the same scalar fp32 operations, x * (1 / scale)
// is one IEEE multiply per element, and the conversion rounds to nearest even as the scalar
// code does, with out-of-range values and NaN clamped to the same codes.
#pragma once

#include <cstdint>

#include "kernels/cpu/kernel_table.h"

namespace cadence::kernels::cpu::simd {

template <class Q>
void quantize_rows(const float* a, int64_t lda, int64_t k, int64_t block_cols,
                   const QuantizedActsOut& out, int64_t row_begin, int64_t row_end) {
  constexpr int64_t kActBlock = 32;
  for (int64_t row = row_begin; row < row_end; ++row) {
    const float* x = a + row * lda;
    int8_t* codes = out.codes + row * out.ld_codes;
    float* scales = out.scales + row * out.ld_blocks;
    float* sums = out.scaled_sums + row * out.ld_blocks;
    for (int64_t c = 0; c < k; c += kActBlock) {
      const typename Q::F lo = Q::fload(x + c);
      const typename Q::F hi = Q::fload(x + c + 16);
      const float amax =
          Q::freduce_max(Q::fmax_skip_nan(Q::fabs(hi), Q::fmax_skip_nan(Q::fabs(lo), Q::fzero())));
      const float scale = amax / 127.0f;
      const float inverse = scale > 0.0f ? 1.0f / scale : 0.0f;
      const typename Q::F inv = Q::fset1(inverse);
      const int32_t sum_lo = Q::store_codes16(codes + c, Q::fmul(lo, inv));
      const int32_t sum_hi = Q::store_codes16(codes + c + 16, Q::fmul(hi, inv));
      if (block_cols == kActBlock) {
        scales[c / kActBlock] = scale;
        sums[c / kActBlock] = scale * static_cast<float>(sum_lo + sum_hi);
      } else {  // two 16-column weight blocks per activation block
        const int64_t b = c / 16;
        scales[b] = scale;
        scales[b + 1] = scale;
        sums[b] = scale * static_cast<float>(sum_lo);
        sums[b + 1] = scale * static_cast<float>(sum_hi);
      }
    }
  }
}

}  // namespace cadence::kernels::cpu::simd
