#include "kernels/packed_weight.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>

#include "util/large_alloc.h"

namespace cadence::kernels {

void PackedWeight::AlignedFree::operator()(float* p) const { std::free(p); }

PackedWeight PackedWeight::pack(const float* w, int64_t num_rows, int64_t num_cols, int64_t ld_w) {
  if (num_rows < 0 || num_cols < 0 || ld_w < num_cols) {
    throw std::invalid_argument(
        std::string(__FILE__) + ":" + std::to_string(__LINE__) +
        ": PackedWeight::pack: bad shape num_rows=" + std::to_string(num_rows) +
        " num_cols=" + std::to_string(num_cols) + " ld_w=" + std::to_string(ld_w));
  }
  if (w == nullptr && num_rows > 0 && num_cols > 0) {
    throw std::invalid_argument(std::string(__FILE__) + ":" + std::to_string(__LINE__) +
                                ": PackedWeight::pack: null weight for a non-empty matrix");
  }
  PackedWeight packed;
  packed.num_rows_ = num_rows;
  packed.num_cols_ = num_cols;
  const int64_t num_floats = packed.num_panels() * num_cols * kPanelRows;
  if (num_floats == 0) return packed;
  if (num_floats > std::numeric_limits<int64_t>::max() / 4 - 64) throw std::bad_alloc();
  float* data = static_cast<float*>(allocate_large(static_cast<size_t>(num_floats) * 4));
  packed.data_.reset(data);

  // data[(p * num_cols + k) * kPanelRows + r] = W[p * kPanelRows + r][k]; rows past the end
  // of the last panel are zero so the kernel can always read full panels.
  for (int64_t p = 0; p < packed.num_panels(); ++p) {
    float* panel = data + p * num_cols * kPanelRows;
    const int64_t row0 = p * kPanelRows;
    const int64_t rows_here = std::min<int64_t>(kPanelRows, num_rows - row0);
    if (rows_here < kPanelRows) {
      std::memset(panel, 0, static_cast<size_t>(num_cols * kPanelRows) * sizeof(float));
    }
    for (int64_t r = 0; r < rows_here; ++r) {
      const float* src = w + (row0 + r) * ld_w;
      for (int64_t k = 0; k < num_cols; ++k) panel[k * kPanelRows + r] = src[k];
    }
  }
  return packed;
}

}  // namespace cadence::kernels
