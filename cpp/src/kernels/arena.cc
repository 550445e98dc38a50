#include "kernels/arena.h"

namespace cadence::kernels {

int64_t ActivationArena::reserve(int64_t num_bytes) {
  const int64_t offset = reserved_bytes_;
  reserved_bytes_ += (num_bytes + kAlignment - 1) / kAlignment * kAlignment;
  return offset;
}

void ActivationArena::commit() {
  if (reserved_bytes_ <= buffer_.size_bytes()) return;
  buffer_.reset();  // release first: the old contents are not kept
  buffer_ = DeviceBuffer(*allocator_, reserved_bytes_);
}

}  // namespace cadence::kernels
