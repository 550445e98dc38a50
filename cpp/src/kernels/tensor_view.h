// A non-owning view of a strided array on one device: what the ops of ops.h read and write.
//
//   element (i0, i1, ...) is at  data + (i0 * strides[0] + i1 * strides[1] + ...) elements
//
// Shapes and strides count elements, not bytes. The ops work on rank-2 views of rows
// (shape [num_rows, num_cols], strides [row stride, 1]) and rank-1 views of contiguous
// elements; make them with matrix() / vector().
#pragma once

#include <cstdint>

#include "kernels/device.h"

namespace cadence::kernels {

// Element types of views (activations, indices, KV elements).
enum class DType : uint8_t { kF32, kBF16, kF16, kI32 };

constexpr int64_t dtype_bytes(DType dtype) {
  return dtype == DType::kBF16 || dtype == DType::kF16 ? 2 : 4;
}
constexpr const char* dtype_name(DType dtype) {
  return dtype == DType::kF32    ? "float32"
         : dtype == DType::kBF16 ? "bfloat16"
         : dtype == DType::kF16  ? "float16"
                                 : "int32";
}

struct TensorView {
  static constexpr int kMaxRank = 4;

  void* data = nullptr;
  DType dtype = DType::kF32;
  Device device = kCpuDevice;
  int rank = 0;
  int64_t shape[kMaxRank] = {0, 0, 0, 0};
  int64_t strides[kMaxRank] = {0, 0, 0, 0};

  // [num_rows, num_cols] rows at row_stride elements apart (row_stride >= num_cols).
  static TensorView matrix(void* data, DType dtype, int64_t num_rows, int64_t num_cols,
                           int64_t row_stride, Device device = kCpuDevice) {
    TensorView view;
    view.data = data;
    view.dtype = dtype;
    view.device = device;
    view.rank = 2;
    view.shape[0] = num_rows;
    view.shape[1] = num_cols;
    view.strides[0] = row_stride;
    view.strides[1] = 1;
    return view;
  }
  // fp32 rows, the common case.
  static TensorView rows(float* data, int64_t num_rows, int64_t num_cols, int64_t row_stride,
                         Device device = kCpuDevice) {
    return matrix(data, DType::kF32, num_rows, num_cols, row_stride, device);
  }
  static TensorView rows(const float* data, int64_t num_rows, int64_t num_cols, int64_t row_stride,
                         Device device = kCpuDevice) {
    return rows(const_cast<float*>(data), num_rows, num_cols, row_stride, device);
  }
  // num_elements contiguous elements.
  static TensorView vector(void* data, DType dtype, int64_t num_elements,
                           Device device = kCpuDevice) {
    TensorView view;
    view.data = data;
    view.dtype = dtype;
    view.device = device;
    view.rank = 1;
    view.shape[0] = num_elements;
    view.strides[0] = 1;
    return view;
  }
  static TensorView vector(const float* data, int64_t num_elements, Device device = kCpuDevice) {
    return vector(const_cast<float*>(data), DType::kF32, num_elements, device);
  }
  static TensorView vector(const int32_t* data, int64_t num_elements, Device device = kCpuDevice) {
    return vector(const_cast<int32_t*>(data), DType::kI32, num_elements, device);
  }

  // Rank-2 accessors (rank 1: one row of shape[0] elements).
  int64_t num_rows() const { return rank == 1 ? 1 : shape[0]; }
  int64_t num_cols() const { return rank == 1 ? shape[0] : shape[1]; }
  int64_t row_stride() const { return rank == 1 ? shape[0] : strides[0]; }
  int64_t num_elements() const {
    int64_t n = 1;
    for (int i = 0; i < rank; ++i) n *= shape[i];
    return n;
  }
  // Contiguous rows (no gap between them): the whole view is one run of elements.
  bool is_contiguous() const { return rank == 1 || (strides[1] == 1 && strides[0] == shape[1]); }

  template <class T>
  T* as() const {
    return static_cast<T*>(data);
  }
  // The view of rows [row_begin, row_end) (rank 2) or elements (rank 1).
  TensorView slice_rows(int64_t row_begin, int64_t row_end) const {
    TensorView view = *this;
    view.data = static_cast<unsigned char*>(data) + row_begin * strides[0] * dtype_bytes(dtype);
    view.shape[0] = row_end - row_begin;
    return view;
  }
};

}  // namespace cadence::kernels
