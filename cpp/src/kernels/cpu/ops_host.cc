// ops.h on the CPU: each op takes the views apart and runs the cpu:: op on the active ISA
// table over ctx.pool. The CPU is the only backend this build has, so every context is a host
// context (context.h's cpu_context); a CUDA build dispatches on ctx.device before this point.
#include <cmath>
#include <cstring>

#include "kernels/cpu/ops_cpu.h"
#include "kernels/cpu/work_split.h"

namespace cadence::kernels {

void gemm(const ExecutionContext& ctx, const TensorView& a, const PackedWeight& w,
          const TensorView& bias, const TensorView& c) {
  cpu::gemm(cpu::active_kernel_table(), ctx.threads(), a.as<const float>(), a.num_rows(),
            a.row_stride(), w, bias.as<const float>(), c.as<float>(), c.row_stride());
}

void rms_norm(const ExecutionContext& ctx, const TensorView& x, const TensorView& weight, float eps,
              const TensorView& out) {
  cpu::rms_norm(cpu::active_kernel_table(), ctx.threads(), x.as<const float>(), x.num_rows(),
                x.num_cols(), x.row_stride(), weight.as<const float>(), eps, out.as<float>(),
                out.row_stride());
}

void layer_norm(const ExecutionContext& ctx, const TensorView& x, const TensorView& weight,
                const TensorView& bias, float eps, const TensorView& out) {
  cpu::layer_norm(cpu::active_kernel_table(), ctx.threads(), x.as<const float>(), x.num_rows(),
                  x.num_cols(), x.row_stride(), weight.as<const float>(), bias.as<const float>(),
                  eps, out.as<float>(), out.row_stride());
}

void gelu_tanh(const ExecutionContext& ctx, const TensorView& x, const TensorView& out) {
  cpu::gelu_tanh(cpu::active_kernel_table(), ctx.threads(), x.as<const float>(), x.num_elements(),
                 out.as<float>());
}

void relu(const ExecutionContext& ctx, const TensorView& x, const TensorView& out) {
  cpu::relu(cpu::active_kernel_table(), ctx.threads(), x.as<const float>(), x.num_elements(),
            out.as<float>());
}

void add_inplace(const ExecutionContext& ctx, const TensorView& x, const TensorView& y) {
  cpu::add_inplace(cpu::active_kernel_table(), ctx.threads(), x.as<float>(), y.as<const float>(),
                   x.num_elements());
}

void scale_inplace(const ExecutionContext& ctx, const TensorView& x, float factor) {
  float* values = x.as<float>();
  ctx.threads().parallel_for_grain(x.num_elements(), cpu::kMinFloatsPerThread,
                                   [&](int64_t i0, int64_t i1) {
                                     for (int64_t i = i0; i < i1; ++i) values[i] *= factor;
                                   });
}

void softcap_inplace(const ExecutionContext& ctx, const TensorView& x, float cap) {
  float* values = x.as<float>();
  // tanh makes an element ~4x the work of a plain elementwise op.
  ctx.threads().parallel_for_grain(x.num_elements(), cpu::kMinFloatsPerThread / 2,
                                   [&](int64_t i0, int64_t i1) {
                                     for (int64_t i = i0; i < i1; ++i) {
                                       values[i] = cap * std::tanh(values[i] / cap);
                                     }
                                   });
}

void silu_mul(const ExecutionContext& ctx, const TensorView& gate_up, const TensorView& out) {
  cpu::silu_mul(cpu::active_kernel_table(), ctx.threads(), gate_up.as<const float>(),
                out.num_rows(), out.num_cols(), gate_up.row_stride(), out.as<float>(),
                out.row_stride());
}

void gelu_tanh_mul(const ExecutionContext& ctx, const TensorView& gate_up, const TensorView& out) {
  cpu::gelu_tanh_mul(cpu::active_kernel_table(), ctx.threads(), gate_up.as<const float>(),
                     out.num_rows(), out.num_cols(), gate_up.row_stride(), out.as<float>(),
                     out.row_stride());
}

void rope_neox(const ExecutionContext& ctx, const TensorView& x, int64_t num_heads,
               int64_t head_dim, int64_t rot_dim, const TensorView& positions,
               const TensorView& cos_sin) {
  cpu::rope_neox(cpu::active_kernel_table(), ctx.threads(), x.as<float>(), x.num_rows(), num_heads,
                 head_dim, rot_dim, x.row_stride(), positions.as<const int32_t>(),
                 cos_sin.as<const float>());
}

void embedding_lookup(const ExecutionContext& ctx, const PackedWeight& table, const TensorView& ids,
                      const TensorView& out) {
  const int32_t* rows = ids.as<const int32_t>();
  float* dst = out.as<float>();
  const int64_t ld_out = out.row_stride();
  ctx.threads().parallel_for_grain(out.num_rows(), cpu::row_grain(table.num_cols()),
                                   [&](int64_t i0, int64_t i1) {
                                     for (int64_t i = i0; i < i1; ++i) {
                                       table.unpack_row(rows[i], dst + i * ld_out);
                                     }
                                   });
}

void gather_rows(const ExecutionContext& ctx, const TensorView& src, const TensorView& indices,
                 int64_t offset, const TensorView& out) {
  const int32_t* rows = indices.as<const int32_t>();
  const float* from = src.as<const float>();
  float* dst = out.as<float>();
  const int64_t width = out.num_cols();
  const auto row_bytes = static_cast<size_t>(width) * sizeof(float);
  ctx.threads().parallel_for_grain(
      out.num_rows(), cpu::row_grain(width), [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
          std::memcpy(dst + i * out.row_stride(),
                      from + (static_cast<int64_t>(rows[i]) + offset) * src.row_stride(),
                      row_bytes);
        }
      });
}

void write_kv_cache(const ExecutionContext& ctx, const TensorView& k, const TensorView& v,
                    const TensorView& slot_mapping, const PagedKvCache& cache) {
  // k and v are column ranges of one qkv row block: they share a row stride.
  cpu::write_kv_cache(ctx.threads(), k.as<const float>(), v.as<const float>(), k.num_rows(),
                      k.row_stride(), slot_mapping.as<const int32_t>(), cache);
}

void copy_kv_block(const ExecutionContext& /*ctx*/, const PagedKvCache& cache, int32_t src,
                   int32_t dst) {
  const int64_t elem_bytes = kv_cache_type_bytes(cache.type);
  const int64_t stride_bytes = cache.block_stride_elements() * elem_bytes;
  const auto bytes = static_cast<size_t>(cache.block_elements() * elem_bytes);
  auto* k = static_cast<unsigned char*>(cache.k_cache);
  auto* v = static_cast<unsigned char*>(cache.v_cache);
  std::memcpy(k + dst * stride_bytes, k + src * stride_bytes, bytes);
  std::memcpy(v + dst * stride_bytes, v + src * stride_bytes, bytes);
}

void plan_attention(const ExecutionContext& ctx, const AttentionBatch& batch,
                    const AttentionShape& shape, AttentionPlan& plan) {
  cpu::plan_attention(ctx.threads(), batch, shape, plan);
}

void paged_attention(const ExecutionContext& ctx, const AttentionPlan& plan, const TensorView& q,
                     const PagedKvCache& cache, float scale, const TensorView& out) {
  cpu::run_attention(cpu::active_kernel_table(), ctx.threads(), plan, q.as<const float>(),
                     q.row_stride(), cache, scale, out.as<float>(), out.row_stride());
}

}  // namespace cadence::kernels
