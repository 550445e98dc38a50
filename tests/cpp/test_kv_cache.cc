// KvCache: sizes per element type, the per-layer views, and copy_block (copy-on-write) for
// every KV cache type.
#include <cstdint>
#include <cstring>
#include <vector>

#include "kv/kv_cache.h"
#include "test_harness.h"

using cadence::KvCache;
using cadence::kernels::KvCacheType;

TEST(kv_cache_sizes_and_copy_block_for_every_type) {
  cadence::ThreadPool pool(1);
  const cadence::kernels::ExecutionContext ctx = cadence::kernels::cpu_context(pool);
  const int64_t num_layers = 3, num_blocks = 5, block_size = 4, num_kv_heads = 2, head_dim = 6;
  const int64_t fp32_block_bytes =
      KvCache::bytes_per_block(num_layers, block_size, num_kv_heads, head_dim, KvCacheType::kF32);
  CHECK(fp32_block_bytes == 2 * num_layers * block_size * num_kv_heads * head_dim * 4);
  for (KvCacheType type : {KvCacheType::kF32, KvCacheType::kBF16, KvCacheType::kF16}) {
    const int64_t elem_bytes = cadence::kernels::kv_cache_type_bytes(type);
    const int64_t block_bytes =
        KvCache::bytes_per_block(num_layers, block_size, num_kv_heads, head_dim, type);
    CHECK(block_bytes == fp32_block_bytes * elem_bytes / 4);
    KvCache cache(*ctx.allocator, num_layers, num_blocks, block_size, num_kv_heads, head_dim, type);
    CHECK(cache.type() == type);
    CHECK(cache.size_bytes() == block_bytes * num_blocks);
    // Every layer's K and V views: geometry, the block-major interleave (block b of every
    // layer and side is one stretch), then a distinct byte per position.
    const int64_t block_side_bytes = num_kv_heads * block_size * head_dim * elem_bytes;
    const int64_t stride_bytes = 2 * num_layers * block_side_bytes;
    std::vector<unsigned char*> sides;
    for (int64_t l = 0; l < num_layers; ++l) {
      const cadence::kernels::PagedKvCache& layer = cache.layer(l);
      CHECK(layer.type == type);
      CHECK(layer.num_blocks == num_blocks && layer.block_size == block_size);
      CHECK(layer.num_kv_heads == num_kv_heads && layer.head_dim == head_dim);
      CHECK(layer.block_stride_elements() * elem_bytes == stride_bytes);
      sides.push_back(static_cast<unsigned char*>(layer.k_cache));
      sides.push_back(static_cast<unsigned char*>(layer.v_cache));
    }
    for (size_t i = 0; i + 1 < sides.size(); ++i)
      CHECK(sides[i + 1] - sides[i] == block_side_bytes);
    CHECK(stride_bytes * num_blocks == cache.size_bytes());
    auto at = [&](size_t side, int64_t block, int64_t byte) {
      return sides[side] + block * stride_bytes + byte;
    };
    for (size_t i = 0; i < sides.size(); ++i) {
      for (int64_t blk = 0; blk < num_blocks; ++blk) {
        for (int64_t b = 0; b < block_side_bytes; ++b) {
          *at(i, blk, b) = static_cast<unsigned char>((blk * block_side_bytes + b) * 7 + i);
        }
      }
    }
    cache.copy_block(ctx, 3, 1);
    int num_bad = 0;
    for (size_t i = 0; i < sides.size(); ++i) {
      for (int64_t blk = 0; blk < num_blocks; ++blk) {
        const int64_t source = blk == 1 ? 3 : blk;
        for (int64_t b = 0; b < block_side_bytes; ++b) {
          num_bad +=
              *at(i, blk, b) != static_cast<unsigned char>((source * block_side_bytes + b) * 7 + i);
        }
      }
    }
    CHECK(num_bad == 0);
  }
}

TEST_MAIN()
