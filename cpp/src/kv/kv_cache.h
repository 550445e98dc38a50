// The memory of the paged KV cache: for each layer a key and a value view as
// kernels::PagedKvCache describes ([num_kv_heads][block_size][head_dim] elements per block, of
// one KvCacheType: fp32, or bf16 / fp16 at 2 bytes), interleaved block-major: memory is
// [block][layer][K, V][...], each view's block_stride spanning all layers. Allocated once; pages
// are touched (and so committed by the OS) only when used. The memory comes from the device's
// Allocator (kernels/allocator.h) and is written and read only by ops.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/allocator.h"
#include "kernels/ops.h"

namespace cadence {

class KvCache {
 public:
  // Throws std::runtime_error naming the size when `allocator`'s device cannot hold it.
  KvCache(kernels::Allocator& allocator, int64_t num_layers, int64_t num_blocks, int64_t block_size,
          int64_t num_kv_heads, int64_t head_dim, kernels::KvCacheType type);

  // Bytes of one block: keys + values of block_size tokens in every layer.
  static int64_t bytes_per_block(int64_t num_layers, int64_t block_size, int64_t num_kv_heads,
                                 int64_t head_dim, kernels::KvCacheType type) {
    return 2 * num_layers * block_size * num_kv_heads * head_dim *
           kernels::kv_cache_type_bytes(type);
  }
  const kernels::PagedKvCache& layer(int64_t layer_index) const { return layers_[layer_index]; }
  // Copies block src's keys and values into block dst, in every layer (copy-on-write).
  void copy_block(const kernels::ExecutionContext& ctx, int32_t src, int32_t dst);
  int64_t num_blocks() const { return num_blocks_; }
  int64_t block_size() const { return block_size_; }
  kernels::KvCacheType type() const { return type_; }
  int64_t size_bytes() const { return size_bytes_; }

 private:
  kernels::DeviceBuffer storage_;
  std::vector<kernels::PagedKvCache> layers_;
  int64_t num_blocks_ = 0;
  int64_t block_size_ = 0;
  kernels::KvCacheType type_ = kernels::KvCacheType::kF32;
  int64_t size_bytes_ = 0;
};

}  // namespace cadence
