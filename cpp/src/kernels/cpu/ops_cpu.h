// The CPU ops of ops.h with an explicit ISA path, for tests and benchmarks that compare the
// paths (the public ops use active_kernel_table()). Same contracts as ops.h.
#pragma once

#include <cstdint>

#include "kernels/cpu/kernel_table.h"
#include "kernels/ops.h"

namespace cadence::kernels::cpu {

void gemm(const KernelTable& table, ThreadPool& pool, const float* a, int64_t m, int64_t lda,
          const PackedWeight& w, const float* bias, float* c, int64_t ldc);

void rms_norm(const KernelTable& table, ThreadPool& pool, const float* x, int64_t num_rows,
              int64_t dim, int64_t ld_x, const float* weight, float eps, float* out,
              int64_t ld_out);

void layer_norm(const KernelTable& table, ThreadPool& pool, const float* x, int64_t num_rows,
                int64_t dim, int64_t ld_x, const float* weight, const float* bias, float eps,
                float* out, int64_t ld_out);

void gelu_tanh(const KernelTable& table, ThreadPool& pool, const float* x, int64_t num_elements,
               float* out);

void relu(const KernelTable& table, ThreadPool& pool, const float* x, int64_t num_elements,
          float* out);

void add_inplace(const KernelTable& table, ThreadPool& pool, float* x, const float* y,
                 int64_t num_elements);

void silu_mul(const KernelTable& table, ThreadPool& pool, const float* gate_up, int64_t num_rows,
              int64_t inter, int64_t ld_gate_up, float* out, int64_t ld_out);

void gelu_tanh_mul(const KernelTable& table, ThreadPool& pool, const float* gate_up,
                   int64_t num_rows, int64_t inter, int64_t ld_gate_up, float* out, int64_t ld_out);

void rope_neox(const KernelTable& table, ThreadPool& pool, float* x, int64_t num_tokens,
               int64_t num_heads, int64_t head_dim, int64_t rot_dim, int64_t ld_x,
               const int32_t* positions, const float* cos_sin);

// Plans one step's attention for the pool's thread count (attention_plan.h).
void plan_attention(ThreadPool& pool, const AttentionBatch& batch, const AttentionShape& shape,
                    AttentionPlan& plan);

// Runs a plan over one layer's cache: q rows of num_heads * head_dim floats at stride ld_q, out
// the same at ld_out.
void run_attention(const KernelTable& table, ThreadPool& pool, const AttentionPlan& plan,
                   const float* q, int64_t ld_q, const PagedKvCache& cache, float scale, float* out,
                   int64_t ld_out);

// plan_attention then run_attention, for one call (tests and benchmarks).
void paged_attention(const KernelTable& table, ThreadPool& pool, const float* q, int64_t ld_q,
                     int64_t num_heads, const AttentionBatch& batch, const PagedKvCache& cache,
                     float scale, float* out, int64_t ld_out);

// The write_kv_cache of ops.h over raw arrays (no ISA table: plain copies or conversions).
void write_kv_cache(ThreadPool& pool, const float* k, const float* v, int64_t num_tokens,
                    int64_t ld_kv, const int32_t* slot_mapping, const PagedKvCache& cache);

}  // namespace cadence::kernels::cpu
