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

BumpAllocator::~BumpAllocator() {
  for (const Chunk& chunk : chunks_) parent_.deallocate(chunk.data, chunk.num_bytes);
}

void* BumpAllocator::allocate(int64_t num_bytes) {
  const int64_t aligned_bytes = (num_bytes + 63) / 64 * 64;
  if (end_ - next_ < aligned_bytes) {
    if (aligned_bytes > kChunkBytes) {  // a chunk of its own; the current one stays open
      void* data = parent_.allocate(aligned_bytes);
      chunks_.push_back({data, aligned_bytes});
      used_bytes_ += aligned_bytes;
      reserved_bytes_ += aligned_bytes;
      return data;
    }
    void* data = parent_.allocate(kChunkBytes);  // untouched pages are not committed
    chunks_.push_back({data, kChunkBytes});
    reserved_bytes_ += kChunkBytes;
    next_ = static_cast<unsigned char*>(data);
    end_ = next_ + kChunkBytes;
  }
  void* data = next_;
  next_ += aligned_bytes;
  used_bytes_ += aligned_bytes;
  return data;
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
