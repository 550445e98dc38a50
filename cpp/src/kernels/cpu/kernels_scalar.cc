// The scalar path: plain C++ loops, baseline flags. It is the fallback on CPUs without AVX2
// and the cross-check for the SIMD paths. Same numerics contracts as the SIMD code:
// - gemm: one std::fma chain per output over ascending k (bit-identical to the SIMD paths);
// - attention: the same key chunks and online-softmax steps, per pair, in fixed order;
// - row ops: sequential per-row reductions.
#include <cmath>
#include <cstdint>

#include "kernels/cpu/kernel_table.h"
#include "kernels/packed_weight.h"

namespace cadence::kernels::cpu {
namespace {

constexpr int64_t kPanel = PackedWeight::kPanelRows;

void gemm_block(const GemmArgs& g, int64_t m_begin, int64_t m_end, int64_t p_begin,
                int64_t p_end) {
  for (int64_t p = p_begin; p < p_end; ++p) {
    const float* panel = g.w_panels + p * g.k * kPanel;
    const int64_t num_cols = g.n - p * kPanel < kPanel ? g.n - p * kPanel : kPanel;
    for (int64_t i = m_begin; i < m_end; ++i) {
      const float* a = g.a + i * g.lda;
      float acc[kPanel] = {};
      for (int64_t k = 0; k < g.k; ++k) {
        const float* wk = panel + k * kPanel;
        for (int64_t r = 0; r < kPanel; ++r) acc[r] = std::fma(a[k], wk[r], acc[r]);
      }
      float* c = g.c + i * g.ldc + p * kPanel;
      for (int64_t r = 0; r < num_cols; ++r) {
        c[r] = g.bias != nullptr ? acc[r] + g.bias[p * kPanel + r] : acc[r];
      }
    }
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
               const int32_t* positions, const float* cos_sin, int64_t row_begin,
               int64_t row_end) {
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

// Same key chunks as simd::attention_item (kernel_table.h), one pair at a time.
void attention_item(const AttentionArgs& args, const AttentionItem& item, float* scratch) {
  const PagedKvCache& cache = *args.cache;
  const AttentionBatch& batch = *args.batch;
  const int64_t head_dim = cache.head_dim;
  const int64_t block_size = cache.block_size;
  const int64_t q_end = batch.query_start[item.seq + 1];
  const int64_t row_offset = batch.context_lens[item.seq] - q_end;  // position = row + offset
  const int32_t* block_table = batch.block_tables + item.seq * batch.max_blocks_per_seq;
  float* acc = scratch;
  float* scores = scratch + head_dim;
  // Row of token t of this kv head in a cache.
  auto key_row = [&](const float* base, int64_t t) {
    const int64_t block_id = block_table[t / block_size];
    return base + ((block_id * cache.num_kv_heads + item.kv_head) * block_size + t % block_size) *
                      head_dim;
  };
  for (int64_t row = item.row_begin; row < item.row_end; ++row) {
    const int64_t pos = row + row_offset;
    for (int64_t head = item.head_begin; head < item.head_end; ++head) {
      const float* q = args.q + row * args.ld_q + head * head_dim;
      float* o = args.out + row * args.ld_out + head * head_dim;
      float run_max = -INFINITY, run_sum = 0.0f;
      for (int64_t d = 0; d < head_dim; ++d) acc[d] = 0.0f;
      for (int64_t t0 = 0; t0 <= pos; t0 += kAttentionKeyChunk) {
        const int64_t len = pos + 1 - t0 < kAttentionKeyChunk ? pos + 1 - t0 : kAttentionKeyChunk;
        float chunk_max = -INFINITY;
        for (int64_t j = 0; j < len; ++j) {
          const float* k = key_row(cache.k_cache, t0 + j);
          float dot = 0.0f;
          for (int64_t d = 0; d < head_dim; ++d) dot = std::fma(q[d], k[d], dot);
          scores[j] = dot * args.scale;
          chunk_max = std::fmax(chunk_max, scores[j]);
        }
        const float new_max = std::fmax(run_max, chunk_max);
        const float alpha = std::exp(run_max - new_max);
        float sum = 0.0f;
        for (int64_t j = 0; j < len; ++j) {
          scores[j] = std::exp(scores[j] - new_max);
          sum += scores[j];
        }
        run_max = new_max;
        run_sum = run_sum * alpha + sum;
        for (int64_t d = 0; d < head_dim; ++d) {
          float a = acc[d] * alpha;
          for (int64_t j = 0; j < len; ++j) {
            a = std::fma(scores[j], key_row(cache.v_cache, t0 + j)[d], a);
          }
          acc[d] = a;
        }
      }
      for (int64_t d = 0; d < head_dim; ++d) o[d] = run_sum > 0.0f ? acc[d] / run_sum : 0.0f;
    }
  }
}

constexpr KernelTable kScalarTable = {
    Isa::kScalar, "scalar", &gemm_block, &rms_norm_rows, &add, &silu_mul_rows, &rope_rows,
    &attention_item,
};

}  // namespace

const KernelTable* scalar_kernel_table() { return &kScalarTable; }

}  // namespace cadence::kernels::cpu
