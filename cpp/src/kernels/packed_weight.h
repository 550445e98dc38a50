// A weight matrix W[num_rows][num_cols] (HF "out x in" layout) repacked once at load time
// into the panel layout the GEMM micro-kernel streams through:
//
//   panel p holds rows [p * kPanelRows, (p + 1) * kPanelRows), stored column by column:
//   data[(p * num_cols + k) * kPanelRows + r] = W[p * kPanelRows + r][k]
//   (rows past num_rows in the last panel are zero).
//
// so that for each k the kernel loads kPanelRows consecutive floats. Storage is 64-byte
// aligned. The layout is private to the kernels; callers only construct and pass it.
#pragma once

#include <cstdint>
#include <memory>

namespace cadence::kernels {

class PackedWeight {
 public:
  static constexpr int64_t kPanelRows = 16;

  PackedWeight() = default;
  // Packs w (row stride ld_w >= num_cols). Throws std::invalid_argument on bad sizes.
  static PackedWeight pack(const float* w, int64_t num_rows, int64_t num_cols, int64_t ld_w);

  int64_t num_rows() const { return num_rows_; }
  int64_t num_cols() const { return num_cols_; }
  int64_t num_panels() const { return (num_rows_ + kPanelRows - 1) / kPanelRows; }
  const float* panel(int64_t p) const { return data_.get() + p * num_cols_ * kPanelRows; }
  int64_t size_bytes() const { return num_panels() * num_cols_ * kPanelRows * 4; }
  bool empty() const { return num_rows_ == 0; }

 private:
  struct AlignedFree {
    void operator()(float* p) const;
  };
  std::unique_ptr<float[], AlignedFree> data_;
  int64_t num_rows_ = 0;
  int64_t num_cols_ = 0;
};

}  // namespace cadence::kernels
