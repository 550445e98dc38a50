// The CPU backend of ops.h: picks the ISA table once (isa.cc), splits each op over the thread
// pool and calls the table's single-threaded range kernels. Baseline flags only: no SIMD here.
//
// Work splits never change results: every output element belongs to exactly one range, and
// the range kernels compute an element the same way whichever range it falls in.
#include "kernels/cpu/ops_cpu.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/half.h"

namespace cadence::kernels {
namespace cpu {
namespace {

// Below these sizes waking the workers (a few microseconds) costs more than it saves.
constexpr int64_t kMinGemmFmasPerThread = 1 << 15;
constexpr int64_t kMinFloatsPerThread = 1 << 13;
constexpr int64_t kMinAttentionKeysPerThread = 1 << 11;
// Row blocks of a GEMM split over M are multiples of every ISA's micro-tile height.
constexpr int64_t kGemmRowAlign = 12;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Rows per chunk so that one chunk holds at least kMinFloatsPerThread floats of work.
int64_t row_grain(int64_t floats_per_row) {
  return std::max<int64_t>(1, ceil_div(kMinFloatsPerThread, std::max<int64_t>(1, floats_per_row)));
}

// How one paged_attention call is cut into work items.
struct AttentionPlan {
  int64_t heads_per_item = 1;
  // Decode rows (a sequence with one query row) with more than one key partition get one
  // item per partition; their partition states go to `partials` and are merged afterwards.
  bool is_split_decode = false;
  float* partials = nullptr;
};

int64_t num_key_partitions(int64_t pos) { return pos < 0 ? 0 : pos / kAttentionPartitionKeys + 1; }

// The number of key partitions of sequence s if its decode row is split, else 0.
int64_t split_partitions(const AttentionBatch& batch, int64_t s, const AttentionPlan& plan) {
  if (!plan.is_split_decode || batch.query_start[s + 1] - batch.query_start[s] != 1) return 0;
  const int64_t parts = num_key_partitions(batch.context_lens[s] - 1);
  return parts > 1 ? parts : 0;
}

// The first key position a row at `pos` sees (sliding window W > 0: pos - W + 1).
int64_t first_key(int64_t pos, int64_t window) {
  return window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0;
}

// Calls fn(item, cost) for every attention work item, in a fixed order: sequence, kv head,
// head chunk, then row chunk (or partition, for a split decode row). cost ~ keys x heads, for
// load balancing. Split rows' states are laid out in sequence order, then head, then
// partition: [split row][num_heads][partitions][state].
template <class Fn>
void for_each_attention_item(const AttentionBatch& batch, int64_t num_heads, int64_t num_kv_heads,
                             int64_t head_dim, const AttentionPlan& plan, Fn&& fn) {
  const int64_t group = num_heads / num_kv_heads;
  const int64_t state_floats = attention_state_floats(head_dim);
  const int64_t rows_per_item = std::max<int64_t>(1, kAttentionMaxPairs / plan.heads_per_item);
  int64_t partial_offset = 0;
  for (int64_t s = 0; s < batch.num_seqs; ++s) {
    const int64_t q_begin = batch.query_start[s];
    const int64_t q_end = batch.query_start[s + 1];
    const int64_t row_offset = batch.context_lens[s] - q_end;  // position = row + offset
    const int64_t parts = split_partitions(batch, s, plan);
    for (int64_t g = 0; g < num_kv_heads; ++g) {
      for (int64_t h0 = g * group; h0 < (g + 1) * group; h0 += plan.heads_per_item) {
        const int64_t h1 = std::min((g + 1) * group, h0 + plan.heads_per_item);
        AttentionItem item;
        item.seq = s;
        item.kv_head = g;
        item.head_begin = h0;
        item.head_end = h1;
        // + 16 keys: fixed per-item overhead (setup, output), keeps tiny items from being free.
        if (parts > 0) {
          item.row_begin = q_begin;
          item.row_end = q_end;
          item.partial_pair_stride = parts * state_floats;
          for (int64_t part = 0; part < parts; ++part) {
            item.partition_begin = part;
            item.partition_end = part + 1;
            if (plan.partials != nullptr) {
              item.partial_states =
                  plan.partials + partial_offset + (h0 * parts + part) * state_floats;
            }
            const int64_t key_begin =
                std::max(part * kAttentionPartitionKeys,
                         first_key(batch.context_lens[s] - 1, batch.sliding_window));
            const int64_t num_keys = std::max<int64_t>(
                0, std::min((part + 1) * kAttentionPartitionKeys, int64_t{batch.context_lens[s]}) -
                       key_begin);
            fn(item, (num_keys + 16) * (h1 - h0));
          }
          continue;
        }
        for (int64_t r0 = q_begin; r0 < q_end; r0 += rows_per_item) {
          const int64_t r1 = std::min(q_end, r0 + rows_per_item);
          int64_t num_keys = 0;
          for (int64_t r = r0; r < r1; ++r) {
            const int64_t pos = r + row_offset;
            num_keys += std::max<int64_t>(0, pos + 1 - first_key(pos, batch.sliding_window));
          }
          item.row_begin = r0;
          item.row_end = r1;
          fn(item, (num_keys + 16) * (h1 - h0));
        }
      }
    }
    partial_offset += parts * num_heads * state_floats;
  }
}

// Per-thread attention scratch; grows once, then reused (no allocation in steady state).
float* attention_scratch(int64_t num_floats) {
  thread_local std::vector<float> scratch;
  if (static_cast<int64_t>(scratch.size()) < num_floats) scratch.resize(num_floats);
  return scratch.data();
}

// The calling thread's buffer for split rows' partition states (same growth policy).
float* attention_partials(int64_t num_floats) {
  thread_local std::vector<float> partials;
  if (static_cast<int64_t>(partials.size()) < num_floats) partials.resize(num_floats);
  return partials.data();
}

}  // namespace

const KernelTable* kernel_table(Isa isa) {
  const KernelTable* table = nullptr;
  switch (isa) {
    case Isa::kScalar:
      table = scalar_kernel_table();
      break;
    case Isa::kAvx2:
      table = avx2_kernel_table();
      break;
    case Isa::kAvx512:
      table = avx512_kernel_table();
      break;
  }
  return table != nullptr && cpu_supports(isa) ? table : nullptr;
}

const KernelTable& active_kernel_table() {
  static const KernelTable* table = kernel_table(active_isa());
  return *table;
}

namespace {

// Splits an M x N GEMM over the pool and calls block(m0, m1, p0, p1) on ranges of rows and
// whole panels: N (panels) across threads, and M into row blocks as well when there are too few
// panels for that to balance. Never K. fmas_per_row_panel sizes the work for the thread count.
template <class Block>
void split_gemm(ThreadPool& pool, int64_t m, int64_t num_panels, int64_t fmas, Block&& block) {
  const int64_t max_chunks = std::max<int64_t>(1, fmas / kMinGemmFmasPerThread);
  const int64_t num_threads = std::min<int64_t>(pool.num_threads(), max_chunks);
  int64_t m_block = m;
  if (num_panels < 4 * num_threads && m >= 2 * kGemmRowAlign) {
    const int64_t num_m_blocks =
        std::min(ceil_div(m, kGemmRowAlign), ceil_div(4 * num_threads, num_panels));
    m_block = ceil_div(ceil_div(m, num_m_blocks), kGemmRowAlign) * kGemmRowAlign;
  }
  const int64_t num_units = ceil_div(m, m_block) * num_panels;
  auto run_units = [&block, m, m_block, num_panels](int64_t u_begin, int64_t u_end) {
    for (int64_t u = u_begin; u < u_end;) {
      const int64_t mb = u / num_panels;
      const int64_t p0 = u % num_panels;
      const int64_t p1 = std::min(num_panels, p0 + (u_end - u));
      block(mb * m_block, std::min(m, (mb + 1) * m_block), p0, p1);
      u += p1 - p0;
    }
  };
  if (num_threads <= 1) {
    run_units(0, num_units);
  } else {
    pool.parallel_for_grain(num_units, ceil_div(num_units, num_threads), run_units);
  }
}

// The calling thread's quantized-activation buffers (grow once, then reused: no allocation in
// steady state).
QuantizedActsOut activation_buffer(int64_t m, int64_t k, int64_t block_cols) {
  thread_local std::vector<int8_t> codes;
  thread_local std::vector<float> scales;
  const int64_t ld_codes = ceil_div(k, 64) * 64;
  const int64_t ld_blocks = k / block_cols;
  if (static_cast<int64_t>(codes.size()) < m * ld_codes) codes.resize(m * ld_codes);
  if (static_cast<int64_t>(scales.size()) < 2 * m * ld_blocks) scales.resize(2 * m * ld_blocks);
  QuantizedActsOut out;
  out.codes = codes.data();
  out.ld_codes = ld_codes;
  out.scales = scales.data();
  out.scaled_sums = scales.data() + m * ld_blocks;
  out.ld_blocks = ld_blocks;
  return out;
}

// The table's qgemm_block (the AVX-512 table without VNNI already points at the AVX2 one).
void quantized_gemm(const KernelTable& table, ThreadPool& pool, const float* a, int64_t m,
                    int64_t lda, const PackedWeight& w, const float* bias, float* c, int64_t ldc) {
  const int64_t k = w.num_cols();
  const QuantizedActsOut acts = activation_buffer(m, k, w.block_cols());
  // Quantizing a row costs about as much as a few of its GEMM columns: split rows only when
  // there are enough of them to pay for waking the workers.
  pool.parallel_for_grain(m, row_grain(4 * k), [&](int64_t r0, int64_t r1) {
    table.quantize_rows(a, lda, k, w.block_cols(), acts, r0, r1);
  });
  QGemmArgs args;
  args.a = acts.view();
  args.m = m;
  args.w_panels = static_cast<const unsigned char*>(w.panel(0));
  args.w_type = w.type();
  args.panel_bytes = w.panel_bytes();
  args.record_bytes = w.record_bytes();
  args.block_cols = w.block_cols();
  args.has_f16_scales = w.has_f16_scales();
  args.codes_fit_7_bits = w.codes_fit_7_bits();
  args.n = w.num_rows();
  args.k = k;
  args.bias = bias;
  args.c = c;
  args.ldc = ldc;
  // An int8 multiply-add costs about a quarter of an fp32 FMA here.
  split_gemm(pool, m, w.num_panels(), m * args.n * k / 4,
             [&table, &args](int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
               table.qgemm_block(args, m0, m1, p0, p1);
             });
}

}  // namespace

void gemm(const KernelTable& table, ThreadPool& pool, const float* a, int64_t m, int64_t lda,
          const PackedWeight& w, const float* bias, float* c, int64_t ldc) {
  const int64_t n = w.num_rows();
  const int64_t k = w.num_cols();
  if (m <= 0 || n <= 0) return;
  if (k == 0) {  // empty chains: C = 0 (+ bias)
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = bias != nullptr ? 0.0f + bias[j] : 0.0f;
    }
    return;
  }
  if (w.is_quantized()) {
    quantized_gemm(table, pool, a, m, lda, w, bias, c, ldc);
    return;
  }
  GemmArgs args;
  args.a = a;
  args.m = m;
  args.lda = lda;
  args.w_panels = w.panel(0);
  args.w_type = w.type();
  args.n = n;
  args.k = k;
  args.bias = bias;
  args.c = c;
  args.ldc = ldc;
  split_gemm(pool, m, w.num_panels(), m * n * k,
             [&table, &args](int64_t m0, int64_t m1, int64_t p0, int64_t p1) {
               table.gemm_block(args, m0, m1, p0, p1);
             });
}

void rms_norm(const KernelTable& table, ThreadPool& pool, const float* x, int64_t num_rows,
              int64_t dim, int64_t ld_x, const float* weight, float eps, float* out,
              int64_t ld_out) {
  pool.parallel_for_grain(num_rows, row_grain(dim), [&](int64_t r0, int64_t r1) {
    table.rms_norm_rows(x, dim, ld_x, weight, eps, out, ld_out, r0, r1);
  });
}

void layer_norm(const KernelTable& table, ThreadPool& pool, const float* x, int64_t num_rows,
                int64_t dim, int64_t ld_x, const float* weight, const float* bias, float eps,
                float* out, int64_t ld_out) {
  // Three passes over the row: about 2x the work of an rms_norm row.
  pool.parallel_for_grain(num_rows, row_grain(2 * dim), [&](int64_t r0, int64_t r1) {
    table.layer_norm_rows(x, dim, ld_x, weight, bias, eps, out, ld_out, r0, r1);
  });
}

void gelu_tanh(const KernelTable& table, ThreadPool& pool, const float* x, int64_t num_elements,
               float* out) {
  // exp makes an element ~4x the work of a plain elementwise op.
  pool.parallel_for_grain(num_elements, kMinFloatsPerThread / 4, [&](int64_t i0, int64_t i1) {
    table.gelu_tanh(x + i0, i1 - i0, out + i0);
  });
}

void relu(const KernelTable& table, ThreadPool& pool, const float* x, int64_t num_elements,
          float* out) {
  pool.parallel_for_grain(num_elements, kMinFloatsPerThread,
                          [&](int64_t i0, int64_t i1) { table.relu(x + i0, i1 - i0, out + i0); });
}

void add_inplace(const KernelTable& table, ThreadPool& pool, float* x, const float* y,
                 int64_t num_elements) {
  pool.parallel_for_grain(num_elements, kMinFloatsPerThread,
                          [&](int64_t i0, int64_t i1) { table.add(x + i0, y + i0, i1 - i0); });
}

void silu_mul(const KernelTable& table, ThreadPool& pool, const float* gate_up, int64_t num_rows,
              int64_t inter, int64_t ld_gate_up, float* out, int64_t ld_out) {
  // exp makes an element ~4x the work of a plain elementwise op.
  pool.parallel_for_grain(num_rows, row_grain(4 * inter), [&](int64_t r0, int64_t r1) {
    table.silu_mul_rows(gate_up, inter, ld_gate_up, out, ld_out, r0, r1);
  });
}

void gelu_tanh_mul(const KernelTable& table, ThreadPool& pool, const float* gate_up,
                   int64_t num_rows, int64_t inter, int64_t ld_gate_up, float* out,
                   int64_t ld_out) {
  pool.parallel_for_grain(num_rows, row_grain(4 * inter), [&](int64_t r0, int64_t r1) {
    table.gelu_tanh_mul_rows(gate_up, inter, ld_gate_up, out, ld_out, r0, r1);
  });
}

void rope_neox(const KernelTable& table, ThreadPool& pool, float* x, int64_t num_tokens,
               int64_t num_heads, int64_t head_dim, int64_t rot_dim, int64_t ld_x,
               const int32_t* positions, const float* cos_sin) {
  pool.parallel_for_grain(num_tokens, row_grain(num_heads * rot_dim), [&](int64_t t0, int64_t t1) {
    table.rope_rows(x, num_heads, head_dim, rot_dim, ld_x, positions, cos_sin, t0, t1);
  });
}

void paged_attention(const KernelTable& table, ThreadPool& pool, const float* q, int64_t ld_q,
                     int64_t num_heads, const AttentionBatch& batch, const PagedKvCache& cache,
                     float scale, float* out, int64_t ld_out) {
  const int64_t num_kv_heads = cache.num_kv_heads;
  if (batch.num_seqs <= 0 || num_kv_heads <= 0 || num_heads <= 0) return;
  const int64_t group = num_heads / num_kv_heads;
  if (group <= 0) return;
  AttentionArgs args;
  args.q = q;
  args.ld_q = ld_q;
  args.num_heads = num_heads;
  args.batch = &batch;
  args.cache = &cache;
  args.scale = scale;
  args.out = out;
  args.ld_out = ld_out;

  // Plan: whole GQA groups per item (K/V read once for all heads of a kv head). When that
  // gives too few items to balance the threads (decode of a few sequences), split long decode
  // rows by key partition; if threads would still idle, split the groups' heads as well.
  AttentionPlan plan;
  plan.heads_per_item = std::min(group, kAttentionMaxPairs);
  int64_t num_items = 0;
  int64_t total_cost = 0;
  auto count = [&] {
    num_items = 0;
    total_cost = 0;
    for_each_attention_item(batch, num_heads, num_kv_heads, cache.head_dim, plan,
                            [&](const AttentionItem&, int64_t cost) {
                              ++num_items;
                              total_cost += cost;
                            });
  };
  count();
  const int64_t max_threads =
      std::max<int64_t>(1, total_cost * cache.head_dim / (kMinAttentionKeysPerThread * 64));
  const int64_t num_threads = std::min<int64_t>(pool.num_threads(), max_threads);
  if (num_threads > 1 && num_items < 4 * num_threads) {
    plan.is_split_decode = true;
    count();
    if (num_items < num_threads) {
      const int64_t chunks_per_group = ceil_div(num_threads, num_items);
      plan.heads_per_item = std::max<int64_t>(1, ceil_div(plan.heads_per_item, chunks_per_group));
      count();
    }
  }
  const int64_t state_floats = attention_state_floats(cache.head_dim);
  int64_t num_partial_floats = 0;
  for (int64_t s = 0; s < batch.num_seqs; ++s) {
    num_partial_floats += split_partitions(batch, s, plan) * num_heads * state_floats;
  }
  if (num_partial_floats > 0) plan.partials = attention_partials(num_partial_floats);
  const int64_t scratch_floats = attention_scratch_floats(cache.head_dim, kAttentionMaxPairs);

  // Thread t runs the items whose cost midpoint falls in the t-th of num_threads equal
  // shares of the total cost: contiguous runs of items, balanced by keys visited.
  auto run_share = [&](int64_t t_begin, int64_t t_end) {
    float* scratch = attention_scratch(scratch_floats);
    int64_t cost_before = 0;
    for_each_attention_item(batch, num_heads, num_kv_heads, cache.head_dim, plan,
                            [&](const AttentionItem& item, int64_t cost) {
                              const int64_t mid = cost_before + cost / 2;
                              cost_before += cost;
                              const int64_t owner =
                                  std::min(num_threads - 1, mid * num_threads / total_cost);
                              if (owner >= t_begin && owner < t_end)
                                table.attention_item(args, item, scratch);
                            });
  };
  if (num_threads <= 1) {
    run_share(0, 1);
  } else {
    pool.parallel_for(num_threads, run_share);
  }

  // Merge the split decode rows' partition states, in partition order (small: heads x
  // partitions x head_dim per row, so the calling thread does it).
  if (plan.partials != nullptr) {
    float* scratch = attention_scratch(scratch_floats);
    const float* states = plan.partials;
    for (int64_t s = 0; s < batch.num_seqs; ++s) {
      const int64_t parts = split_partitions(batch, s, plan);
      if (parts == 0) continue;
      const int64_t row = batch.query_start[s];
      for (int64_t h = 0; h < num_heads; ++h) {
        table.attention_merge(states, parts, cache.head_dim, scratch,
                              out + row * ld_out + h * cache.head_dim);
        states += parts * state_floats;
      }
    }
  }
}

}  // namespace cpu

// --- ops.h: the active ISA ----------------------------------------------------------------

void gemm(ThreadPool& pool, const float* a, int64_t m, int64_t lda, const PackedWeight& w,
          const float* bias, float* c, int64_t ldc) {
  cpu::gemm(cpu::active_kernel_table(), pool, a, m, lda, w, bias, c, ldc);
}

void rms_norm(ThreadPool& pool, const float* x, int64_t num_rows, int64_t dim, int64_t ld_x,
              const float* weight, float eps, float* out, int64_t ld_out) {
  cpu::rms_norm(cpu::active_kernel_table(), pool, x, num_rows, dim, ld_x, weight, eps, out, ld_out);
}

void layer_norm(ThreadPool& pool, const float* x, int64_t num_rows, int64_t dim, int64_t ld_x,
                const float* weight, const float* bias, float eps, float* out, int64_t ld_out) {
  cpu::layer_norm(cpu::active_kernel_table(), pool, x, num_rows, dim, ld_x, weight, bias, eps, out,
                  ld_out);
}

void gelu_tanh(ThreadPool& pool, const float* x, int64_t num_elements, float* out) {
  cpu::gelu_tanh(cpu::active_kernel_table(), pool, x, num_elements, out);
}

void relu(ThreadPool& pool, const float* x, int64_t num_elements, float* out) {
  cpu::relu(cpu::active_kernel_table(), pool, x, num_elements, out);
}

void add_inplace(ThreadPool& pool, float* x, const float* y, int64_t num_elements) {
  cpu::add_inplace(cpu::active_kernel_table(), pool, x, y, num_elements);
}

void silu_mul(ThreadPool& pool, const float* gate_up, int64_t num_rows, int64_t inter,
              int64_t ld_gate_up, float* out, int64_t ld_out) {
  cpu::silu_mul(cpu::active_kernel_table(), pool, gate_up, num_rows, inter, ld_gate_up, out,
                ld_out);
}

void gelu_tanh_mul(ThreadPool& pool, const float* gate_up, int64_t num_rows, int64_t inter,
                   int64_t ld_gate_up, float* out, int64_t ld_out) {
  cpu::gelu_tanh_mul(cpu::active_kernel_table(), pool, gate_up, num_rows, inter, ld_gate_up, out,
                     ld_out);
}

void rope_neox(ThreadPool& pool, float* x, int64_t num_tokens, int64_t num_heads, int64_t head_dim,
               int64_t rot_dim, int64_t ld_x, const int32_t* positions, const float* cos_sin) {
  cpu::rope_neox(cpu::active_kernel_table(), pool, x, num_tokens, num_heads, head_dim, rot_dim,
                 ld_x, positions, cos_sin);
}

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
  const int64_t grain = cpu::row_grain(2 * cache.num_kv_heads * head_dim);
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

// Plain copies or conversions, no ISA table needed. A negative slot (padding token) is skipped.
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

void paged_attention(ThreadPool& pool, const float* q, int64_t ld_q, int64_t num_heads,
                     const AttentionBatch& batch, const PagedKvCache& cache, float scale,
                     float* out, int64_t ld_out) {
  cpu::paged_attention(cpu::active_kernel_table(), pool, q, ld_q, num_heads, batch, cache, scale,
                       out, ld_out);
}

}  // namespace cadence::kernels
