// A weight matrix W[num_rows][num_cols] (HF "out x in" layout) repacked once at load time
// into the panel layout the GEMM micro-kernel streams through:
//
//   panel p holds rows [p * kPanelRows, (p + 1) * kPanelRows), stored column by column:
//   data[(p * num_cols + k) * kPanelRows + r] = W[p * kPanelRows + r][k]
//   (rows past num_rows in the last panel are zero).
//
// so that for each k the kernel loads kPanelRows consecutive elements. The elements are fp32,
// or (to halve the memory and the bytes a decode step streams) bfloat16 / IEEE fp16 rounded
// from the fp32 input to nearest even (kernels/half.h); the GEMM widens them to fp32 in
// registers and computes in fp32.
//
// Quantized weights (kQ4, kQ8: integer codes, w = fma(scale, code, min), kernels/quantized_rows.h)
// keep the panels of 16 rows and split K into blocks of block_cols() (16 or 32) elements. Panel
// p, block b is one record of record_bytes(), records of a panel in ascending b:
//
//   codes   kQ8: block_cols / 4 groups of 64 bytes:  byte 64 g + 4 r + j = code(row r, k = 4 g + j)
//           kQ4: block_cols / 8 groups of 64 bytes:  byte 64 g + 4 r + j =
//                                          code(r, 8 g + j) | code(r, 8 g + 4 + j) << 4
//   scales  16 values, row order: fp16, or fp32 where some scale or min is not exact in fp16
//   mins    16 values, same type
//   (k counts from the block's first column; rows past num_rows are zero codes, scales, mins)
//
// so that one 64-byte load holds four consecutive codes of each of the 16 rows: the unit of an
// int8 dot-product instruction (VNNI's vpdpbusd, or maddubs), one 32-bit lane per row.
// Storage is 64-byte aligned host memory from a host Allocator (host_allocator(), or the model
// loader's BumpAllocator that packs all weights together on huge pages).
// The layout is private to the CPU kernels; callers only construct and pass it.
#pragma once

#include <cstdint>

#include "kernels/allocator.h"
#include "kernels/quantized_rows.h"

namespace cadence::kernels {

// How a PackedWeight stores its elements: floats, or quantized codes (4-bit, 8-bit) in blocks.
enum class WeightType { kF32, kBF16, kF16, kQ4, kQ8 };

// "f32", "bf16", "f16", "q4", "q8".
const char* weight_type_name(WeightType type);
constexpr bool is_quantized(WeightType type) {
  return type == WeightType::kQ4 || type == WeightType::kQ8;
}
// Bytes of one stored element of a float type: 4 or 2 (not meaningful for quantized types).
constexpr int64_t weight_type_bytes(WeightType type) { return type == WeightType::kF32 ? 4 : 2; }

class PackedWeight {
 public:
  static constexpr int64_t kPanelRows = 16;

  PackedWeight() = default;
  // Packs w (row stride ld_w >= num_cols), converting every element to `type` (round to
  // nearest even, as torch's .to(dtype)). Throws std::invalid_argument on bad sizes.
  // The storage comes from `allocator` (host memory: the packing writes it directly).
  static PackedWeight pack(const float* w, int64_t num_rows, int64_t num_cols, int64_t ld_w,
                           WeightType type = WeightType::kF32,
                           Allocator& allocator = host_allocator());
  // Packs quantized rows into the record layout above: kQ4 when every code fits in 4 bits,
  // else kQ8. Throws std::invalid_argument on bad sizes (block_cols not 16 or 32, num_cols not
  // a multiple of it).
  static PackedWeight pack_quantized(const QuantizedRows& rows,
                                     Allocator& allocator = host_allocator());

  int64_t num_rows() const { return num_rows_; }
  int64_t num_cols() const { return num_cols_; }
  int64_t num_panels() const { return (num_rows_ + kPanelRows - 1) / kPanelRows; }
  WeightType type() const { return type_; }
  bool is_quantized() const { return kernels::is_quantized(type_); }
  // Quantized only: K elements per record, whether scales and mins are fp16 (else fp32), and
  // whether every code is < 128 (kQ8; lets maddubs-based kernels skip the sign fix-up).
  int64_t block_cols() const { return block_cols_; }
  bool has_f16_scales() const { return has_f16_scales_; }
  bool codes_fit_7_bits() const { return codes_fit_7_bits_; }
  int64_t record_bytes() const {
    const int64_t code_bytes = type_ == WeightType::kQ4 ? block_cols_ * 8 : block_cols_ * 16;
    return code_bytes + 2 * kPanelRows * (has_f16_scales_ ? 2 : 4);
  }
  // Bytes of one panel: num_cols * kPanelRows elements of type() (float, or uint16_t bit
  // patterns), or num_cols / block_cols() records.
  int64_t panel_bytes() const {
    return is_quantized() ? num_cols_ / block_cols_ * record_bytes()
                          : num_cols_ * kPanelRows * weight_type_bytes(type_);
  }
  const void* panel(int64_t p) const { return storage_.as<unsigned char>() + p * panel_bytes(); }
  // Bytes of storage, padding rows of the last panel included.
  int64_t size_bytes() const { return num_panels() * panel_bytes(); }
  bool empty() const { return num_rows_ == 0; }
  // Writes the fp32 values of row `row` (< num_rows, not checked) to out[0, num_cols): the
  // rows of a token embedding stored packed.
  void unpack_row(int64_t row, float* out) const;

 private:
  void unpack_quantized_row(int64_t row, float* out) const;

  DeviceBuffer storage_;  // host memory: the packing writes it, the CPU GEMM reads it
  int64_t num_rows_ = 0;
  int64_t num_cols_ = 0;
  WeightType type_ = WeightType::kF32;
  int64_t block_cols_ = 0;
  bool has_f16_scales_ = false;
  bool codes_fit_7_bits_ = false;
};

}  // namespace cadence::kernels
