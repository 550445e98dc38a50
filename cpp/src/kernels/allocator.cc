#include "kernels/allocator.h"

#include <cstdlib>
#include <cstring>

#include "util/large_alloc.h"

namespace cadence::kernels {

namespace {

class HostAllocator final : public Allocator {
 public:
  Device device() const override { return kCpuDevice; }
  void* allocate(int64_t num_bytes) override {
    return allocate_large(static_cast<size_t>(num_bytes));
  }
  void deallocate(void* data, int64_t /*num_bytes*/) override { std::free(data); }
  void copy_from_host(void* dst, const void* src, int64_t num_bytes) override {
    if (num_bytes > 0) std::memcpy(dst, src, static_cast<size_t>(num_bytes));
  }
  void copy_to_host(void* dst, const void* src, int64_t num_bytes) override {
    if (num_bytes > 0) std::memcpy(dst, src, static_cast<size_t>(num_bytes));
  }
};

}  // namespace

Allocator& host_allocator() {
  static HostAllocator allocator;
  return allocator;
}

DeviceBuffer::DeviceBuffer(Allocator& allocator, int64_t num_bytes) {
  if (num_bytes <= 0) return;
  data_ = allocator.allocate(num_bytes);
  allocator_ = &allocator;
  size_bytes_ = num_bytes;
}

DeviceBuffer DeviceBuffer::from_host(Allocator& allocator, const void* src, int64_t num_bytes) {
  DeviceBuffer buffer(allocator, num_bytes);
  if (num_bytes > 0) allocator.copy_from_host(buffer.data_, src, num_bytes);
  return buffer;
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  if (this != &other) {
    reset();
    allocator_ = std::exchange(other.allocator_, nullptr);
    data_ = std::exchange(other.data_, nullptr);
    size_bytes_ = std::exchange(other.size_bytes_, 0);
  }
  return *this;
}

void DeviceBuffer::reset() {
  if (allocator_ != nullptr && data_ != nullptr) allocator_->deallocate(data_, size_bytes_);
  allocator_ = nullptr;
  data_ = nullptr;
  size_bytes_ = 0;
}

}  // namespace cadence::kernels
