#include "kv/kv_cache.h"

#include <new>
#include <stdexcept>
#include <string>

namespace cadence {

KvCache::KvCache(kernels::Allocator& allocator, int64_t num_layers, int64_t num_blocks,
                 int64_t block_size, int64_t num_kv_heads, int64_t head_dim,
                 kernels::KvCacheType type)
    : num_blocks_(num_blocks), block_size_(block_size), type_(type) {
  // Block-major: [block][layer][K, V][num_kv_heads][block_size][head_dim], so the pages a
  // block uses in every layer are one stretch (with 2 MiB pages, a short request commits one
  // or two pages instead of one per layer and side).
  const int64_t side_bytes =
      num_kv_heads * block_size * head_dim * kernels::kv_cache_type_bytes(type);
  size_bytes_ = bytes_per_block(num_layers, block_size, num_kv_heads, head_dim, type) * num_blocks;
  // Uninitialized, so untouched host pages stay uncommitted; every slot is written by
  // write_kv_cache before attention reads it.
  try {
    storage_ = kernels::DeviceBuffer(allocator, size_bytes_);
  } catch (const std::bad_alloc&) {
    throw std::runtime_error("cannot allocate the KV cache: " + std::to_string(size_bytes_) +
                             " bytes on " + kernels::device_name(allocator.device()));
  }
  auto* base = storage_.as<unsigned char>();
  for (int64_t l = 0; l < num_layers; ++l) {
    kernels::PagedKvCache layer;
    layer.k_cache = base + (2 * l) * side_bytes;
    layer.v_cache = base + (2 * l + 1) * side_bytes;
    layer.block_stride = 2 * num_layers * num_kv_heads * block_size * head_dim;
    layer.type = type;
    layer.num_blocks = num_blocks;
    layer.block_size = block_size;
    layer.num_kv_heads = num_kv_heads;
    layer.head_dim = head_dim;
    layers_.push_back(layer);
  }
}

void KvCache::copy_block(const kernels::ExecutionContext& ctx, int32_t src, int32_t dst) {
  for (const kernels::PagedKvCache& layer : layers_) kernels::copy_kv_block(ctx, layer, src, dst);
}

}  // namespace cadence
