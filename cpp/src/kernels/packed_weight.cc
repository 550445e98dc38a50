#include "kernels/packed_weight.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>

#include "kernels/half.h"
#include "util/large_alloc.h"

namespace cadence::kernels {

namespace {

// data[(p * num_cols + k) * kPanelRows + r] = convert(W[p * kPanelRows + r][k]); rows past the
// end of the last panel are zero so the kernel can always read full panels.
template <class T, class Convert>
void pack_panels(const float* w, int64_t num_rows, int64_t num_cols, int64_t ld_w, T* data,
                 Convert convert) {
  constexpr int64_t kPanelRows = PackedWeight::kPanelRows;
  const int64_t num_panels = (num_rows + kPanelRows - 1) / kPanelRows;
  for (int64_t p = 0; p < num_panels; ++p) {
    T* panel = data + p * num_cols * kPanelRows;
    const int64_t row0 = p * kPanelRows;
    const int64_t rows_here = std::min<int64_t>(kPanelRows, num_rows - row0);
    if (rows_here < kPanelRows) {
      std::memset(panel, 0, static_cast<size_t>(num_cols * kPanelRows) * sizeof(T));
    }
    for (int64_t r = 0; r < rows_here; ++r) {
      const float* src = w + (row0 + r) * ld_w;
      for (int64_t k = 0; k < num_cols; ++k) panel[k * kPanelRows + r] = convert(src[k]);
    }
  }
}

}  // namespace

const char* weight_type_name(WeightType type) {
  switch (type) {
    case WeightType::kF32:
      return "f32";
    case WeightType::kBF16:
      return "bf16";
    case WeightType::kF16:
      return "f16";
  }
  return "unknown";
}

void PackedWeight::AlignedFree::operator()(unsigned char* p) const { std::free(p); }

PackedWeight PackedWeight::pack(const float* w, int64_t num_rows, int64_t num_cols, int64_t ld_w,
                                WeightType type) {
  if (num_rows < 0 || num_cols < 0 || ld_w < num_cols) {
    throw std::invalid_argument(
        std::string(__FILE__) + ":" + std::to_string(__LINE__) +
        ": PackedWeight::pack: bad shape num_rows=" + std::to_string(num_rows) +
        " num_cols=" + std::to_string(num_cols) + " ld_w=" + std::to_string(ld_w));
  }
  if (type != WeightType::kF32 && type != WeightType::kBF16 && type != WeightType::kF16) {
    throw std::invalid_argument(std::string(__FILE__) + ":" + std::to_string(__LINE__) +
                                ": PackedWeight::pack: unknown type " +
                                std::to_string(static_cast<int>(type)));
  }
  if (w == nullptr && num_rows > 0 && num_cols > 0) {
    throw std::invalid_argument(std::string(__FILE__) + ":" + std::to_string(__LINE__) +
                                ": PackedWeight::pack: null weight for a non-empty matrix");
  }
  PackedWeight packed;
  packed.num_rows_ = num_rows;
  packed.num_cols_ = num_cols;
  packed.type_ = type;
  const int64_t element_bytes = weight_type_bytes(type);
  const int64_t num_elements = packed.num_panels() * num_cols * kPanelRows;
  if (num_elements == 0) return packed;
  if (num_elements > std::numeric_limits<int64_t>::max() / element_bytes - 64) {
    throw std::bad_alloc();
  }
  void* data = allocate_large(static_cast<size_t>(num_elements * element_bytes));
  packed.data_.reset(static_cast<unsigned char*>(data));
  switch (type) {
    case WeightType::kF32:
      pack_panels(w, num_rows, num_cols, ld_w, static_cast<float*>(data),
                  [](float x) { return x; });
      break;
    case WeightType::kBF16:
      pack_panels(w, num_rows, num_cols, ld_w, static_cast<uint16_t*>(data),
                  [](float x) { return float_to_bf16(x); });
      break;
    case WeightType::kF16:
      pack_panels(w, num_rows, num_cols, ld_w, static_cast<uint16_t*>(data),
                  [](float x) { return float_to_f16(x); });
      break;
  }
  return packed;
}

void PackedWeight::unpack_row(int64_t row, float* out) const {
  const int64_t offset = (row / kPanelRows) * num_cols_ * kPanelRows + row % kPanelRows;
  switch (type_) {
    case WeightType::kF32: {
      const float* w = reinterpret_cast<const float*>(data_.get()) + offset;
      for (int64_t k = 0; k < num_cols_; ++k) out[k] = w[k * kPanelRows];
      break;
    }
    case WeightType::kBF16: {
      const uint16_t* w = reinterpret_cast<const uint16_t*>(data_.get()) + offset;
      for (int64_t k = 0; k < num_cols_; ++k) out[k] = bf16_to_float(w[k * kPanelRows]);
      break;
    }
    case WeightType::kF16: {
      const uint16_t* w = reinterpret_cast<const uint16_t*>(data_.get()) + offset;
      for (int64_t k = 0; k < num_cols_; ++k) out[k] = f16_to_float(w[k * kPanelRows]);
      break;
    }
  }
}

}  // namespace cadence::kernels
