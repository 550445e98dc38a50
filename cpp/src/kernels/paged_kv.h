// The paged KV cache and the batch metadata attention reads, as every backend sees them: plain
// structs of device pointers and sizes (no ops, no standard-library types), shared by ops.h,
// the attention plan and the CPU kernel tables.
#pragma once

#include <cstdint>

namespace cadence::kernels {

// How the paged KV cache stores its elements (EngineConfig::kv_cache_dtype): fp32, or the
// bit patterns of bfloat16 / IEEE fp16 (kernels/half.h), which halve the bytes per token.
enum class KvCacheType { kF32, kBF16, kF16 };

// Bytes of one stored element: 4 or 2.
constexpr int64_t kv_cache_type_bytes(KvCacheType type) {
  return type == KvCacheType::kF32 ? 4 : 2;
}
// "float32", "bfloat16", "float16" (EngineConfig::kv_cache_dtype's names).
constexpr const char* kv_cache_type_name(KvCacheType type) {
  return type == KvCacheType::kF32    ? "float32"
         : type == KvCacheType::kBF16 ? "bfloat16"
                                      : "float16";
}

// Paged KV cache of one layer. Block b, kv head h, slot s (0 <= s < block_size) holds
//   k_cache[b * block_stride_elements() + (h * block_size + s) * head_dim + d]
// and the same for v_cache: each block is [num_kv_heads][block_size][head_dim], keys of one
// head inside a block are contiguous rows; blocks are block_stride_elements() apart. The arrays
// hold elements of `type` (float, or uint16_t bit patterns), so the index above counts elements,
// not bytes.
struct PagedKvCache {
  void* k_cache = nullptr;
  void* v_cache = nullptr;
  KvCacheType type = KvCacheType::kF32;
  int64_t num_blocks = 0;
  int64_t block_size = 0;  // tokens per block
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  // Elements from the start of block b to block b + 1 (of one side, K or V); 0 = the blocks are
  // contiguous (num_kv_heads * block_size * head_dim). KvCache interleaves the layers block by
  // block, so that a block of every layer is one stretch of memory: a short request touches a
  // few (huge) pages, not two per layer.
  int64_t block_stride = 0;

  int64_t block_elements() const { return num_kv_heads * block_size * head_dim; }
  int64_t block_stride_elements() const {
    return block_stride > 0 ? block_stride : block_elements();
  }
};

// The sequences of one batch, as seen by attention. Sequence s owns query rows
// [query_start[s], query_start[s + 1]); those are its newest tokens, whose keys and values
// are already in the cache. Its cache holds context_lens[s] tokens (query tokens
// included) in blocks block_tables[s * max_blocks_per_seq + i], i = token / block_size.
//
//   seq s:  |<------------- context_lens[s] ------------->|
//           [ cached earlier tokens ........ | query rows ]
//   query row r sits at position context_lens[s] - (query_start[s+1] - r) and attends
//   causally to positions 0 ..= its own, or with sliding_window = W > 0 only to the W newest
//   of them, (pos - W, pos] (HF's sliding-window mask). Keys older than every query row's
//   window are never read, so their block table entries need not point at live blocks.
struct AttentionBatch {
  int64_t num_seqs = 0;
  const int32_t* query_start = nullptr;  // num_seqs + 1 entries
  const int32_t* context_lens = nullptr;
  const int32_t* block_tables = nullptr;
  int64_t max_blocks_per_seq = 0;
  int64_t sliding_window = 0;  // 0: full causal attention
  // > 0: each scaled score s becomes softcap * tanh(s / softcap) before the softmax (Gemma 2).
  float softcap = 0.0f;
};

}  // namespace cadence::kernels
