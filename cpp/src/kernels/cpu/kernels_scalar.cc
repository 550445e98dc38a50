// The scalar path: plain C++ loops, baseline flags. It is the fallback on CPUs without AVX2
// and the cross-check for the SIMD paths. Same numerics contracts as the SIMD code:
// - gemm: one fused multiply-add chain per output over ascending k, bf16 / fp16 weights
//   widened to fp32 exactly (kernels/half.h) as the SIMD paths do. On CPUs with FMA (all
//   that can run a SIMD path) that is std::fma, bit-identical to the SIMD paths; without
//   hardware FMA std::fma is a slow software emulation, so there it is a * b + c instead
//   (still batch-invariant, just not comparable bit for bit with paths that cannot run there);
// - attention: the same key chunks and online-softmax steps, per pair, in fixed order; bf16 /
//   fp16 keys and values widened to fp32 exactly (kernels/half.h) as they are read;
// - row ops: sequential per-row reductions.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/quantize_acts.h"
#include "kernels/half.h"
#include "kernels/packed_weight.h"

namespace cadence::kernels::cpu {
namespace {

constexpr int64_t kPanel = PackedWeight::kPanelRows;

bool has_hardware_fma() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool has_fma = __builtin_cpu_supports("fma");
  return has_fma;
#else
  return true;  // aarch64 and the other targets we build for have fused multiply-add
#endif
}

// a * b + c, fused when kFma.
template <bool kFma>
inline float madd(float a, float b, float c) {
  if constexpr (kFma) {
    return std::fma(a, b, c);
  } else {
    return a * b + c;
  }
}

// A stored weight (float, or the bits of a bf16 / fp16) widened to fp32.
template <WeightType T, class Elem>
inline float widen(Elem w) {
  if constexpr (T == WeightType::kF32) {
    return w;
  } else if constexpr (T == WeightType::kBF16) {
    return bf16_to_float(w);
  } else {
    return f16_to_float(w);
  }
}

template <bool kFma, WeightType T, class Elem>
void gemm_block_impl(const GemmArgs& g, int64_t m_begin, int64_t m_end, int64_t p_begin,
                     int64_t p_end) {
  for (int64_t p = p_begin; p < p_end; ++p) {
    const Elem* panel = static_cast<const Elem*>(g.w_panels) + p * g.k * kPanel;
    const int64_t num_cols = g.n - p * kPanel < kPanel ? g.n - p * kPanel : kPanel;
    for (int64_t i = m_begin; i < m_end; ++i) {
      const float* a = g.a + i * g.lda;
      float acc[kPanel] = {};
      for (int64_t k = 0; k < g.k; ++k) {
        const Elem* wk = panel + k * kPanel;
        for (int64_t r = 0; r < kPanel; ++r) acc[r] = madd<kFma>(a[k], widen<T>(wk[r]), acc[r]);
      }
      float* c = g.c + i * g.ldc + p * kPanel;
      for (int64_t r = 0; r < num_cols; ++r) {
        c[r] = g.bias != nullptr ? acc[r] + g.bias[p * kPanel + r] : acc[r];
      }
    }
  }
}

template <bool kFma>
void gemm_block_fma(const GemmArgs& g, int64_t m_begin, int64_t m_end, int64_t p_begin,
                    int64_t p_end) {
  switch (g.w_type) {
    case WeightType::kF32:
      gemm_block_impl<kFma, WeightType::kF32, float>(g, m_begin, m_end, p_begin, p_end);
      return;
    case WeightType::kBF16:
      gemm_block_impl<kFma, WeightType::kBF16, uint16_t>(g, m_begin, m_end, p_begin, p_end);
      return;
    case WeightType::kF16:
      gemm_block_impl<kFma, WeightType::kF16, uint16_t>(g, m_begin, m_end, p_begin, p_end);
      return;
    case WeightType::kQ4:
    case WeightType::kQ8:
      return;  // quantized weights go through qgemm_block
  }
}

void gemm_block(const GemmArgs& g, int64_t m_begin, int64_t m_end, int64_t p_begin, int64_t p_end) {
  if (has_hardware_fma()) {
    gemm_block_fma<true>(g, m_begin, m_end, p_begin, p_end);
  } else {
    gemm_block_fma<false>(g, m_begin, m_end, p_begin, p_end);
  }
}

// The code of row r (of a panel), column k of one record (PackedWeight's layout).
inline int32_t record_code(const unsigned char* record, WeightType type, int64_t r, int64_t k) {
  if (type == WeightType::kQ8) return record[(k / 4) * 64 + r * 4 + k % 4];
  return (record[(k / 8) * 64 + r * 4 + k % 4] >> ((k % 8) / 4 * 4)) & 0x0F;
}

inline float record_scale(const unsigned char* p, bool is_f16, int64_t r) {
  if (is_f16) {
    uint16_t h;
    std::memcpy(&h, p + r * 2, 2);
    return f16_to_float(h);
  }
  float x;
  std::memcpy(&x, p + r * 4, 4);
  return x;
}

// QGemmArgs' contract, one output at a time.
template <bool kFma>
void qgemm_block_impl(const QGemmArgs& g, int64_t m_begin, int64_t m_end, int64_t p_begin,
                      int64_t p_end) {
  const int64_t block = g.block_cols;
  const int64_t code_bytes = g.w_type == WeightType::kQ4 ? block * 8 : block * 16;
  const int64_t scale_bytes = g.has_f16_scales ? 2 : 4;
  for (int64_t p = p_begin; p < p_end; ++p) {
    const unsigned char* panel = g.w_panels + p * g.panel_bytes;
    const int64_t num_cols = g.n - p * kPanel < kPanel ? g.n - p * kPanel : kPanel;
    for (int64_t i = m_begin; i < m_end; ++i) {
      const int8_t* a = g.a.codes + i * g.a.ld_codes;
      for (int64_t r = 0; r < num_cols; ++r) {
        float acc = 0.0f;
        for (int64_t b = 0; b < g.k / block; ++b) {
          const unsigned char* record = panel + b * g.record_bytes;
          int32_t isum = 0;
          for (int64_t k = 0; k < block; ++k) {
            isum += record_code(record, g.w_type, r, k) * int32_t{a[b * block + k]};
          }
          const float scale = record_scale(record + code_bytes, g.has_f16_scales, r);
          const float min =
              record_scale(record + code_bytes + kPanel * scale_bytes, g.has_f16_scales, r);
          const float t = scale * g.a.scales[i * g.a.ld_blocks + b];
          acc = madd<kFma>(static_cast<float>(isum), t, acc);
          acc = madd<kFma>(min, g.a.scaled_sums[i * g.a.ld_blocks + b], acc);
        }
        float* c = g.c + i * g.ldc + p * kPanel;
        c[r] = g.bias != nullptr ? acc + g.bias[p * kPanel + r] : acc;
      }
    }
  }
}

void qgemm_block(const QGemmArgs& g, int64_t m_begin, int64_t m_end, int64_t p_begin,
                 int64_t p_end) {
  if (has_hardware_fma()) {
    qgemm_block_impl<true>(g, m_begin, m_end, p_begin, p_end);
  } else {
    qgemm_block_impl<false>(g, m_begin, m_end, p_begin, p_end);
  }
}

void rms_norm_rows(const float* x, int64_t dim, int64_t ld_x, const float* weight, float eps,
                   float* out, int64_t ld_out, int64_t row_begin, int64_t row_end) {
  for (int64_t r = row_begin; r < row_end; ++r) {
    const float* xr = x + r * ld_x;
    float* o = out + r * ld_out;
    float sum = 0.0f;
    for (int64_t i = 0; i < dim; ++i) sum += xr[i] * xr[i];
    const float inv = 1.0f / std::sqrt(sum / static_cast<float>(dim) + eps);
    for (int64_t i = 0; i < dim; ++i) o[i] = (xr[i] * inv) * weight[i];
  }
}

void layer_norm_rows(const float* x, int64_t dim, int64_t ld_x, const float* weight,
                     const float* bias, float eps, float* out, int64_t ld_out, int64_t row_begin,
                     int64_t row_end) {
  for (int64_t r = row_begin; r < row_end; ++r) {
    const float* xr = x + r * ld_x;
    float* o = out + r * ld_out;
    float sum = 0.0f;
    for (int64_t i = 0; i < dim; ++i) sum += xr[i];
    const float mean = sum / static_cast<float>(dim);
    float squares = 0.0f;
    for (int64_t i = 0; i < dim; ++i) squares += (xr[i] - mean) * (xr[i] - mean);
    const float inv = 1.0f / std::sqrt(squares / static_cast<float>(dim) + eps);
    for (int64_t i = 0; i < dim; ++i) o[i] = ((xr[i] - mean) * inv) * weight[i] + bias[i];
  }
}

// 0.5 x (1 + tanh(u)) written as the equal x / (1 + exp(-2u)), u = sqrt(2/pi) (x + 0.044715 x^3).
float gelu_tanh_value(float v) {
  const float u = 0.7978845608028654f * (v + 0.044715f * (v * v * v));
  return v / (1.0f + std::exp(-2.0f * u));
}

void gelu_tanh(const float* x, int64_t num_elements, float* out) {
  for (int64_t i = 0; i < num_elements; ++i) out[i] = gelu_tanh_value(x[i]);
}

void gelu_tanh_mul_rows(const float* gate_up, int64_t inter, int64_t ld_gate_up, float* out,
                        int64_t ld_out, int64_t row_begin, int64_t row_end) {
  for (int64_t r = row_begin; r < row_end; ++r) {
    const float* gate = gate_up + r * ld_gate_up;
    for (int64_t j = 0; j < inter; ++j) {
      out[r * ld_out + j] = gelu_tanh_value(gate[j]) * gate[inter + j];
    }
  }
}

// 0 > x ? 0 : x, as the SIMD max (a NaN passes through).
void relu(const float* x, int64_t num_elements, float* out) {
  for (int64_t i = 0; i < num_elements; ++i) out[i] = 0.0f > x[i] ? 0.0f : x[i];
}

void add(float* x, const float* y, int64_t num_elements) {
  for (int64_t i = 0; i < num_elements; ++i) x[i] += y[i];
}

void silu_mul_rows(const float* gate_up, int64_t inter, int64_t ld_gate_up, float* out,
                   int64_t ld_out, int64_t row_begin, int64_t row_end) {
  for (int64_t r = row_begin; r < row_end; ++r) {
    const float* gate = gate_up + r * ld_gate_up;
    const float* up = gate + inter;
    float* o = out + r * ld_out;
    for (int64_t j = 0; j < inter; ++j) {
      const float g = gate[j];
      o[j] = (g / (1.0f + std::exp(-g))) * up[j];
    }
  }
}

void rope_rows(float* x, int64_t num_heads, int64_t head_dim, int64_t rot_dim, int64_t ld_x,
               const int32_t* positions, const float* cos_sin, int64_t row_begin, int64_t row_end) {
  const int64_t half = rot_dim / 2;
  for (int64_t t = row_begin; t < row_end; ++t) {
    const float* cs = cos_sin + static_cast<int64_t>(positions[t]) * rot_dim;
    for (int64_t h = 0; h < num_heads; ++h) {
      float* xh = x + t * ld_x + h * head_dim;
      for (int64_t i = 0; i < half; ++i) {
        const float x1 = xh[i], x2 = xh[half + i], c = cs[i], s = cs[half + i];
        xh[i] = x1 * c - x2 * s;
        xh[half + i] = x2 * c + x1 * s;
      }
    }
  }
}

// total <- merge(total, part) for states laid out as in simd::merge_state.
void merge_state(float* total, const float* part, int64_t head_dim) {
  // A side that saw no key (sliding window) contributes nothing: exact no-op / exact copy.
  if (part[head_dim] == -INFINITY) return;
  if (total[head_dim] == -INFINITY) {
    for (int64_t i = 0; i < head_dim + 2; ++i) total[i] = part[i];
    return;
  }
  const float new_max = std::fmax(total[head_dim], part[head_dim]);
  const float a = std::exp(total[head_dim] - new_max), b = std::exp(part[head_dim] - new_max);
  for (int64_t d = 0; d < head_dim; ++d) total[d] = total[d] * a + part[d] * b;
  total[head_dim] = new_max;
  total[head_dim + 1] = total[head_dim + 1] * a + part[head_dim + 1] * b;
}

void finalize_state(const float* state, int64_t head_dim, float* out) {
  const float sum = state[head_dim + 1];
  for (int64_t d = 0; d < head_dim; ++d) out[d] = sum > 0.0f ? state[d] / sum : 0.0f;
}

void attention_merge(const float* states, int64_t num_states, int64_t head_dim, float* scratch,
                     float* out) {
  const int64_t state_floats = attention_state_floats(head_dim);
  for (int64_t i = 0; i < state_floats; ++i) scratch[i] = states[i];
  for (int64_t s = 1; s < num_states; ++s) {
    merge_state(scratch, states + s * state_floats, head_dim);
  }
  finalize_state(scratch, head_dim, out);
}

// A stored K/V element (float, or the bits of a bf16 / fp16) widened to fp32.
template <KvCacheType T, class Elem>
inline float widen_kv(Elem x) {
  if constexpr (T == KvCacheType::kF32) {
    return x;
  } else if constexpr (T == KvCacheType::kBF16) {
    return bf16_to_float(x);
  } else {
    return f16_to_float(x);
  }
}

// Same key chunks and partitions as simd::attention_item (kernel_table.h), one pair at a time;
// with a sliding window, a pair reads only the keys of its window. Elem is the stored type of
// a KV cache of type T.
template <bool kFma, KvCacheType T, class Elem>
void attention_item_impl(const AttentionArgs& args, const AttentionItem& item, float* scratch) {
  const PagedKvCache& cache = *args.cache;
  const AttentionBatch& batch = *args.batch;
  const int64_t head_dim = cache.head_dim;
  const int64_t block_size = cache.block_size;
  const int64_t state_floats = attention_state_floats(head_dim);
  const int64_t q_end = batch.query_start[item.seq + 1];
  const int64_t row_offset = batch.context_lens[item.seq] - q_end;  // position = row + offset
  const int32_t* block_table = batch.block_tables + item.seq * batch.max_blocks_per_seq;
  float* total = scratch;
  float* work = total + state_floats;
  float* scores = work + state_floats;
  // Row of token t of this kv head in a cache.
  const Elem* k_cache = static_cast<const Elem*>(cache.k_cache);
  const Elem* v_cache = static_cast<const Elem*>(cache.v_cache);
  auto key_row = [&](const Elem* base, int64_t t) {
    const int64_t block_id = block_table[t / block_size];
    return base + block_id * cache.block_stride_elements() +
           (item.kv_head * block_size + t % block_size) * head_dim;
  };
  int64_t pair = 0;
  for (int64_t row = item.row_begin; row < item.row_end; ++row) {
    const int64_t pos = row + row_offset;
    // The row's first visible key: pos - window + 1 with a sliding window, else 0.
    const int64_t window = batch.sliding_window;
    const int64_t lo = window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0;
    for (int64_t head = item.head_begin; head < item.head_end; ++head, ++pair) {
      const float* q = args.q + row * args.ld_q + head * head_dim;
      for (int64_t d = 0; d < head_dim; ++d) total[d] = 0.0f;
      total[head_dim] = -INFINITY;
      total[head_dim + 1] = 0.0f;
      const int64_t num_partitions = pos < 0 ? 0 : pos / kAttentionPartitionKeys + 1;
      const int64_t part_end =
          item.partition_end < num_partitions ? item.partition_end : num_partitions;
      for (int64_t part = item.partition_begin; part < part_end; ++part) {
        const bool is_first = part == item.partition_begin;
        float* state = is_first ? total : work;
        float* acc = state;
        float run_max = -INFINITY, run_sum = 0.0f;
        for (int64_t d = 0; d < head_dim; ++d) acc[d] = 0.0f;
        const int64_t t_begin = part * kAttentionPartitionKeys;
        const int64_t t_end = std::min(t_begin + kAttentionPartitionKeys, pos + 1);
        for (int64_t t0 = t_begin; t0 < t_end; t0 += kAttentionKeyChunk) {
          const int64_t len = std::min(t_end - t0, kAttentionKeyChunk);
          if (t0 + len <= lo) continue;  // wholly before the window
          const int64_t j0 = std::max<int64_t>(0, lo - t0);
          float chunk_max = -INFINITY;
          for (int64_t j = j0; j < len; ++j) {
            const Elem* k = key_row(k_cache, t0 + j);
            float dot = 0.0f;
            for (int64_t d = 0; d < head_dim; ++d) dot = madd<kFma>(q[d], widen_kv<T>(k[d]), dot);
            scores[j] = dot * args.scale;
            if (batch.softcap > 0.0f) {
              scores[j] = batch.softcap * std::tanh(scores[j] / batch.softcap);
            }
            chunk_max = std::fmax(chunk_max, scores[j]);
          }
          const float new_max = std::fmax(run_max, chunk_max);
          const float alpha = std::exp(run_max - new_max);
          float sum = 0.0f;
          for (int64_t j = j0; j < len; ++j) {
            scores[j] = std::exp(scores[j] - new_max);
            sum += scores[j];
          }
          run_max = new_max;
          run_sum = run_sum * alpha + sum;
          for (int64_t d = 0; d < head_dim; ++d) {
            float a = acc[d] * alpha;
            for (int64_t j = j0; j < len; ++j) {
              a = madd<kFma>(scores[j], widen_kv<T>(key_row(v_cache, t0 + j)[d]), a);
            }
            acc[d] = a;
          }
        }
        state[head_dim] = run_max;
        state[head_dim + 1] = run_sum;
        if (!is_first) merge_state(total, work, head_dim);
      }
      if (item.partial_states != nullptr) {
        float* dst = item.partial_states + (pair)*item.partial_pair_stride;
        for (int64_t i = 0; i < state_floats; ++i) dst[i] = total[i];
      } else {
        finalize_state(total, head_dim, args.out + row * args.ld_out + head * head_dim);
      }
    }
  }
}

template <bool kFma>
void attention_item_fma(const AttentionArgs& args, const AttentionItem& item, float* scratch) {
  switch (args.cache->type) {
    case KvCacheType::kF32:
      attention_item_impl<kFma, KvCacheType::kF32, float>(args, item, scratch);
      return;
    case KvCacheType::kBF16:
      attention_item_impl<kFma, KvCacheType::kBF16, uint16_t>(args, item, scratch);
      return;
    case KvCacheType::kF16:
      attention_item_impl<kFma, KvCacheType::kF16, uint16_t>(args, item, scratch);
      return;
  }
}

void attention_item(const AttentionArgs& args, const AttentionItem& item, float* scratch) {
  if (has_hardware_fma()) {
    attention_item_fma<true>(args, item, scratch);
  } else {
    attention_item_fma<false>(args, item, scratch);
  }
}

constexpr KernelTable kScalarTable = {
    Isa::kScalar,               // isa
    "scalar",                   // name
    &gemm_block,                // gemm_block
    &qgemm_block,               // qgemm_block
    &quantize_activation_rows,  // quantize_rows
    &rms_norm_rows,             // rms_norm_rows
    &layer_norm_rows,           // layer_norm_rows
    &add,                       // add
    &silu_mul_rows,             // silu_mul_rows
    &gelu_tanh_mul_rows,        // gelu_tanh_mul_rows
    &gelu_tanh,                 // gelu_tanh
    &relu,                      // relu
    &rope_rows,                 // rope_rows
    &attention_item,            // attention_item
    &attention_merge,           // attention_merge
};

}  // namespace

const KernelTable* scalar_kernel_table() { return &kScalarTable; }

}  // namespace cadence::kernels::cpu
