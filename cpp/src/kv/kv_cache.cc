#include "kv/kv_cache.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

#include "util/large_alloc.h"

namespace cadence {

void KvCache::FreeDeleter::operator()(unsigned char* p) const { std::free(p); }

KvCache::KvCache(int64_t num_layers, int64_t num_blocks, int64_t block_size, int64_t num_kv_heads,
                 int64_t head_dim, kernels::KvCacheType type)
    : num_blocks_(num_blocks), block_size_(block_size), type_(type) {
  // Block-major: [block][layer][K, V][num_kv_heads][block_size][head_dim], so the pages a
  // block uses in every layer are one stretch (with 2 MiB pages, a short request commits one
  // or two pages instead of one per layer and side).
  const int64_t side_bytes =
      num_kv_heads * block_size * head_dim * kernels::kv_cache_type_bytes(type);
  size_bytes_ = bytes_per_block(num_layers, block_size, num_kv_heads, head_dim, type) * num_blocks;
  // Uninitialized, so untouched pages stay uncommitted; every slot is written by
  // write_kv_cache before attention reads it.
  void* memory = nullptr;
  try {
    memory = allocate_large(static_cast<size_t>(size_bytes_));
  } catch (const std::bad_alloc&) {
    throw std::runtime_error("cannot allocate the KV cache: " + std::to_string(size_bytes_) +
                             " bytes");
  }
  storage_.reset(static_cast<unsigned char*>(memory));
  unsigned char* base = storage_.get();
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

void KvCache::copy_block(int32_t src, int32_t dst) {
  for (const kernels::PagedKvCache& layer : layers_) {
    const int64_t elem_bytes = kernels::kv_cache_type_bytes(layer.type);
    const int64_t stride_bytes = layer.block_stride_elements() * elem_bytes;
    const auto bytes = static_cast<size_t>(layer.block_elements() * elem_bytes);
    auto* k = static_cast<unsigned char*>(layer.k_cache);
    auto* v = static_cast<unsigned char*>(layer.v_cache);
    std::memcpy(k + dst * stride_bytes, k + src * stride_bytes, bytes);
    std::memcpy(v + dst * stride_bytes, v + src * stride_bytes, bytes);
  }
}

}  // namespace cadence
