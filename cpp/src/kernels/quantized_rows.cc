#include "kernels/quantized_rows.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "kernels/half.h"

namespace cadence::kernels {

int QuantizedRows::max_code() const {
  uint8_t max_code = 0;
  for (uint8_t c : codes) max_code = std::max(max_code, c);
  return max_code;
}

void QuantizedRows::resize(int64_t rows, int64_t cols, int64_t block) {
  num_rows = rows;
  num_cols = cols;
  block_cols = block;
  codes.assign(static_cast<size_t>(rows * cols), 0);
  scales.assign(static_cast<size_t>(rows * (cols / block)), 0.0f);
  mins.assign(static_cast<size_t>(rows * (cols / block)), 0.0f);
}

QuantizedRows quantize_rows_int8(const float* w, int64_t num_rows, int64_t num_cols, int64_t ld_w) {
  constexpr int64_t kBlock = 32;
  if (num_rows < 0 || num_cols < 0 || num_cols % kBlock != 0 || ld_w < num_cols) {
    throw std::invalid_argument(
        "int8 weight quantization needs a [rows, cols] matrix with cols a "
        "multiple of 32, got [" +
        std::to_string(num_rows) + ", " + std::to_string(num_cols) + "]");
  }
  QuantizedRows q;
  q.resize(num_rows, num_cols, kBlock);
  for (int64_t r = 0; r < num_rows; ++r) {
    for (int64_t b = 0; b < num_cols / kBlock; ++b) {
      const float* x = w + r * ld_w + b * kBlock;
      float amax = 0.0f;
      for (int64_t i = 0; i < kBlock; ++i) amax = std::max(amax, std::fabs(x[i]));
      const float scale = f16_to_float(float_to_f16(amax / 127.0f));
      const int64_t slot = r * (num_cols / kBlock) + b;
      q.scales[slot] = scale;
      q.mins[slot] = -128.0f * scale;
      for (int64_t i = 0; i < kBlock; ++i) {
        const float level = scale > 0.0f ? std::nearbyint(x[i] / scale) : 0.0f;
        const float clamped = std::min(127.0f, std::max(-127.0f, level));
        q.codes[r * num_cols + b * kBlock + i] =
            static_cast<uint8_t>(128 + static_cast<int>(clamped));
      }
    }
  }
  return q;
}

QuantizedRows stack_quantized_rows(const std::vector<QuantizedRows>& parts) {
  QuantizedRows out;
  if (parts.empty()) return out;
  int64_t rows = 0;
  int64_t block = parts[0].block_cols;
  for (const QuantizedRows& part : parts) {
    if (part.num_cols != parts[0].num_cols) {
      throw std::invalid_argument("stack_quantized_rows: parts have " +
                                  std::to_string(parts[0].num_cols) + " and " +
                                  std::to_string(part.num_cols) + " columns");
    }
    rows += part.num_rows;
    block = std::min(block, part.block_cols);
  }
  const int64_t cols = parts[0].num_cols;
  out.resize(rows, cols, block);
  const int64_t out_blocks = cols / block;
  int64_t row0 = 0;
  for (const QuantizedRows& part : parts) {
    std::copy(part.codes.begin(), part.codes.end(), out.codes.begin() + row0 * cols);
    const int64_t repeat = part.block_cols / block;
    for (int64_t r = 0; r < part.num_rows; ++r) {
      for (int64_t b = 0; b < out_blocks; ++b) {
        const int64_t src = r * part.blocks_per_row() + b / repeat;
        out.scales[(row0 + r) * out_blocks + b] = part.scales[src];
        out.mins[(row0 + r) * out_blocks + b] = part.mins[src];
      }
    }
    row0 += part.num_rows;
  }
  return out;
}

}  // namespace cadence::kernels
