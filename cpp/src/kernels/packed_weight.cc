#include "kernels/packed_weight.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>

#include "kernels/half.h"

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
    case WeightType::kQ4:
      return "q4";
    case WeightType::kQ8:
      return "q8";
  }
  return "unknown";
}

PackedWeight PackedWeight::pack(const float* w, int64_t num_rows, int64_t num_cols, int64_t ld_w,
                                WeightType type, Allocator& allocator) {
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
  packed.storage_ = DeviceBuffer(allocator, num_elements * element_bytes);
  void* data = packed.storage_.data();
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
    case WeightType::kQ4:
    case WeightType::kQ8:
      break;  // refused above: quantized weights come from pack_quantized
  }
  return packed;
}

void PackedWeight::unpack_row(int64_t row, float* out) const {
  if (is_quantized()) {
    unpack_quantized_row(row, out);
    return;
  }
  const int64_t offset = (row / kPanelRows) * num_cols_ * kPanelRows + row % kPanelRows;
  switch (type_) {
    case WeightType::kF32: {
      const float* w = storage_.as<float>() + offset;
      for (int64_t k = 0; k < num_cols_; ++k) out[k] = w[k * kPanelRows];
      break;
    }
    case WeightType::kBF16: {
      const uint16_t* w = storage_.as<uint16_t>() + offset;
      for (int64_t k = 0; k < num_cols_; ++k) out[k] = bf16_to_float(w[k * kPanelRows]);
      break;
    }
    case WeightType::kF16: {
      const uint16_t* w = storage_.as<uint16_t>() + offset;
      for (int64_t k = 0; k < num_cols_; ++k) out[k] = f16_to_float(w[k * kPanelRows]);
      break;
    }
    case WeightType::kQ4:
    case WeightType::kQ8:
      break;
  }
}

PackedWeight PackedWeight::pack_quantized(const QuantizedRows& q, Allocator& allocator) {
  const int64_t block = q.block_cols;
  if (q.num_rows < 0 || q.num_cols < 0 || (block != 16 && block != 32) || q.num_cols % block != 0 ||
      static_cast<int64_t>(q.codes.size()) != q.num_rows * q.num_cols ||
      static_cast<int64_t>(q.scales.size()) != q.num_rows * (q.num_cols / block) ||
      q.mins.size() != q.scales.size()) {
    throw std::invalid_argument(
        std::string(__FILE__) + ":" + std::to_string(__LINE__) +
        ": PackedWeight::pack_quantized: bad shape num_rows=" + std::to_string(q.num_rows) +
        " num_cols=" + std::to_string(q.num_cols) + " block_cols=" + std::to_string(block));
  }
  PackedWeight packed;
  packed.num_rows_ = q.num_rows;
  packed.num_cols_ = q.num_cols;
  const int max_code = q.max_code();
  packed.type_ = max_code < 16 ? WeightType::kQ4 : WeightType::kQ8;
  packed.block_cols_ = block;
  packed.codes_fit_7_bits_ = max_code < 128;
  packed.has_f16_scales_ = true;
  for (size_t i = 0; i < q.scales.size() && packed.has_f16_scales_; ++i) {
    packed.has_f16_scales_ = f16_to_float(float_to_f16(q.scales[i])) == q.scales[i] &&
                             f16_to_float(float_to_f16(q.mins[i])) == q.mins[i];
  }
  const int64_t total = packed.size_bytes();
  if (total == 0) return packed;
  packed.storage_ = DeviceBuffer(allocator, total);
  auto* data = packed.storage_.as<unsigned char>();
  std::memset(data, 0, static_cast<size_t>(total));

  const int64_t num_blocks = q.num_cols / block;
  const int64_t record = packed.record_bytes();
  const int64_t code_bytes = packed.type_ == WeightType::kQ4 ? block * 8 : block * 16;
  for (int64_t row = 0; row < q.num_rows; ++row) {
    const int64_t r = row % kPanelRows;
    unsigned char* panel = data + (row / kPanelRows) * packed.panel_bytes();
    for (int64_t b = 0; b < num_blocks; ++b) {
      unsigned char* rec = panel + b * record;
      const uint8_t* codes = q.codes.data() + row * q.num_cols + b * block;
      for (int64_t k = 0; k < block; ++k) {
        if (packed.type_ == WeightType::kQ8) {
          rec[(k / 4) * 64 + r * 4 + k % 4] = codes[k];
        } else {  // k / 8 picks the 64-byte group, bit 2 of k the nibble
          const int64_t at = (k / 8) * 64 + r * 4 + k % 4;
          rec[at] = static_cast<unsigned char>(rec[at] | (codes[k] << ((k % 8) / 4 * 4)));
        }
      }
      const float scale = q.scales[row * num_blocks + b];
      const float min = q.mins[row * num_blocks + b];
      unsigned char* scales = rec + code_bytes;
      if (packed.has_f16_scales_) {
        const uint16_t s16 = float_to_f16(scale), m16 = float_to_f16(min);
        std::memcpy(scales + r * 2, &s16, 2);
        std::memcpy(scales + kPanelRows * 2 + r * 2, &m16, 2);
      } else {
        std::memcpy(scales + r * 4, &scale, 4);
        std::memcpy(scales + kPanelRows * 4 + r * 4, &min, 4);
      }
    }
  }
  return packed;
}

void PackedWeight::unpack_quantized_row(int64_t row, float* out) const {
  const int64_t r = row % kPanelRows;
  const unsigned char* panel = storage_.as<unsigned char>() + (row / kPanelRows) * panel_bytes();
  const int64_t code_bytes = type_ == WeightType::kQ4 ? block_cols_ * 8 : block_cols_ * 16;
  for (int64_t b = 0; b < num_cols_ / block_cols_; ++b) {
    const unsigned char* rec = panel + b * record_bytes();
    const unsigned char* scales = rec + code_bytes;
    float scale, min;
    if (has_f16_scales_) {
      uint16_t s16, m16;
      std::memcpy(&s16, scales + r * 2, 2);
      std::memcpy(&m16, scales + kPanelRows * 2 + r * 2, 2);
      scale = f16_to_float(s16);
      min = f16_to_float(m16);
    } else {
      std::memcpy(&scale, scales + r * 4, 4);
      std::memcpy(&min, scales + kPanelRows * 4 + r * 4, 4);
    }
    for (int64_t k = 0; k < block_cols_; ++k) {
      int code;
      if (type_ == WeightType::kQ8) {
        code = rec[(k / 4) * 64 + r * 4 + k % 4];
      } else {
        code = (rec[(k / 8) * 64 + r * 4 + k % 4] >> ((k % 8) / 4 * 4)) & 0x0F;
      }
      out[b * block_cols_ + k] = std::fma(scale, static_cast<float>(code), min);
    }
  }
}

}  // namespace cadence::kernels
