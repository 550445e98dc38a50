// A weight matrix as integer codes with a scale and a minimum per block of each row, in plain
// row-major order: the form every quantized source is converted to before the GEMM repacks it
// (kernels/packed_weight.h). GGUF blocks (model/tensor_types.h's to_codes) and the int8
// quantizer below both produce it; a fused matrix (q|k|v, gate|up) is stacked from its parts.
//
//   value(r, k) = fma(scales[r][k / block_cols], codes[r][k], mins[r][k / block_cols])
//
// For every GGUF type the product scale * code is exact in fp32, so this value is bit for bit
// what that type's dequantizer (to_float) computes.
#pragma once

#include <cstdint>
#include <vector>

namespace cadence::kernels {

struct QuantizedRows {
  int64_t num_rows = 0;
  int64_t num_cols = 0;
  int64_t block_cols = 32;     // elements per (scale, min) along a row: 16 or 32
  std::vector<uint8_t> codes;  // [num_rows][num_cols], unsigned
  std::vector<float> scales;   // [num_rows][num_cols / block_cols]
  std::vector<float> mins;     // [num_rows][num_cols / block_cols]

  int64_t blocks_per_row() const { return num_cols / block_cols; }
  // The largest code (0 for an empty matrix): decides how the codes are stored (4 or 8 bits).
  int max_code() const;
  // Allocates the arrays for num_rows x num_cols (num_cols a multiple of block_cols).
  void resize(int64_t rows, int64_t cols, int64_t block);
};

// Weight-only symmetric int8 per group of 32 columns (quantization="int8"): scale = fp16(amax /
// 127) (rounded to fp16 so the packed weight stores it exactly), code = 128 + round(w / scale)
// clamped to [1, 255], min = -128 * scale. num_cols must be a multiple of 32 (checked: throws
// std::invalid_argument naming the shape).
QuantizedRows quantize_rows_int8(const float* w, int64_t num_rows, int64_t num_cols, int64_t ld_w);

// The parts stacked by rows (same num_cols; throws std::invalid_argument otherwise), at the
// smallest block size among them: a part with larger blocks repeats its scale and min.
QuantizedRows stack_quantized_rows(const std::vector<QuantizedRows>& parts);

}  // namespace cadence::kernels
