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
// registers and computes in fp32. Storage is 64-byte aligned. The layout is private to the
// kernels; callers only construct and pass it.
#pragma once

#include <cstdint>
#include <memory>

namespace cadence::kernels {

// How a PackedWeight stores its elements.
enum class WeightType { kF32, kBF16, kF16 };

// "f32", "bf16", "f16".
const char* weight_type_name(WeightType type);
// Bytes of one stored element: 4 or 2.
constexpr int64_t weight_type_bytes(WeightType type) { return type == WeightType::kF32 ? 4 : 2; }

class PackedWeight {
 public:
  static constexpr int64_t kPanelRows = 16;

  PackedWeight() = default;
  // Packs w (row stride ld_w >= num_cols), converting every element to `type` (round to
  // nearest even, as torch's .to(dtype)). Throws std::invalid_argument on bad sizes.
  static PackedWeight pack(const float* w, int64_t num_rows, int64_t num_cols, int64_t ld_w,
                           WeightType type = WeightType::kF32);

  int64_t num_rows() const { return num_rows_; }
  int64_t num_cols() const { return num_cols_; }
  int64_t num_panels() const { return (num_rows_ + kPanelRows - 1) / kPanelRows; }
  WeightType type() const { return type_; }
  // Panel p: num_cols * kPanelRows elements of type() (float, or uint16_t bit patterns).
  const void* panel(int64_t p) const {
    return data_.get() + p * num_cols_ * kPanelRows * weight_type_bytes(type_);
  }
  // Bytes of storage, padding rows of the last panel included.
  int64_t size_bytes() const {
    return num_panels() * num_cols_ * kPanelRows * weight_type_bytes(type_);
  }
  bool empty() const { return num_rows_ == 0; }
  // Writes the fp32 values of row `row` (< num_rows, not checked) to out[0, num_cols): the
  // rows of a token embedding stored packed.
  void unpack_row(int64_t row, float* out) const;

 private:
  struct AlignedFree {
    void operator()(unsigned char* p) const;
  };
  std::unique_ptr<unsigned char[], AlignedFree> data_;
  int64_t num_rows_ = 0;
  int64_t num_cols_ = 0;
  WeightType type_ = WeightType::kF32;
};

}  // namespace cadence::kernels
