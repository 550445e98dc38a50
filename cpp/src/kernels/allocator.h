// Per-device memory: everything a model keeps on its device (weights, the KV cache, the
// activation arena, the logits buffer) is allocated through an Allocator, so that a backend
// on another device (cuda/) provides its own and the model code does not change.
//
// Allocation happens at load time or when a buffer first grows; never in the steady state of
// a step (the hot path). Running out is std::bad_alloc from allocate(); callers that can name
// what they were allocating (KvCache, the loader) turn it into an error with the sizes.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "kernels/device.h"
#include "kernels/tensor_view.h"

namespace cadence::kernels {

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual Device device() const = 0;
  // Uninitialized memory of num_bytes (> 0), 64-byte aligned. Throws std::bad_alloc.
  virtual void* allocate(int64_t num_bytes) = 0;
  // Releases memory from allocate(num_bytes) of this allocator.
  virtual void deallocate(void* data, int64_t num_bytes) = 0;
  // Copies num_bytes between host memory and this allocator's memory (synchronous).
  virtual void copy_from_host(void* dst, const void* src, int64_t num_bytes) = 0;
  virtual void copy_to_host(void* dst, const void* src, int64_t num_bytes) = 0;
};

// The host's allocator: util/large_alloc.h (buffers of a megabyte or more 2 MiB aligned and on
// transparent huge pages; untouched pages are not committed), copies are memcpy. Thread-safe.
Allocator& host_allocator();

// Packs many long-lived buffers (a model's weights) back to back, 64-byte aligned, in chunks of
// at least kChunkBytes from a parent allocator; a buffer larger than that gets a chunk of its
// own. deallocate() is a no-op: the chunks go when the allocator is destroyed, so it must
// outlive every buffer from it. Why: on 2 MiB pages a 1.1 MiB matrix allocated on its own
// commits a whole page (SmolLM2's 30 gate_up matrices wasted 27 MiB that way); packed, only the
// last page of a chunk is partly unused. Not thread-safe (the loader is one thread).
class BumpAllocator final : public Allocator {
 public:
  static constexpr int64_t kChunkBytes = int64_t{64} << 20;

  explicit BumpAllocator(Allocator& parent) : parent_(parent) {}
  ~BumpAllocator() override;
  BumpAllocator(const BumpAllocator&) = delete;
  BumpAllocator& operator=(const BumpAllocator&) = delete;

  Device device() const override { return parent_.device(); }
  void* allocate(int64_t num_bytes) override;
  void deallocate(void* /*data*/, int64_t /*num_bytes*/) override {}
  void copy_from_host(void* dst, const void* src, int64_t num_bytes) override {
    parent_.copy_from_host(dst, src, num_bytes);
  }
  void copy_to_host(void* dst, const void* src, int64_t num_bytes) override {
    parent_.copy_to_host(dst, src, num_bytes);
  }
  // Bytes handed out (alignment padding included) and bytes of the chunks.
  int64_t used_bytes() const { return used_bytes_; }
  int64_t reserved_bytes() const { return reserved_bytes_; }

 private:
  struct Chunk {
    void* data;
    int64_t num_bytes;
  };
  Allocator& parent_;
  std::vector<Chunk> chunks_;
  unsigned char* next_ = nullptr;  // free space of the current chunk: [next_, end_)
  unsigned char* end_ = nullptr;
  int64_t used_bytes_ = 0;
  int64_t reserved_bytes_ = 0;
};

// An owning, move-only block of device memory from one Allocator.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  // num_bytes uninitialized bytes (0: an empty buffer). Throws std::bad_alloc.
  DeviceBuffer(Allocator& allocator, int64_t num_bytes);
  // A buffer holding a copy of num_bytes host bytes.
  static DeviceBuffer from_host(Allocator& allocator, const void* src, int64_t num_bytes);
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(DeviceBuffer&& other) noexcept { *this = std::move(other); }
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void reset();
  void* data() { return data_; }
  const void* data() const { return data_; }
  template <class T>
  T* as() {
    return static_cast<T*>(data_);
  }
  template <class T>
  const T* as() const {
    return static_cast<const T*>(data_);
  }
  int64_t size_bytes() const { return size_bytes_; }
  bool empty() const { return size_bytes_ == 0; }
  Device device() const { return allocator_ != nullptr ? allocator_->device() : kCpuDevice; }
  Allocator* allocator() const { return allocator_; }

 private:
  Allocator* allocator_ = nullptr;
  void* data_ = nullptr;
  int64_t size_bytes_ = 0;
};

// A device array of fp32 values made at load time from host values (norm weights, biases,
// rotary and position tables): the data pointer the ops take, and the count.
class DeviceFloats {
 public:
  DeviceFloats() = default;
  DeviceFloats(Allocator& allocator, const float* values, int64_t num_values)
      : buffer_(DeviceBuffer::from_host(allocator, values, num_values * 4)),
        num_values_(num_values) {}
  DeviceFloats(Allocator& allocator, const std::vector<float>& values)
      : DeviceFloats(allocator, values.data(), static_cast<int64_t>(values.size())) {}

  const float* data() const { return num_values_ > 0 ? buffer_.as<float>() : nullptr; }
  // All values as a vector view (an empty view when there are none).
  TensorView view() const {
    return num_values_ > 0 ? TensorView::vector(data(), num_values_, buffer_.device())
                           : TensorView();
  }
  // The values as [num_values / num_cols, num_cols] contiguous rows.
  TensorView rows(int64_t num_cols) const {
    return TensorView::rows(data(), num_values_ / num_cols, num_cols, num_cols, buffer_.device());
  }
  int64_t size() const { return num_values_; }
  bool empty() const { return num_values_ == 0; }
  int64_t size_bytes() const { return buffer_.size_bytes(); }

 private:
  DeviceBuffer buffer_;
  int64_t num_values_ = 0;
};

}  // namespace cadence::kernels
