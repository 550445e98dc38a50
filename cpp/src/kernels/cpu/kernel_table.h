// Internal to the CPU backend: the per-ISA table of single-threaded range kernels.
//
// Each ISA path (scalar, AVX2, AVX-512) fills one KernelTable with functions that work on a
// range of rows / panels / work items and never touch the thread pool. ops_cpu.cc (baseline
// flags) owns the threading: it splits the work, then calls the table of the active ISA.
//
// Why ranges and not whole ops: *_avx2.cc / *_avx512.cc are compiled with wider-ISA flags, so
// any inline or template function they instantiate from a shared header (std::function,
// std::vector, ...) could be emitted with AVX instructions and then picked by the linker for
// baseline code too. Keeping the ISA files free of standard-library templates (plain loops
// over raw pointers, only our own templates keyed on the ISA type) avoids that.
#pragma once

#include <cstdint>

#include "kernels/isa.h"
#include "kernels/packed_weight.h"
#include "kernels/paged_kv.h"

namespace cadence::kernels::cpu {

// One GEMM call, C = A * W^T (+ bias), with W in the PackedWeight panel layout.
struct GemmArgs {
  const float* a = nullptr;
  int64_t m = 0;
  int64_t lda = 0;
  const void* w_panels = nullptr;        // PackedWeight::panel(0)
  WeightType w_type = WeightType::kF32;  // PackedWeight::type(): its elements' format
  int64_t n = 0;                         // rows of W = columns of C
  int64_t k = 0;                         // columns of W = columns of A (> 0)
  const float* bias = nullptr;           // n floats, or nullptr
  float* c = nullptr;
  int64_t ldc = 0;
};

// The activations of one quantized GEMM call: each row of A quantized to int8 in blocks of 32
// columns (ops_cpu.cc), with per weight block (block_cols of the weight) the activation
// block's scale and scale * (sum of its codes in that weight block).
struct QuantizedActs {
  const int8_t* codes = nullptr;  // row i: codes + i * ld_codes, k codes
  int64_t ld_codes = 0;
  const float* scales = nullptr;       // row i, weight block b: scales[i * ld_blocks + b]
  const float* scaled_sums = nullptr;  // same layout
  int64_t ld_blocks = 0;
};

// Where quantize_rows writes: row i at codes + i * ld_codes, scales / scaled_sums + i *
// ld_blocks (ld_blocks >= k / block_cols).
struct QuantizedActsOut {
  int8_t* codes = nullptr;
  int64_t ld_codes = 0;
  float* scales = nullptr;
  float* scaled_sums = nullptr;
  int64_t ld_blocks = 0;

  QuantizedActs view() const { return {codes, ld_codes, scales, scaled_sums, ld_blocks}; }
};

// One quantized GEMM call, C = dequant(A) * dequant(W)^T (+ bias), W in PackedWeight's record
// layout (kQ4 / kQ8). Numerics contract, for every C[i][n], whichever tile or thread computes it:
//   acc = 0
//   for each weight block b, ascending:
//     isum = sum over the block of code_w * code_a        (exact int32)
//     acc = fma(float(isum), scale_w * scale_a, acc)      (scale_w * scale_a rounded to fp32)
//     acc = fma(min_w, scaled_sum_a, acc)
//   C = acc (+ bias[n])
// so every ISA path agrees bit for bit (int sums are exact; the fp32 steps are fixed).
struct QGemmArgs {
  QuantizedActs a;
  int64_t m = 0;
  const unsigned char* w_panels = nullptr;  // PackedWeight::panel(0)
  WeightType w_type = WeightType::kQ4;      // kQ4 or kQ8
  int64_t panel_bytes = 0;
  int64_t record_bytes = 0;
  int64_t block_cols = 32;
  bool has_f16_scales = true;
  bool codes_fit_7_bits = true;
  int64_t n = 0;
  int64_t k = 0;  // a multiple of 32
  const float* bias = nullptr;
  float* c = nullptr;
  int64_t ldc = 0;
};

// One paged_attention call.
struct AttentionArgs {
  const float* q = nullptr;
  int64_t ld_q = 0;
  int64_t num_heads = 0;
  const AttentionBatch* batch = nullptr;
  const PagedKvCache* cache = nullptr;
  float scale = 1.0f;
  float* out = nullptr;
  int64_t ld_out = 0;
};

// A unit of attention work: query rows [row_begin, row_end) of sequence `seq` (absolute row
// indices into q/out) times query heads [head_begin, head_end), all reading one kv head.
// Every (row, head) pair is computed by the same instruction sequence whatever else is in
// the item, so items can be cut any way without changing results.
//
// Keys are grouped in partitions of kAttentionPartitionKeys positions; an item processes
// partitions [partition_begin, partition_end) of its pairs (clipped to the keys they see).
// With partial_states == nullptr it must cover all of them and writes the output; otherwise
// it writes each pair's softmax state (attention_state_floats floats) to
// partial_states + pair * partial_pair_stride for attention_merge to combine.
struct AttentionItem {
  int64_t seq = 0;
  int64_t kv_head = 0;
  int64_t head_begin = 0;
  int64_t head_end = 0;
  int64_t row_begin = 0;
  int64_t row_end = 0;
  int64_t partition_begin = 0;
  int64_t partition_end = INT64_MAX;
  float* partial_states = nullptr;
  int64_t partial_pair_stride = 0;
};

// Keys are consumed in chunks of this many positions, [c * 64, (c + 1) * 64); the
// online-softmax rescale happens once per chunk. Chunk boundaries are fixed positions, so a
// row's reduction order does not depend on the batch (nor on the cache block size).
constexpr int64_t kAttentionKeyChunk = 64;
// Key partitions: positions [i * 256, (i + 1) * 256) (a multiple of the chunk). Each
// partition's softmax state is computed from scratch and the states are merged in ascending
// order, which lets a long decode row be split over threads without changing its result.
constexpr int64_t kAttentionPartitionKeys = 256;
// Upper bound on (row, head) pairs per AttentionItem (sizes the scratch buffer).
constexpr int64_t kAttentionMaxPairs = 32;

// Floats of one pair's softmax state: acc[head_dim], running max, running sum.
constexpr int64_t attention_state_floats(int64_t head_dim) { return head_dim + 2; }

// Floats of scratch one attention_item or attention_merge call needs.
constexpr int64_t attention_scratch_floats(int64_t head_dim, int64_t num_pairs) {
  // total and partition states [num_pairs][state] + scores[num_pairs][chunk]
  return num_pairs * (2 * attention_state_floats(head_dim) + kAttentionKeyChunk) + 64;
}

struct KernelTable {
  Isa isa;           // the instruction set the functions need
  const char* name;  // for tests and benchmarks: "scalar", "avx2", "avx512", ...
  // Rows [m_begin, m_end) of C for W panels [panel_begin, panel_end), full K.
  void (*gemm_block)(const GemmArgs& args, int64_t m_begin, int64_t m_end, int64_t panel_begin,
                     int64_t panel_end);
  // The same for a quantized W (QGemmArgs' contract).
  void (*qgemm_block)(const QGemmArgs& args, int64_t m_begin, int64_t m_end, int64_t panel_begin,
                      int64_t panel_end);
  // Rows [row_begin, row_end) of A quantized for qgemm_block (quantize_acts.h's contract: the
  // same codes and scales on every path).
  void (*quantize_rows)(const float* a, int64_t lda, int64_t k, int64_t block_cols,
                        const QuantizedActsOut& out, int64_t row_begin, int64_t row_end);
  // Rows [row_begin, row_end) of rms_norm.
  void (*rms_norm_rows)(const float* x, int64_t dim, int64_t ld_x, const float* weight, float eps,
                        float* out, int64_t ld_out, int64_t row_begin, int64_t row_end);
  // Rows [row_begin, row_end) of layer_norm.
  void (*layer_norm_rows)(const float* x, int64_t dim, int64_t ld_x, const float* weight,
                          const float* bias, float eps, float* out, int64_t ld_out,
                          int64_t row_begin, int64_t row_end);
  // x[i] += y[i], i < num_elements.
  void (*add)(float* x, const float* y, int64_t num_elements);
  // Rows [row_begin, row_end) of silu_mul.
  void (*silu_mul_rows)(const float* gate_up, int64_t inter, int64_t ld_gate_up, float* out,
                        int64_t ld_out, int64_t row_begin, int64_t row_end);
  // Rows [row_begin, row_end) of gelu_tanh_mul.
  void (*gelu_tanh_mul_rows)(const float* gate_up, int64_t inter, int64_t ld_gate_up, float* out,
                             int64_t ld_out, int64_t row_begin, int64_t row_end);
  // out[i] = gelu_tanh(x[i]) / relu(x[i]), i < num_elements (out may alias x).
  void (*gelu_tanh)(const float* x, int64_t num_elements, float* out);
  void (*relu)(const float* x, int64_t num_elements, float* out);
  // Tokens [row_begin, row_end) of rope_neox.
  void (*rope_rows)(float* x, int64_t num_heads, int64_t head_dim, int64_t rot_dim, int64_t ld_x,
                    const int32_t* positions, const float* cos_sin, int64_t row_begin,
                    int64_t row_end);
  // One attention work item; scratch holds attention_scratch_floats(head_dim, pairs) floats.
  void (*attention_item)(const AttentionArgs& args, const AttentionItem& item, float* scratch);
  // Merges num_states partition states of one pair (consecutive, in partition order) and
  // writes its output row of head_dim floats; scratch holds attention_state_floats floats.
  void (*attention_merge)(const float* states, int64_t num_states, int64_t head_dim, float* scratch,
                          float* out);
};

// The table of one ISA path, or nullptr when this build does not contain that path.
// Callers must also check cpu_supports(isa) before running it.
const KernelTable* scalar_kernel_table();
const KernelTable* avx2_kernel_table();
const KernelTable* avx512_kernel_table();

// Test-only: the AVX-512 algorithm emulated with pairs of AVX2 registers (needs AVX2), so
// that machines without AVX-512 can test its code paths. nullptr without AVX2 in the build.
const KernelTable* emulated_avx512_kernel_table();

// Whether this CPU (and OS) can run the given path (ignores CADENCE_ISA). Defined in isa.cc.
bool cpu_supports(Isa isa);
// Whether the CPU has AVX-512 VNNI (vpdpbusd), which the AVX-512 table's qgemm_block uses;
// without it that table takes the AVX2 qgemm_block. Defined in isa.cc.
bool cpu_supports_avx512_vnni();

// The AVX2 path's and the AVX-512 VNNI path's qgemm_block (qgemm_avx2.cc / qgemm_avx512vnni.cc),
// for the tables to share; only valid where those paths are built (avx2_kernel_table() /
// avx512_kernel_table() non-null).
void qgemm_block_avx2(const QGemmArgs& args, int64_t m_begin, int64_t m_end, int64_t panel_begin,
                      int64_t panel_end);
void qgemm_block_avx512_vnni(const QGemmArgs& args, int64_t m_begin, int64_t m_end,
                             int64_t panel_begin, int64_t panel_end);
// Their quantize_rows (the VNNI file's needs only AVX-512 F/BW/VL but lives with its qgemm).
void quantize_rows_avx2(const float* a, int64_t lda, int64_t k, int64_t block_cols,
                        const QuantizedActsOut& out, int64_t row_begin, int64_t row_end);
void quantize_rows_avx512_vnni(const float* a, int64_t lda, int64_t k, int64_t block_cols,
                               const QuantizedActsOut& out, int64_t row_begin, int64_t row_end);

// The table for `isa` if it is built and runnable here, else nullptr.
const KernelTable* kernel_table(Isa isa);
// The table of active_isa().
const KernelTable& active_kernel_table();

}  // namespace cadence::kernels::cpu
