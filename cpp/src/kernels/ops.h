// Every compute op the model runner uses, declared once and backend-neutral.
//
// Contracts shared by all ops:
// - The first argument is the execution context (context.h): the device, and the threads
//   (CPU) or stream (CUDA) the op runs on. Every view an op takes lives on ctx.device.
// - Activations are fp32 TensorViews (tensor_view.h): [rows, cols] matrices with a row stride
//   in elements, or contiguous vectors. Weights are PackedWeights, small parameter vectors
//   (norm weights, biases, tables) fp32 views.
// - Ops never allocate on the hot path and never throw; the model runner checks shapes, so a
//   view's shape is a precondition, not something an op validates.
// - Every output element is computed by exactly one thread in a fixed order, whatever the
//   thread count and the rest of the batch: greedy output is batch- and thread-invariant.
//
// The CPU backend (kernels/cpu/) picks an ISA path at run time (isa.h) and splits each op over
// ctx.pool. A CUDA backend implements these same declarations in cuda/ and ops dispatch on
// ctx.device (docs/architecture.md, "The backend seam").
#pragma once

#include <cstdint>

#include "kernels/attention_plan.h"
#include "kernels/context.h"
#include "kernels/packed_weight.h"
#include "kernels/paged_kv.h"
#include "kernels/tensor_view.h"

namespace cadence::kernels {

// c[m, n] = sum_k a[m, k] * W[n, k] (+ bias[n] when bias is not empty).
// a: [m, w.num_cols()]; c: [m, w.num_rows()], not aliasing a; bias: w.num_rows() floats or an
// empty view.
void gemm(const ExecutionContext& ctx, const TensorView& a, const PackedWeight& w,
          const TensorView& bias, const TensorView& c);

// out[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * weight[:]. x, out: [rows, dim]; weight:
// dim floats. out may alias x.
void rms_norm(const ExecutionContext& ctx, const TensorView& x, const TensorView& weight, float eps,
              const TensorView& out);

// LayerNorm with bias (torch.nn.LayerNorm, biased variance):
// out[r, :] = (x[r, :] - mean) / sqrt(var + eps) * weight[:] + bias[:], mean and var over the
// row's dim floats, computed in two passes in fp32. out may alias x.
void layer_norm(const ExecutionContext& ctx, const TensorView& x, const TensorView& weight,
                const TensorView& bias, float eps, const TensorView& out);

// GELU with the tanh approximation (GPT-2's "gelu_new", torch's approximate="tanh"), over the
// elements of contiguous x: out = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). Every element
// is computed the same way wherever it sits. out (contiguous, same size) may alias x.
void gelu_tanh(const ExecutionContext& ctx, const TensorView& x, const TensorView& out);

// out = max(x, 0) over contiguous elements (NaN passes through). out may alias x.
void relu(const ExecutionContext& ctx, const TensorView& x, const TensorView& out);

// x += y, element by element, over contiguous views of the same size.
void add_inplace(const ExecutionContext& ctx, const TensorView& x, const TensorView& y);

// x *= factor over contiguous x.
void scale_inplace(const ExecutionContext& ctx, const TensorView& x, float factor);

// x = cap * tanh(x / cap) over contiguous x (soft-capped logits, Gemma 2).
void softcap_inplace(const ExecutionContext& ctx, const TensorView& x, float cap);

// SwiGLU: out[r, j] = silu(gate_up[r, j]) * gate_up[r, inter + j] for j < inter, where
// gate_up: [rows, 2 * inter] holds [gate | up]; out: [rows, inter].
void silu_mul(const ExecutionContext& ctx, const TensorView& gate_up, const TensorView& out);

// GeGLU (tanh approximation, Gemma): out[r, j] = gelu_tanh(gate_up[r, j]) * gate_up[r, inter + j],
// same layout as silu_mul.
void gelu_tanh_mul(const ExecutionContext& ctx, const TensorView& gate_up, const TensorView& out);

// Rotary embedding, NeoX/HF layout: within each head, element i pairs with i + rot_dim/2
// for i < rot_dim/2 (elements at and past rot_dim are left alone).
// x: [num_tokens, >= num_heads * head_dim] (rotated in place); positions: num_tokens int32 rows
// of cos_sin, where row p holds cos(p * inv_freq[i]) at [p * rot_dim + i] and
// sin(p * inv_freq[i]) at [p * rot_dim + rot_dim/2 + i], i < rot_dim/2.
void rope_neox(const ExecutionContext& ctx, const TensorView& x, int64_t num_heads,
               int64_t head_dim, int64_t rot_dim, const TensorView& positions,
               const TensorView& cos_sin);

// out[i, :] = row ids[i] of `table` as fp32 (the token embedding: PackedWeight::unpack_row).
// ids: out.num_rows() int32 values in [0, table.num_rows()); out: [n, table.num_cols()].
void embedding_lookup(const ExecutionContext& ctx, const PackedWeight& table, const TensorView& ids,
                      const TensorView& out);

// out[i, :] = src[indices[i] + offset, :]. src: [R, width], out: [n, width], indices: n int32.
void gather_rows(const ExecutionContext& ctx, const TensorView& src, const TensorView& indices,
                 int64_t offset, const TensorView& out);

// Writes the keys/values of k.num_rows() new tokens into the cache. Token t goes to slot
// slot_mapping[t] = block_id * block_size + offset_in_block; a negative slot skips token t
// (padding). k and v rows hold num_kv_heads * head_dim floats. A 2-byte cache type stores each
// value rounded to nearest even, bit for bit float_to_bf16 / float_to_f16 (kernels/half.h);
// fp32 is copied exactly.
void write_kv_cache(const ExecutionContext& ctx, const TensorView& k, const TensorView& v,
                    const TensorView& slot_mapping, const PagedKvCache& cache);

// Copies block src's keys and values into block dst (copy-on-write of a shared block).
void copy_kv_block(const ExecutionContext& ctx, const PagedKvCache& cache, int32_t src,
                   int32_t dst);

// Plans the attention of one step (attention_plan.h) for `batch` with heads `shape`. The plan's
// buffers grow only when the batch is larger than any before; the batch's arrays must outlive
// the plan's runs.
void plan_attention(const ExecutionContext& ctx, const AttentionBatch& batch,
                    const AttentionShape& shape, AttentionPlan& plan);

// Grouped-query attention over one layer's paged cache, as planned. q: [rows, num_heads *
// head_dim]; out: the same shape; scale multiplies q·k. bf16 / fp16 keys and values are widened
// to fp32 as they are read (exact), so the output is bit for bit that of an fp32 cache holding
// the same (rounded) values; compute is fp32.
void paged_attention(const ExecutionContext& ctx, const AttentionPlan& plan, const TensorView& q,
                     const PagedKvCache& cache, float scale, const TensorView& out);

}  // namespace cadence::kernels
