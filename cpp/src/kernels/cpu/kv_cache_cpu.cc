// The CPU's paged KV-cache writes: plain copies or round-to-nearest-even conversions, no ISA
// table needed.
#include <cstring>

#include "kernels/cpu/ops_cpu.h"
#include "kernels/cpu/work_split.h"
#include "kernels/half.h"

namespace cadence::kernels::cpu {
namespace {

// One row of n fp32 values into a cache of element type T (round to nearest even).
template <KvCacheType T>
void store_kv_row(const float* src, int64_t n, void* dst) {
  if constexpr (T == KvCacheType::kF32) {
    std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(float));
  } else {
    auto* out = static_cast<uint16_t*>(dst);
    for (int64_t i = 0; i < n; ++i) {
      out[i] = T == KvCacheType::kBF16 ? float_to_bf16(src[i]) : float_to_f16(src[i]);
    }
  }
}

template <KvCacheType T>
void write_kv_cache_typed(ThreadPool& pool, const float* k, const float* v, int64_t num_tokens,
                          int64_t ld_kv, const int32_t* slot_mapping, const PagedKvCache& cache) {
  const int64_t head_dim = cache.head_dim;
  const int64_t block_size = cache.block_size;
  const int64_t elem_bytes = kv_cache_type_bytes(T);
  auto* k_cache = static_cast<unsigned char*>(cache.k_cache);
  auto* v_cache = static_cast<unsigned char*>(cache.v_cache);
  const int64_t grain = row_grain(2 * cache.num_kv_heads * head_dim);
  pool.parallel_for_grain(num_tokens, grain, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t slot = slot_mapping[t];
      if (slot < 0) continue;
      const int64_t block = slot / block_size;
      const int64_t offset = slot % block_size;
      for (int64_t h = 0; h < cache.num_kv_heads; ++h) {
        const int64_t dst =
            block * cache.block_stride_elements() + (h * block_size + offset) * head_dim;
        store_kv_row<T>(k + t * ld_kv + h * head_dim, head_dim, k_cache + dst * elem_bytes);
        store_kv_row<T>(v + t * ld_kv + h * head_dim, head_dim, v_cache + dst * elem_bytes);
      }
    }
  });
}

}  // namespace

void write_kv_cache(ThreadPool& pool, const float* k, const float* v, int64_t num_tokens,
                    int64_t ld_kv, const int32_t* slot_mapping, const PagedKvCache& cache) {
  switch (cache.type) {
    case KvCacheType::kF32:
      write_kv_cache_typed<KvCacheType::kF32>(pool, k, v, num_tokens, ld_kv, slot_mapping, cache);
      return;
    case KvCacheType::kBF16:
      write_kv_cache_typed<KvCacheType::kBF16>(pool, k, v, num_tokens, ld_kv, slot_mapping, cache);
      return;
    case KvCacheType::kF16:
      write_kv_cache_typed<KvCacheType::kF16>(pool, k, v, num_tokens, ld_kv, slot_mapping, cache);
      return;
  }
}

}  // namespace cadence::kernels::cpu
