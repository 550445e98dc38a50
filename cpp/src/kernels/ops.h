// Every compute op the model runner uses, declared once and backend-neutral.
//
// Contracts shared by all ops:
// - Activations are fp32, row-major, with an explicit row stride in elements.
// - Ops never allocate on the hot path and never throw; the model runner checks shapes.
// - `pool` spreads the work over the engine's threads; results do not depend on the
//   thread count (every output element is computed by exactly one thread, in a fixed
//   order), which is what makes greedy output batch- and thread-invariant.
// The CPU implementations live in kernels/cpu/ and pick an ISA path at run time
// (see isa.h); a CUDA backend implements the same declarations in cuda/.
#pragma once

#include <cstdint>
#include <memory>

#include "kernels/packed_weight.h"
#include "util/thread_pool.h"

namespace cadence::kernels {

// C[m, n] = sum_k A[m, k] * W[n, k] (+ bias[n] when bias != nullptr).
// A: m rows of w.num_cols() floats, row stride lda. C: m rows of w.num_rows() floats,
// row stride ldc. C must not alias A.
void gemm(ThreadPool& pool, const float* a, int64_t m, int64_t lda, const PackedWeight& w,
          const float* bias, float* c, int64_t ldc);

// out[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * weight[:]. out may alias x.
void rms_norm(ThreadPool& pool, const float* x, int64_t num_rows, int64_t dim, int64_t ld_x,
              const float* weight, float eps, float* out, int64_t ld_out);

// LayerNorm with bias (torch.nn.LayerNorm, biased variance):
// out[r, :] = (x[r, :] - mean) / sqrt(var + eps) * weight[:] + bias[:], mean and var over the
// row's dim floats, computed in two passes in fp32. out may alias x.
void layer_norm(ThreadPool& pool, const float* x, int64_t num_rows, int64_t dim, int64_t ld_x,
                const float* weight, const float* bias, float eps, float* out, int64_t ld_out);

// GELU with the tanh approximation (GPT-2's "gelu_new", torch's approximate="tanh"), over
// num_elements contiguous floats: out = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
// Every element is computed the same way wherever it sits. out may alias x.
void gelu_tanh(ThreadPool& pool, const float* x, int64_t num_elements, float* out);

// out = max(x, 0) over num_elements contiguous floats (NaN passes through). out may alias x.
void relu(ThreadPool& pool, const float* x, int64_t num_elements, float* out);

// x[r, :] += y[r, :] for contiguous rows of `dim` floats.
void add_inplace(ThreadPool& pool, float* x, const float* y, int64_t num_elements);

// SwiGLU: out[r, j] = silu(gate_up[r, j]) * gate_up[r, inter + j] for j < inter,
// where gate_up rows hold [gate | up] (2 * inter floats, row stride ld_gate_up).
void silu_mul(ThreadPool& pool, const float* gate_up, int64_t num_rows, int64_t inter,
              int64_t ld_gate_up, float* out, int64_t ld_out);

// GeGLU (tanh approximation, Gemma): out[r, j] = gelu_tanh(gate_up[r, j]) * gate_up[r, inter + j],
// same layout as silu_mul.
void gelu_tanh_mul(ThreadPool& pool, const float* gate_up, int64_t num_rows, int64_t inter,
                   int64_t ld_gate_up, float* out, int64_t ld_out);

// Rotary embedding, NeoX/HF layout: within each head, element i pairs with i + rot_dim/2
// for i < rot_dim/2 (elements at and past rot_dim are left alone).
// x: num_tokens rows, each num_heads * head_dim floats at row stride ld_x (rotated in place).
// cos_sin: for position p, cos_sin[p * rot_dim + i] = cos(p * inv_freq[i]) and
// cos_sin[p * rot_dim + rot_dim/2 + i] = sin(p * inv_freq[i]), i < rot_dim/2.
void rope_neox(ThreadPool& pool, float* x, int64_t num_tokens, int64_t num_heads, int64_t head_dim,
               int64_t rot_dim, int64_t ld_x, const int32_t* positions, const float* cos_sin);

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

// Writes the keys/values of num_tokens new tokens into the cache. Token t goes to slot
// slot_mapping[t] = block_id * block_size + offset_in_block; a negative slot skips token t
// (padding). k and v rows hold num_kv_heads * head_dim floats at row stride ld_kv. A 2-byte
// cache type stores each value rounded to nearest even, bit for bit float_to_bf16 /
// float_to_f16 (kernels/half.h); fp32 is copied exactly.
void write_kv_cache(ThreadPool& pool, const float* k, const float* v, int64_t num_tokens,
                    int64_t ld_kv, const int32_t* slot_mapping, const PagedKvCache& cache);

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

// Grouped-query attention over the paged cache: query head h reads kv head
// h / (num_heads / num_kv_heads). q: rows of num_heads * head_dim floats (stride ld_q);
// out: rows of num_heads * head_dim floats (stride ld_out). scale multiplies q·k.
// bf16 / fp16 keys and values are widened to fp32 as they are read (exact), so the output is
// bit for bit that of an fp32 cache holding the same (rounded) values; compute is fp32.
void paged_attention(ThreadPool& pool, const float* q, int64_t ld_q, int64_t num_heads,
                     const AttentionBatch& batch, const PagedKvCache& cache, float scale,
                     float* out, int64_t ld_out);

}  // namespace cadence::kernels
