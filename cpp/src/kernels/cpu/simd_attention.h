// Paged GQA attention for one AttentionItem (see kernel_table.h), written once against a SIMD
// traits type V and instantiated per ISA.
//
// An item is (sequence, kv head, query rows [r0, r1), query heads [h0, h1)); its "pairs" are
// (row, head), numbered row-major. Keys are visited in ascending chunks of absolute positions
//
//   chunk c = positions [64 c, 64 c + 64)   (gathered from however many cache blocks hold them)
//
// For each chunk: S = scale * Q_pairs . K_chunk^T (register tiles of pairs x 4 keys, each dot
// one FMA chain over head_dim then a fixed horizontal tree), then per pair an online-softmax
// step over the keys it may see (position <= its own) and acc = acc * alpha + sum_j p_j V_j.
// Every pair runs the same instruction sequence whatever else shares its item, and chunk
// boundaries are fixed positions, so a row's output does not depend on the batch.
#pragma once

#include <cstdint>

#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/simd_elementwise.h"

namespace cadence::kernels::cpu::simd {

constexpr int kAttnKeysPerTile = 4;
// Registers of one row of output accumulated at once in the P.V step.
constexpr int kAttnPvRegs = 8;

// out[p * out_stride + j] = scale * dot(q[p], k[j]), p < P, j < num_keys (1..4). Keys past
// num_keys are computed on a repeated key and dropped, so every dot is the same chain.
template <class V, int P>
void dot_tile(const float* const* q, const float* const* k, int64_t num_keys, int64_t head_dim,
              float scale, float* out, int64_t out_stride) {
  using Reg = typename V::Reg;
  constexpr int kW = V::kWidth;
  constexpr int kJ = kAttnKeysPerTile;
  const float* kr[kJ];
  for (int j = 0; j < kJ; ++j) kr[j] = k[j < num_keys ? j : num_keys - 1];
  Reg acc[P][kJ];
  for (int p = 0; p < P; ++p)
    for (int j = 0; j < kJ; ++j) acc[p][j] = V::zero();
  int64_t d = 0;
  for (; d + kW <= head_dim; d += kW) {
    Reg qv[P];
    for (int p = 0; p < P; ++p) qv[p] = V::load(q[p] + d);
    for (int j = 0; j < kJ; ++j) {
      const Reg kv = V::load(kr[j] + d);
      for (int p = 0; p < P; ++p) acc[p][j] = V::fmadd(qv[p], kv, acc[p][j]);
    }
  }
  // Full 4-key groups are stored whole (the scores buffer has room up to the chunk size, and
  // slots past num_keys are ignored), so the common case needs no scalar loop.
  for (int p = 0; p < P; ++p) {
    float* o = out + p * out_stride;
    V::reduce_add4(acc[p][0], acc[p][1], acc[p][2], acc[p][3], o);
    if (d < head_dim) {
      for (int j = 0; j < num_keys; ++j) {
        float tail = 0.0f;
        for (int64_t t = d; t < head_dim; ++t) tail = __builtin_fmaf(q[p][t], kr[j][t], tail);
        o[j] += tail;
      }
    }
    for (int j = 0; j < kJ; ++j) o[j] *= scale;
  }
}

// Scores of pairs [p_begin, p_end) against keys [0, num_keys) of a chunk, P pairs at a time.
template <class V, int P>
void dot_rows(const float* const* q_pairs, const float* const* k, int64_t num_keys,
              int64_t head_dim, float scale, float* scores, int64_t p_begin, int64_t p_end) {
  int64_t p = p_begin;
  if constexpr (P > 1) {
    for (; p + P <= p_end; p += P) {
      for (int64_t j = 0; j < num_keys; j += kAttnKeysPerTile) {
        const int64_t nk = num_keys - j < kAttnKeysPerTile ? num_keys - j : kAttnKeysPerTile;
        dot_tile<V, P>(q_pairs + p, k + j, nk, head_dim, scale,
                       scores + p * kAttentionKeyChunk + j, kAttentionKeyChunk);
      }
    }
  }
  for (; p < p_end; ++p) {
    for (int64_t j = 0; j < num_keys; j += kAttnKeysPerTile) {
      const int64_t nk = num_keys - j < kAttnKeysPerTile ? num_keys - j : kAttnKeysPerTile;
      dot_tile<V, 1>(q_pairs + p, k + j, nk, head_dim, scale,
                     scores + p * kAttentionKeyChunk + j, kAttentionKeyChunk);
    }
  }
}

// acc[0 .. NV*kW) = acc * alpha + sum_{j < num_keys} p[j] * (v[j] + d).
template <class V, int NV>
void pv_block(float* acc, const float* const* v, int64_t d, const float* p, int64_t num_keys,
              typename V::Reg alpha) {
  using Reg = typename V::Reg;
  constexpr int kW = V::kWidth;
  Reg a[NV];
  for (int x = 0; x < NV; ++x) a[x] = V::mul(V::load(acc + x * kW), alpha);
  for (int64_t j = 0; j < num_keys; ++j) {
    const Reg pj = V::broadcast(p + j);
    const float* vj = v[j] + d;
    for (int x = 0; x < NV; ++x) a[x] = V::fmadd(pj, V::load(vj + x * kW), a[x]);
  }
  for (int x = 0; x < NV; ++x) V::store(acc + x * kW, a[x]);
}

template <class V, int NV>
void pv_dispatch(int nv, float* acc, const float* const* v, int64_t d, const float* p,
                 int64_t num_keys, typename V::Reg alpha) {
  if constexpr (NV >= 1) {
    if (nv == NV) {
      pv_block<V, NV>(acc, v, d, p, num_keys, alpha);
      return;
    }
    pv_dispatch<V, NV - 1>(nv, acc, v, d, p, num_keys, alpha);
  }
}

// One online-softmax step of one pair over keys [0, num_keys) of a chunk.
// s: the pair's scaled scores (kAttentionKeyChunk slots; slots >= num_keys are overwritten).
// v: the chunk's value rows.
template <class V>
void online_softmax_step(float* s, int64_t num_keys, const float* const* v, int64_t head_dim,
                         float* acc, float* run_max, float* run_sum) {
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

  const Reg alpha_v = V::set1(alpha);
  int64_t d = 0;
  for (; d + kW <= head_dim; d += kAttnPvRegs * kW) {
    const int64_t regs_left = (head_dim - d) / kW;
    const int nv = static_cast<int>(regs_left < kAttnPvRegs ? regs_left : kAttnPvRegs);
    pv_dispatch<V, kAttnPvRegs>(nv, acc + d, v, d, s, num_keys, alpha_v);
    if (nv < kAttnPvRegs) {
      d += nv * kW;
      break;
    }
  }
  for (; d < head_dim; ++d) {
    float a = acc[d] * alpha;
    for (int64_t j = 0; j < num_keys; ++j) a = __builtin_fmaf(s[j], v[j][d], a);
    acc[d] = a;
  }
}

template <class V, int P>
void dot_rows_dispatch(int p_tile, const float* const* q_pairs, const float* const* k,
                       int64_t num_keys, int64_t head_dim, float scale, float* scores,
                       int64_t p_begin, int64_t p_end) {
  if constexpr (P >= 1) {
    if (p_tile == P) {
      dot_rows<V, P>(q_pairs, k, num_keys, head_dim, scale, scores, p_begin, p_end);
      return;
    }
    dot_rows_dispatch<V, P - 1>(p_tile, q_pairs, k, num_keys, head_dim, scale, scores, p_begin,
                                p_end);
  }
}

// KernelTable::attention_item.
template <class V>
void attention_item(const AttentionArgs& args, const AttentionItem& item, float* scratch) {
  constexpr int kPairsPerTile = V::kGemmMaxAcc / kAttnKeysPerTile;
  const PagedKvCache& cache = *args.cache;
  const AttentionBatch& batch = *args.batch;
  const int64_t head_dim = cache.head_dim;
  const int64_t block_size = cache.block_size;
  const int64_t q_end = batch.query_start[item.seq + 1];
  const int64_t context_len = batch.context_lens[item.seq];
  const int32_t* block_table = batch.block_tables + item.seq * batch.max_blocks_per_seq;
  const int64_t heads = item.head_end - item.head_begin;
  const int64_t num_pairs = (item.row_end - item.row_begin) * heads;
  // Position of query row r is context_len - (q_end - r); rows at or below this bound see
  // nothing (only possible with inconsistent inputs) and get zeros.
  const int64_t row_offset = context_len - q_end;

  float* acc = scratch;                      // [num_pairs][head_dim]
  float* run_max = acc + num_pairs * head_dim;  // [num_pairs]
  float* run_sum = run_max + num_pairs;      // [num_pairs]
  float* scores = run_sum + num_pairs;       // [num_pairs][kAttentionKeyChunk]
  const float* q_pairs[kAttentionMaxPairs];
  for (int64_t p = 0; p < num_pairs; ++p) {
    const int64_t row = item.row_begin + p / heads;
    const int64_t head = item.head_begin + p % heads;
    q_pairs[p] = args.q + row * args.ld_q + head * head_dim;
    run_max[p] = -__builtin_inff();
    run_sum[p] = 0.0f;
  }
  for (int64_t i = 0; i < num_pairs * head_dim; ++i) acc[i] = 0.0f;

  const int64_t last_pos = row_offset + item.row_end - 1;
  const float* k_rows[kAttentionKeyChunk];
  const float* v_rows[kAttentionKeyChunk];
  for (int64_t t0 = 0; t0 <= last_pos; t0 += kAttentionKeyChunk) {
    const int64_t len = last_pos + 1 - t0 < kAttentionKeyChunk ? last_pos + 1 - t0
                                                               : kAttentionKeyChunk;
    // Gather the chunk's key / value rows from the cache blocks that hold them.
    for (int64_t j = 0; j < len;) {
      const int64_t t = t0 + j;
      const int64_t offset = t % block_size;
      const int64_t block_id = block_table[t / block_size];
      const int64_t base = (block_id * cache.num_kv_heads + item.kv_head) * block_size;
      for (int64_t o = offset; o < block_size && j < len; ++o, ++j) {
        k_rows[j] = cache.k_cache + (base + o) * head_dim;
        v_rows[j] = cache.v_cache + (base + o) * head_dim;
      }
    }
    // Rows whose position is >= t0: row >= t0 - row_offset.
    int64_t first_row = t0 - row_offset;
    if (first_row < item.row_begin) first_row = item.row_begin;
    const int64_t p_first = (first_row - item.row_begin) * heads;
    const int64_t p_tile = num_pairs - p_first < kPairsPerTile ? num_pairs - p_first
                                                               : kPairsPerTile;
    dot_rows_dispatch<V, kPairsPerTile>(static_cast<int>(p_tile), q_pairs, k_rows, len, head_dim,
                                        args.scale, scores, p_first, num_pairs);
    for (int64_t p = p_first; p < num_pairs; ++p) {
      const int64_t pos = row_offset + item.row_begin + p / heads;
      const int64_t visible = pos + 1 - t0 < len ? pos + 1 - t0 : len;
      online_softmax_step<V>(scores + p * kAttentionKeyChunk, visible, v_rows, head_dim,
                             acc + p * head_dim, run_max + p, run_sum + p);
    }
  }

  for (int64_t p = 0; p < num_pairs; ++p) {
    const int64_t row = item.row_begin + p / heads;
    const int64_t head = item.head_begin + p % heads;
    float* o = args.out + row * args.ld_out + head * head_dim;
    const float* a = acc + p * head_dim;
    if (run_sum[p] == 0.0f) {
      for (int64_t d = 0; d < head_dim; ++d) o[d] = 0.0f;
      continue;
    }
    const float sum = run_sum[p];
    int64_t d = 0;
    for (; d + V::kWidth <= head_dim; d += V::kWidth) {
      V::store(o + d, V::div(V::load(a + d), V::set1(sum)));
    }
    for (; d < head_dim; ++d) o[d] = a[d] / sum;
  }
}

}  // namespace cadence::kernels::cpu::simd
