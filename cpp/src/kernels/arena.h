// The activation arena: one device buffer that a forward pass carves into its scratch arrays.
//
// A pass lays out its slices first (clear, then reserve each one: 64-byte aligned offsets),
// then commit() makes the buffer at least that large and the offsets become pointers:
//
//   [ hidden | normed | qkv | ... ]   offsets from reserve(), valid until the next commit()
//
// The buffer is reallocated only when a pass needs more than any pass before it (a larger
// batch than seen so far), so the steady state of a step allocates nothing. The contents are
// not kept across a reallocation.
#pragma once

#include <cstdint>

#include "kernels/allocator.h"

namespace cadence::kernels {

class ActivationArena {
 public:
  static constexpr int64_t kAlignment = 64;

  explicit ActivationArena(Allocator& allocator) : allocator_(&allocator) {}

  // Starts a new layout.
  void clear() { reserved_bytes_ = 0; }
  // Reserves num_bytes (>= 0) and returns their offset in the buffer.
  int64_t reserve(int64_t num_bytes);
  // Grows the buffer to the reserved size (throws std::bad_alloc when the device is out of
  // memory); afterwards at(offset) is valid for every offset reserved since clear().
  void commit();

  void* at(int64_t offset) { return static_cast<unsigned char*>(buffer_.data()) + offset; }
  template <class T>
  T* at(int64_t offset) {
    return static_cast<T*>(at(offset));
  }
  int64_t capacity_bytes() const { return buffer_.size_bytes(); }
  Device device() const { return allocator_->device(); }

 private:
  Allocator* allocator_;
  DeviceBuffer buffer_;
  int64_t reserved_bytes_ = 0;
};

}  // namespace cadence::kernels
