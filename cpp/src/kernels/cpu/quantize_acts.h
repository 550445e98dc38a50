// Per-row int8 quantization of GEMM activations for the quantized GEMM (QGemmArgs). Baseline
// C++ (one implementation for every ISA path), so the codes are the same whichever path runs.
//
// Each row is cut into blocks of 32 columns (k must be a multiple of 32):
//   amax = max |x|,  scale = amax / 127,  code = clamp(round_half_even(x * (1 / scale)), +-127)
// (scale 0: every code 0; a NaN becomes -127). For each weight block of block_cols (16 or 32)
// columns the buffer also holds the activation block's scale and scale * (sum of the codes in
// the weight block). Per-row quantization is what keeps a quantized GEMM batch-invariant: a
// row's codes never depend on the other rows.
#pragma once

#include <cstdint>

#include "kernels/cpu/kernel_table.h"

namespace cadence::kernels::cpu {

// Where the quantized rows go: row i at codes + i * ld_codes, scales / scaled_sums + i *
// ld_blocks (ld_blocks >= k / block_cols).
struct QuantizedActsOut {
  int8_t* codes = nullptr;
  int64_t ld_codes = 0;
  float* scales = nullptr;
  float* scaled_sums = nullptr;
  int64_t ld_blocks = 0;

  QuantizedActs view() const { return {codes, ld_codes, scales, scaled_sums, ld_blocks}; }
};

// Quantizes rows [row_begin, row_end) of A (row stride lda, k columns).
void quantize_activation_rows(const float* a, int64_t lda, int64_t k, int64_t block_cols,
                              const QuantizedActsOut& out, int64_t row_begin, int64_t row_end);

}  // namespace cadence::kernels::cpu
