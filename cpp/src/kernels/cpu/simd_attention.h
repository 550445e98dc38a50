// Paged GQA attention for one AttentionItem (see kernel_table.h), written once against a SIMD
// traits type V and instantiated per ISA.
//
// An item is (sequence, kv head, query rows [r0, r1), query heads [h0, h1)); its "pairs" are
// (row, head), numbered row-major. Keys are visited in ascending chunks of absolute positions
//
//   chunk c = positions [64 c, 64 c + 64)   (gathered from however many cache blocks hold them)
//
// For each chunk: S = scale * Q_pairs . K_chunk^T (register tiles of pairs x 4 keys, each dot
// one FMA chain over head_dim then a fixed horizontal tree), soft-capped when the batch asks
// (S = cap * tanh(S / cap)), then per pair an online-softmax
// step over the keys it may see (position <= its own) and acc = acc * alpha + sum_j p_j V_j.
// Chunks are grouped in partitions of kAttentionPartitionKeys positions whose softmax states
// are merged in ascending order, so one long decode row can be spread over threads.
// Every pair runs the same instruction sequence whatever else shares its item, and chunk and
// partition boundaries are fixed positions, so a row's output does not depend on the batch.
//
// Sliding window W: a row at position pos sees keys [lo, pos], lo = pos - W + 1. Chunks and
// partitions wholly outside every row's window are skipped; in a chunk that starts before a
// row's lo, the row's scores of the keys before lo are set to -inf (p = 0) and its P.V starts
// at lo. Keys before the first visible key of the chunk's first row are never read (their
// slots compute a repeat of that key, then are masked). A state that saw no key merges as a
// no-op (merge_state), so skipped partitions cannot change a row's bits.
//
// KV cache type T (PagedKvCache::type): every K and V element is widened to fp32 where it is
// loaded (load_kv, widen_kv: exact) and everything after that is the fp32 code, so an item over
// a bf16 / fp16 cache computes bit for bit what it computes over an fp32 cache holding the
// same rounded values.
#pragma once

#include <cstdint>

#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/simd_common.h"
#include "kernels/cpu/simd_elementwise.h"

namespace cadence::kernels::cpu::simd {

constexpr int kAttnKeysPerTile = 4;
// Registers of head_dim per pair accumulated at once in the P.V step (x kPairsPerTile pairs).
constexpr int kAttnPvRegs = 4;

// The stored element of a KV cache type: float, or the bit pattern of a bf16 / fp16.
template <KvCacheType T>
struct KvElem {
  using Type = uint16_t;
};
template <>
struct KvElem<KvCacheType::kF32> {
  using Type = float;
};

// V::kWidth consecutive stored K/V elements widened to fp32 (exact; V::load_bf16 / load_f16
// widen as kernels/half.h does).
template <class V, KvCacheType T>
typename V::Reg load_kv(const typename KvElem<T>::Type* p) {
  if constexpr (T == KvCacheType::kF32) {
    return V::load(p);
  } else if constexpr (T == KvCacheType::kBF16) {
    return V::load_bf16(p);
  } else {
    return V::load_f16(p);
  }
}

// One stored K/V element widened to fp32 (the head_dim tails), bit for bit bf16_to_float /
// f16_to_float of kernels/half.h and so the SIMD loads above. Restated here, as a template of
// V, so that no non-template inline function is emitted with this file's ISA flags (see
// kernel_table.h); tests/cpp/test_attention_kernel.cc checks tails on every 16-bit pattern.
template <class V, KvCacheType T>
float widen_kv(typename KvElem<T>::Type x) {
  if constexpr (T == KvCacheType::kF32) {
    return x;
  } else {
    uint32_t u = 0;
    if constexpr (T == KvCacheType::kBF16) {
      u = uint32_t{x} << 16;
    } else {
      const uint32_t sign = static_cast<uint32_t>(x & 0x8000u) << 16;
      const uint32_t exp = (x >> 10) & 0x1Fu;
      const uint32_t mant = x & 0x3FFu;
      if (exp == 0x1F) {
        u = sign | 0x7F800000u | (mant != 0 ? 0x00400000u : 0u) | (mant << 13);  // quiet NaN
      } else if (exp != 0) {
        u = sign | ((exp + 112u) << 23) | (mant << 13);
      } else {
        // Zero or subnormal: mant * 2^-24, exact in fp32.
        const float magnitude = static_cast<float>(mant) * 5.9604644775390625e-8f;
        __builtin_memcpy(&u, &magnitude, 4);
        u |= sign;
      }
    }
    float f;
    __builtin_memcpy(&f, &u, 4);
    return f;
  }
}

// out[p * out_stride + j] = scale * dot(q[p], k[j]), p < P, j < num_keys (1..4). Keys past
// num_keys are computed on a repeated key and dropped, so every dot is the same chain.
template <class V, KvCacheType T, int P>
void dot_tile(const float* const* q, const typename KvElem<T>::Type* const* k, int64_t num_keys,
              int64_t head_dim, float scale, float* out, int64_t out_stride) {
  using Reg = typename V::Reg;
  using Elem = typename KvElem<T>::Type;
  constexpr int kW = V::kWidth;
  constexpr int kJ = kAttnKeysPerTile;
  const Elem* kr[kJ];
  CADENCE_UNROLL for (int j = 0; j < kJ; ++j) kr[j] = k[j < num_keys ? j : num_keys - 1];
  Reg acc[P][kJ];
  CADENCE_UNROLL for (int p = 0; p < P; ++p) {
    CADENCE_UNROLL for (int j = 0; j < kJ; ++j) acc[p][j] = V::zero();
  }
  int64_t d = 0;
  for (; d + kW <= head_dim; d += kW) {
    Reg qv[P];
    CADENCE_UNROLL for (int p = 0; p < P; ++p) qv[p] = V::load(q[p] + d);
    CADENCE_UNROLL for (int j = 0; j < kJ; ++j) {
      const Reg kv = load_kv<V, T>(kr[j] + d);
      CADENCE_UNROLL for (int p = 0; p < P; ++p) acc[p][j] = V::fmadd(qv[p], kv, acc[p][j]);
    }
  }
  // Full 4-key groups are stored whole (the scores buffer has room up to the chunk size, and
  // slots past num_keys are ignored), so the common case needs no scalar loop.
  CADENCE_UNROLL for (int p = 0; p < P; ++p) {
    float* o = out + p * out_stride;
    V::reduce_add4(acc[p][0], acc[p][1], acc[p][2], acc[p][3], o);
    if (d < head_dim) {
      for (int j = 0; j < num_keys; ++j) {
        float tail = 0.0f;
        for (int64_t t = d; t < head_dim; ++t) {
          tail = __builtin_fmaf(q[p][t], widen_kv<V, T>(kr[j][t]), tail);
        }
        o[j] += tail;
      }
    }
    CADENCE_UNROLL for (int j = 0; j < kJ; ++j) o[j] *= scale;
  }
}

// Scores of pairs [p_begin, p_end) against keys [0, num_keys) of a chunk, P pairs at a time.
template <class V, KvCacheType T, int P>
void dot_rows(const float* const* q_pairs, const typename KvElem<T>::Type* const* k,
              int64_t num_keys, int64_t head_dim, float scale, float* scores, int64_t p_begin,
              int64_t p_end) {
  int64_t p = p_begin;
  if constexpr (P > 1) {
    for (; p + P <= p_end; p += P) {
      for (int64_t j = 0; j < num_keys; j += kAttnKeysPerTile) {
        const int64_t nk = num_keys - j < kAttnKeysPerTile ? num_keys - j : kAttnKeysPerTile;
        dot_tile<V, T, P>(q_pairs + p, k + j, nk, head_dim, scale,
                          scores + p * kAttentionKeyChunk + j, kAttentionKeyChunk);
      }
    }
  }
  for (; p < p_end; ++p) {
    for (int64_t j = 0; j < num_keys; j += kAttnKeysPerTile) {
      const int64_t nk = num_keys - j < kAttnKeysPerTile ? num_keys - j : kAttnKeysPerTile;
      dot_tile<V, T, 1>(q_pairs + p, k + j, nk, head_dim, scale,
                        scores + p * kAttentionKeyChunk + j, kAttentionKeyChunk);
    }
  }
}

// P.V for NP pairs that see the same keys (one query row, several heads), NV registers of
// head_dim starting at d: acc_i = acc_i * alpha_i + sum_{j < num_keys} p_i[j] * v[j][d ..].
// Each V load feeds NP FMAs; each acc element is still its own chain over ascending j.
template <class V, KvCacheType T, int NP, int NV>
void pv_tile(float* const* acc, const float* const* p, const float* alpha,
             const typename KvElem<T>::Type* const* v, int64_t d, int64_t num_keys) {
  using Reg = typename V::Reg;
  constexpr int kW = V::kWidth;
  Reg a[NP][NV];
  CADENCE_UNROLL for (int i = 0; i < NP; ++i) {
    const Reg alpha_i = V::set1(alpha[i]);
    CADENCE_UNROLL for (int x = 0; x < NV; ++x) {
      a[i][x] = V::mul(V::load(acc[i] + d + x * kW), alpha_i);
    }
  }
  for (int64_t j = 0; j < num_keys; ++j) {
    const typename KvElem<T>::Type* vj = v[j] + d;
    Reg pj[NP];
    CADENCE_UNROLL for (int i = 0; i < NP; ++i) pj[i] = V::broadcast(p[i] + j);
    CADENCE_UNROLL for (int x = 0; x < NV; ++x) {
      const Reg vx = load_kv<V, T>(vj + x * kW);
      CADENCE_UNROLL for (int i = 0; i < NP; ++i) a[i][x] = V::fmadd(pj[i], vx, a[i][x]);
    }
  }
  CADENCE_UNROLL for (int i = 0; i < NP; ++i) {
    CADENCE_UNROLL for (int x = 0; x < NV; ++x) V::store(acc[i] + d + x * kW, a[i][x]);
  }
}

// P.V over all of head_dim for NP pairs (register blocks of kAttnPvRegs, scalar tail).
template <class V, KvCacheType T, int NP>
void pv_pairs(float* const* acc, const float* const* p, const float* alpha,
              const typename KvElem<T>::Type* const* v, int64_t head_dim, int64_t num_keys) {
  constexpr int kW = V::kWidth;
  int64_t d = 0;
  for (; d + kAttnPvRegs * kW <= head_dim; d += kAttnPvRegs * kW) {
    pv_tile<V, T, NP, kAttnPvRegs>(acc, p, alpha, v, d, num_keys);
  }
  const int64_t regs_left = (head_dim - d) / kW;
  if (regs_left == 1) pv_tile<V, T, NP, 1>(acc, p, alpha, v, d, num_keys);
  if constexpr (kAttnPvRegs > 2) {
    if (regs_left == 2) pv_tile<V, T, NP, 2>(acc, p, alpha, v, d, num_keys);
  }
  if constexpr (kAttnPvRegs > 3) {
    if (regs_left == 3) pv_tile<V, T, NP, 3>(acc, p, alpha, v, d, num_keys);
  }
  d += regs_left * kW;
  for (; d < head_dim; ++d) {
    for (int i = 0; i < NP; ++i) {
      float a = acc[i][d] * alpha[i];
      for (int64_t j = 0; j < num_keys; ++j) {
        a = __builtin_fmaf(p[i][j], widen_kv<V, T>(v[j][d]), a);
      }
      acc[i][d] = a;
    }
  }
}

template <class V, KvCacheType T, int NP>
void pv_dispatch(int np, float* const* acc, const float* const* p, const float* alpha,
                 const typename KvElem<T>::Type* const* v, int64_t head_dim, int64_t num_keys) {
  if constexpr (NP >= 1) {
    if (np == NP) {
      pv_pairs<V, T, NP>(acc, p, alpha, v, head_dim, num_keys);
      return;
    }
    pv_dispatch<V, T, NP - 1>(np, acc, p, alpha, v, head_dim, num_keys);
  }
}

// The softmax half of one online-softmax step of one pair over keys [0, num_keys) of a chunk:
// s (the pair's scaled scores, kAttentionKeyChunk slots) becomes p_j = exp(s_j - new_max);
// run_max / run_sum are updated; returns alpha = exp(old_max - new_max), the factor the P.V
// step applies to acc before adding the chunk.
template <class V>
float softmax_step(float* s, int64_t num_keys, float* run_max, float* run_sum) {
  using Reg = typename V::Reg;
  constexpr int kW = V::kWidth;
  const int64_t padded = (num_keys + kW - 1) / kW * kW;
  for (int64_t j = num_keys; j < padded; ++j) s[j] = -__builtin_inff();
  Reg m = V::load(s);
  for (int64_t j = kW; j < padded; j += kW) m = V::max(m, V::load(s + j));
  const float chunk_max = V::reduce_max(m);
  const float new_max = chunk_max > *run_max ? chunk_max : *run_max;
  const Reg new_max_v = V::set1(new_max);
  // exp(-inf) = 0 on the first chunk, which also zeroes the (zero) initial acc and sum.
  float alpha_lanes[kW];
  V::store(alpha_lanes, exp<V>(V::sub(V::set1(*run_max), new_max_v)));
  const float alpha = alpha_lanes[0];
  // p_j = exp(s_j - max); padding lanes become exactly 0, so the vector sum (fixed order for
  // a given num_keys) is not disturbed by them.
  Reg p_sum = V::zero();
  for (int64_t j = 0; j < padded; j += kW) {
    const Reg p = exp<V>(V::sub(V::load(s + j), new_max_v));
    V::store(s + j, p);
    p_sum = V::add(p_sum, p);
  }
  *run_max = new_max;
  *run_sum = *run_sum * alpha + V::reduce_add(p_sum);
  return alpha;
}

template <class V, KvCacheType T, int P>
void dot_rows_dispatch(int p_tile, const float* const* q_pairs,
                       const typename KvElem<T>::Type* const* k, int64_t num_keys, int64_t head_dim,
                       float scale, float* scores, int64_t p_begin, int64_t p_end) {
  if constexpr (P >= 1) {
    if (p_tile == P) {
      dot_rows<V, T, P>(q_pairs, k, num_keys, head_dim, scale, scores, p_begin, p_end);
      return;
    }
    dot_rows_dispatch<V, T, P - 1>(p_tile, q_pairs, k, num_keys, head_dim, scale, scores, p_begin,
                                   p_end);
  }
}

// A pair's softmax state, attention_state_floats(head_dim) floats: acc[head_dim] (unnormalized
// sum of p_j v_j), then the running max, then the running sum of p_j.
//
// total <- merge(total, part): the combination of two disjoint key ranges, total's first.
// Both the in-item partition loop and the cross-thread merge (attention_merge) use this one
// routine, so a row's result does not depend on which of the two combined its partitions.
template <class V>
void merge_state(float* total, const float* part, int64_t head_dim) {
  using Reg = typename V::Reg;
  constexpr int kW = V::kWidth;
  const float max_t = total[head_dim], max_p = part[head_dim];
  // A side that saw no key (sliding window) contributes nothing: exact no-op / exact copy.
  if (max_p == -__builtin_inff()) return;
  if (max_t == -__builtin_inff()) {
    for (int64_t i = 0; i < head_dim + 2; ++i) total[i] = part[i];
    return;
  }
  const float new_max = max_t > max_p ? max_t : max_p;
  float lanes[kW] = {};
  lanes[0] = max_t - new_max;
  lanes[1] = max_p - new_max;
  V::store(lanes, exp<V>(V::load(lanes)));
  const float a = lanes[0], b = lanes[1];
  const Reg a_v = V::set1(a), b_v = V::set1(b);
  int64_t d = 0;
  for (; d + kW <= head_dim; d += kW) {
    V::store(total + d, V::fmadd(V::load(part + d), b_v, V::mul(V::load(total + d), a_v)));
  }
  for (; d < head_dim; ++d) total[d] = __builtin_fmaf(part[d], b, total[d] * a);
  total[head_dim] = new_max;
  total[head_dim + 1] = __builtin_fmaf(part[head_dim + 1], b, total[head_dim + 1] * a);
}

// out = acc / sum (zeros for a pair that saw no key: inconsistent inputs only).
template <class V>
void finalize_state(const float* state, int64_t head_dim, float* out) {
  const float sum = state[head_dim + 1];
  if (sum == 0.0f) {
    for (int64_t d = 0; d < head_dim; ++d) out[d] = 0.0f;
    return;
  }
  int64_t d = 0;
  for (; d + V::kWidth <= head_dim; d += V::kWidth) {
    V::store(out + d, V::div(V::load(state + d), V::set1(sum)));
  }
  for (; d < head_dim; ++d) out[d] = state[d] / sum;
}

// KernelTable::attention_merge: merges num_states partition states in order, writes the output.
template <class V>
void attention_merge(const float* states, int64_t num_states, int64_t head_dim, float* scratch,
                     float* out) {
  const int64_t state_floats = attention_state_floats(head_dim);
  for (int64_t i = 0; i < state_floats; ++i) scratch[i] = states[i];
  for (int64_t s = 1; s < num_states; ++s) {
    merge_state<V>(scratch, states + s * state_floats, head_dim);
  }
  finalize_state<V>(scratch, head_dim, out);
}

// attention_item for a cache of type T. Keys are processed per partition of
// kAttentionPartitionKeys positions: each partition's state starts fresh and is merged into the
// total in ascending order (partition 0's state is the total's start).
template <class V, KvCacheType T>
void attention_item_typed(const AttentionArgs& args, const AttentionItem& item, float* scratch) {
  using Elem = typename KvElem<T>::Type;
  constexpr int kPairsPerTile = V::kGemmMaxAcc / kAttnKeysPerTile;
  const PagedKvCache& cache = *args.cache;
  const Elem* k_cache = static_cast<const Elem*>(cache.k_cache);
  const Elem* v_cache = static_cast<const Elem*>(cache.v_cache);
  const int64_t block_stride = cache.block_stride_elements();
  const AttentionBatch& batch = *args.batch;
  const int64_t head_dim = cache.head_dim;
  const int64_t block_size = cache.block_size;
  const int64_t state_floats = attention_state_floats(head_dim);
  const int64_t q_end = batch.query_start[item.seq + 1];
  const int64_t context_len = batch.context_lens[item.seq];
  const int32_t* block_table = batch.block_tables + item.seq * batch.max_blocks_per_seq;
  const int64_t heads = item.head_end - item.head_begin;
  const int64_t num_pairs = (item.row_end - item.row_begin) * heads;
  // Position of query row r is context_len - (q_end - r).
  const int64_t row_offset = context_len - q_end;
  const int64_t window = batch.sliding_window;
  // The first key position row r sees.
  auto first_key = [&](int64_t row) -> int64_t {
    const int64_t lo = row + row_offset - window + 1;
    return window > 0 && lo > 0 ? lo : 0;
  };

  float* total = scratch;                           // [num_pairs][state_floats]
  float* work = total + num_pairs * state_floats;   // [num_pairs][state_floats]
  float* scores = work + num_pairs * state_floats;  // [num_pairs][kAttentionKeyChunk]
  const float* q_pairs[kAttentionMaxPairs];
  for (int64_t p = 0; p < num_pairs; ++p) {
    const int64_t row = item.row_begin + p / heads;
    const int64_t head = item.head_begin + p % heads;
    q_pairs[p] = args.q + row * args.ld_q + head * head_dim;
    float* state = total + p * state_floats;
    for (int64_t d = 0; d < head_dim; ++d) state[d] = 0.0f;
    state[head_dim] = -__builtin_inff();
    state[head_dim + 1] = 0.0f;
  }

  const int64_t last_pos = row_offset + item.row_end - 1;
  const int64_t num_partitions = last_pos < 0 ? 0 : last_pos / kAttentionPartitionKeys + 1;
  const int64_t part_end =
      item.partition_end < num_partitions ? item.partition_end : num_partitions;
  // Partitions before the item's first row's window hold no key any row sees.
  const int64_t window_part = first_key(item.row_begin) / kAttentionPartitionKeys;
  const int64_t part_begin =
      item.partition_begin > window_part ? item.partition_begin : window_part;
  const Elem* k_rows[kAttentionKeyChunk];
  const Elem* v_rows[kAttentionKeyChunk];
  for (int64_t part = part_begin; part < part_end; ++part) {
    const int64_t t_begin = part * kAttentionPartitionKeys;
    const int64_t t_end = t_begin + kAttentionPartitionKeys < last_pos + 1
                              ? t_begin + kAttentionPartitionKeys
                              : last_pos + 1;
    // Rows whose position is >= t_begin: row >= t_begin - row_offset.
    const int64_t part_first_row =
        t_begin - row_offset > item.row_begin ? t_begin - row_offset : item.row_begin;
    const int64_t part_first_pair = (part_first_row - item.row_begin) * heads;
    // The first partition accumulates into the total directly; later ones start fresh.
    const bool is_first = part == part_begin;
    float* states = is_first ? total : work;
    if (!is_first) {
      for (int64_t p = part_first_pair; p < num_pairs; ++p) {
        float* state = work + p * state_floats;
        for (int64_t d = 0; d < head_dim; ++d) state[d] = 0.0f;
        state[head_dim] = -__builtin_inff();
        state[head_dim + 1] = 0.0f;
      }
    }
    for (int64_t t0 = t_begin; t0 < t_end; t0 += kAttentionKeyChunk) {
      const int64_t len = t_end - t0 < kAttentionKeyChunk ? t_end - t0 : kAttentionKeyChunk;
      // Rows that see a key of the chunk: position >= t0 (row >= t0 - row_offset) and, with a
      // window, first_key(row) < t0 + len (row < t0 + len + window - 1 - row_offset).
      const int64_t first_row = t0 - row_offset > item.row_begin ? t0 - row_offset : item.row_begin;
      int64_t end_row = item.row_end;
      if (window > 0 && t0 + len + window - 1 - row_offset < end_row) {
        end_row = t0 + len + window - 1 - row_offset;
      }
      if (end_row <= first_row) continue;
      // Gather the chunk's key / value rows from the cache blocks that hold them, from the
      // first key any of those rows sees; slots before it repeat that key (masked below).
      const int64_t key_begin = first_key(first_row) > t0 ? first_key(first_row) - t0 : 0;
      for (int64_t j = key_begin; j < len;) {
        const int64_t t = t0 + j;
        const int64_t offset = t % block_size;
        const int64_t block_id = block_table[t / block_size];
        const int64_t base =
            block_id * block_stride + (item.kv_head * block_size + offset) * head_dim;
        for (int64_t o = offset; o < block_size && j < len; ++o, ++j) {
          k_rows[j] = k_cache + base + (o - offset) * head_dim;
          v_rows[j] = v_cache + base + (o - offset) * head_dim;
        }
      }
      for (int64_t j = 0; j < key_begin; ++j) {
        k_rows[j] = k_rows[key_begin];
        v_rows[j] = v_rows[key_begin];
      }
      const int64_t p_first = (first_row - item.row_begin) * heads;
      const int64_t p_end = (end_row - item.row_begin) * heads;
      const int64_t p_tile = p_end - p_first < kPairsPerTile ? p_end - p_first : kPairsPerTile;
      dot_rows_dispatch<V, T, kPairsPerTile>(static_cast<int>(p_tile), q_pairs, k_rows, len,
                                             head_dim, args.scale, scores, p_first, p_end);
      if (batch.softcap > 0.0f) {
        const int64_t padded = (len + V::kWidth - 1) / V::kWidth * V::kWidth;
        for (int64_t p = p_first; p < p_end; ++p) {
          softcap<V>(scores + p * kAttentionKeyChunk, padded, batch.softcap);
        }
      }
      // Pairs of one row see the same keys; their P.V runs together (shared V loads).
      for (int64_t p = p_first; p < p_end;) {
        const int64_t row = item.row_begin + p / heads;
        const int64_t pos = row_offset + row;
        const int64_t visible = pos + 1 - t0 < len ? pos + 1 - t0 : len;
        // Slots [0, masked) are keys before the row's window.
        const int64_t masked = first_key(row) > t0 ? first_key(row) - t0 : 0;
        const int64_t left_in_row = heads - p % heads;
        const int np = static_cast<int>(left_in_row < kPairsPerTile ? left_in_row : kPairsPerTile);
        float* acc_ptrs[kPairsPerTile];
        const float* p_ptrs[kPairsPerTile];
        float alphas[kPairsPerTile];
        for (int i = 0; i < np; ++i) {
          float* state = states + (p + i) * state_floats;
          float* s = scores + (p + i) * kAttentionKeyChunk;
          for (int64_t j = 0; j < masked; ++j) s[j] = -__builtin_inff();
          alphas[i] = softmax_step<V>(s, visible, state + head_dim, state + head_dim + 1);
          acc_ptrs[i] = state;
          p_ptrs[i] = s + masked;
        }
        pv_dispatch<V, T, kPairsPerTile>(np, acc_ptrs, p_ptrs, alphas, v_rows + masked, head_dim,
                                         visible - masked);
        p += np;
      }
    }
    if (!is_first) {
      for (int64_t p = part_first_pair; p < num_pairs; ++p) {
        merge_state<V>(total + p * state_floats, work + p * state_floats, head_dim);
      }
    }
  }

  for (int64_t p = 0; p < num_pairs; ++p) {
    const float* state = total + p * state_floats;
    if (item.partial_states != nullptr) {
      float* dst = item.partial_states + p * item.partial_pair_stride;
      for (int64_t i = 0; i < state_floats; ++i) dst[i] = state[i];
    } else {
      const int64_t row = item.row_begin + p / heads;
      const int64_t head = item.head_begin + p % heads;
      finalize_state<V>(state, head_dim, args.out + row * args.ld_out + head * head_dim);
    }
  }
}

// KernelTable::attention_item: one work item over a cache of any KvCacheType.
template <class V>
void attention_item(const AttentionArgs& args, const AttentionItem& item, float* scratch) {
  switch (args.cache->type) {
    case KvCacheType::kF32:
      attention_item_typed<V, KvCacheType::kF32>(args, item, scratch);
      return;
    case KvCacheType::kBF16:
      attention_item_typed<V, KvCacheType::kBF16>(args, item, scratch);
      return;
    case KvCacheType::kF16:
      attention_item_typed<V, KvCacheType::kF16>(args, item, scratch);
      return;
  }
}

}  // namespace cadence::kernels::cpu::simd
