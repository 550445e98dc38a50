// The CPU backend's threading of the ops (ops_cpu.h): picks the ISA table once (isa.cc), splits
// each op over the thread pool and calls the table's single-threaded range kernels. Baseline
// flags only: no SIMD here. (ops_host.cc maps ops.h onto these; attention_plan_cpu.cc plans and
// runs attention.)
//
// Work splits never change results: every output element belongs to exactly one range, and
// the range kernels compute an element the same way whichever range it falls in.
#include "kernels/cpu/ops_cpu.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/work_split.h"

namespace cadence::kernels::cpu {
namespace {

// Row blocks of a GEMM split over M are multiples of every ISA's micro-tile height.
constexpr int64_t kGemmRowAlign = 12;

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

}  // namespace cadence::kernels::cpu
