// Per-row int8 quantization of GEMM activations for the quantized GEMM (QGemmArgs): the contract
// every path's KernelTable::quantize_rows keeps bit for bit, and its scalar implementation
// (baseline C++; the SIMD ones are in simd_quantize.h).
//
// Each row is cut into blocks of 32 columns (k must be a multiple of 32):
//   amax = max |x|,  scale = amax / 127,  code = clamp(round_half_even(x * (1 / scale)), +-127)
// (scale 0: every code 0; NaNs are skipped by the max and become -127). The scale and the
// scaled sums are computed in scalar fp32 on every path; the products x * (1 / scale) are single
// IEEE multiplies and the rounding is the hardware's nearest-even, so the codes agree too. For each
// weight block of block_cols (16 or 32) columns the buffer also holds the activation block's scale
// and scale * (sum of the codes in the weight block). Per-row quantization is what keeps a
// quantized GEMM batch-invariant: a row's codes never depend on the other rows.
#pragma once

#include <cstdint>

#include "kernels/cpu/kernel_table.h"

namespace cadence::kernels::cpu {

// Quantizes rows [row_begin, row_end) of A (row stride lda, k columns).
void quantize_activation_rows(const float* a, int64_t lda, int64_t k, int64_t block_cols,
                              const QuantizedActsOut& out, int64_t row_begin, int64_t row_end);

}  // namespace cadence::kernels::cpu
