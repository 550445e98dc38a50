#include "model/decoder.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "model/rope.h"

namespace cadence {

using kernels::KernelFamily;
using kernels::KernelTimer;
using kernels::TensorView;

namespace {

// Columns [col_begin, col_begin + num_cols) of every row of a rank-2 fp32 view.
TensorView columns(const TensorView& view, int64_t col_begin, int64_t num_cols) {
  return TensorView::rows(view.as<float>() + col_begin, view.num_rows(), num_cols,
                          view.row_stride(), view.device);
}

// A host int32 array of ForwardBatch as a view (the CPU ops read batch metadata in place).
TensorView host_ints(const std::vector<int32_t>& values) {
  return TensorView::vector(values.data(), static_cast<int64_t>(values.size()));
}

}  // namespace

DecoderModel::DecoderModel(const ModelConfig& config, DecoderWeights weights,
                           const ModelLoadOptions& options)
    : config_(config),
      weights_(std::move(weights)),
      is_layer_norm_(config.norm_kind == NormKind::kLayerNorm),
      is_rope_(config.position_kind == PositionKind::kRope),
      activation_(config.activation),
      arena_(*options.allocator) {
  if (is_rope_) {
    rope_rot_dim_ = config_.rotary_dim;
    rope_cos_sin_ = kernels::DeviceFloats(
        *options.allocator, rope_cos_sin_table(config_, config_.rotary_dim, options.max_positions));
    is_longrope_ = config_.rope_scaling.type == RopeScalingType::kLongrope;
    long_rope_row_offset_ = options.max_positions;
  }
  std::vector<int64_t> layer_windows(static_cast<size_t>(config_.num_layers),
                                     config_.sliding_window);
  for (int32_t layer : config_.full_attention_layers) layer_windows[layer] = 0;
  for (int64_t window : layer_windows) {
    auto it = std::find(plan_windows_.begin(), plan_windows_.end(), window);
    if (it == plan_windows_.end()) {
      plan_windows_.push_back(window);
      it = plan_windows_.end() - 1;
    }
    layer_plan_.push_back(it - plan_windows_.begin());
  }
  attention_plans_.resize(plan_windows_.size());
}

void DecoderModel::layout_activations(int64_t num_tokens, int64_t num_logits_rows) {
  const int64_t hidden = config_.hidden_size;
  const int64_t head_dim = config_.head_dim;
  const int64_t q_width = config_.num_heads * head_dim;
  const int64_t qkv_width = q_width + 2 * config_.num_kv_heads * head_dim;
  const int64_t inter = config_.intermediate_size;
  const int64_t up_width = is_gated() ? 2 * inter : inter;
  const int64_t embed_dim = config_.word_embed_proj_dim;

  struct Slot {
    TensorView* view;
    int64_t num_rows, num_cols, offset;
  };
  Slot slots[] = {
      {&act_.hidden, num_tokens, hidden, 0},
      {&act_.normed, num_tokens, hidden, 0},
      {&act_.qkv, num_tokens, qkv_width, 0},
      {&act_.attn_out, num_tokens, q_width, 0},
      {&act_.proj_out, num_tokens, hidden, 0},
      {&act_.mlp_in, num_tokens, up_width, 0},
      {&act_.mlp_act, is_gated() ? num_tokens : 0, inter, 0},
      {&act_.embed_rows, weights_.project_in.empty() ? 0 : num_tokens, embed_dim, 0},
      {&act_.final_rows, num_logits_rows, hidden, 0},
      {&act_.final_proj, weights_.project_out.empty() ? 0 : num_logits_rows, embed_dim, 0},
  };
  arena_.clear();
  for (Slot& slot : slots) {
    slot.offset =
        arena_.reserve(slot.num_rows * slot.num_cols * static_cast<int64_t>(sizeof(float)));
  }
  arena_.commit();
  for (const Slot& slot : slots) {
    *slot.view = TensorView::rows(arena_.at<float>(slot.offset), slot.num_rows, slot.num_cols,
                                  slot.num_cols, arena_.device());
  }
}

void DecoderModel::plan_attention(const kernels::ExecutionContext& ctx, const ForwardBatch& batch) {
  kernels::AttentionBatch attention;
  attention.num_seqs = batch.num_seqs();
  attention.query_start = batch.query_start.data();
  attention.context_lens = batch.context_lens.data();
  attention.block_tables = batch.block_tables.data();
  attention.max_blocks_per_seq = batch.max_blocks_per_seq;
  attention.softcap = static_cast<float>(config_.attn_logit_softcapping);
  const kernels::AttentionShape shape{config_.num_heads, config_.num_kv_heads, config_.head_dim};
  for (size_t i = 0; i < attention_plans_.size(); ++i) {
    attention.sliding_window = plan_windows_[i];
    kernels::plan_attention(ctx, attention, shape, attention_plans_[i]);
  }
}

TensorView DecoderModel::rope_positions(const ForwardBatch& batch) {
  if (!is_longrope_) return host_ints(batch.positions);
  // LongRoPE: a sequence longer than original_max_position_embeddings (its prompt, or its
  // tokens after this step) reads the long-factor table, rows offset by long_rope_row_offset_.
  const int64_t original = config_.rope_scaling.original_max_position_embeddings;
  rope_positions_.resize(batch.positions.size());
  for (int64_t s = 0; s < batch.num_seqs(); ++s) {
    int64_t length = batch.context_lens[s];
    if (!batch.prompt_lens.empty()) length = std::max<int64_t>(length, batch.prompt_lens[s]);
    const int64_t offset = length > original ? long_rope_row_offset_ : 0;
    for (int32_t t = batch.query_start[s]; t < batch.query_start[s + 1]; ++t) {
      rope_positions_[t] = static_cast<int32_t>(batch.positions[t] + offset);
    }
  }
  return host_ints(rope_positions_);
}

void DecoderModel::apply_norm(const kernels::ExecutionContext& ctx, const Norm& norm,
                              const TensorView& x, const TensorView& out) const {
  KernelTimer timer(ctx.profile, KernelFamily::kNorm);
  if (is_layer_norm_) {
    kernels::layer_norm(ctx, x, norm.weight.view(), norm.bias.view(),
                        static_cast<float>(config_.layer_norm_eps), out);
  } else {
    kernels::rms_norm(ctx, x, norm.weight.view(), static_cast<float>(config_.rms_norm_eps), out);
  }
}

void DecoderModel::embed(const kernels::ExecutionContext& ctx, const ForwardBatch& batch) {
  KernelTimer timer(ctx.profile, KernelFamily::kEmbedding);
  const TensorView ids = host_ints(batch.token_ids);
  if (weights_.project_in.empty()) {
    kernels::embedding_lookup(ctx, weights_.token_embedding, ids, act_.hidden);
  } else {
    kernels::embedding_lookup(ctx, weights_.token_embedding, ids, act_.embed_rows);
    kernels::gemm(ctx, act_.embed_rows, weights_.project_in.weight, weights_.project_in.bias.view(),
                  act_.hidden);
  }
  if (config_.embedding_scale != 1.0) {
    kernels::scale_inplace(ctx, act_.hidden, static_cast<float>(config_.embedding_scale));
  }
  if (!is_rope_) {  // learned positions
    kernels::gather_rows(ctx, weights_.position_embedding.rows(config_.hidden_size),
                         host_ints(batch.positions), config_.position_offset, act_.proj_out);
    kernels::add_inplace(ctx, act_.hidden, act_.proj_out);
  }
}

void DecoderModel::forward(const kernels::ExecutionContext& ctx, const ForwardBatch& batch,
                           KvCache& cache, const TensorView& logits) {
  const auto num_rows = static_cast<int64_t>(batch.logits_rows.size());
  layout_activations(batch.num_tokens(), num_rows);
  {
    KernelTimer timer(ctx.profile, KernelFamily::kAttention);
    plan_attention(ctx, batch);
  }
  embed(ctx, batch);
  const TensorView rope_rows = is_rope_ ? rope_positions(batch) : TensorView();
  for (int64_t l = 0; l < config_.num_layers; ++l) {
    attention_block(ctx, weights_.layers[l], l, batch, rope_rows, cache);
    mlp_block(ctx, weights_.layers[l]);
  }

  {
    KernelTimer timer(ctx.profile, KernelFamily::kResidual);
    kernels::gather_rows(ctx, act_.hidden, host_ints(batch.logits_rows), 0, act_.final_rows);
  }
  if (config_.is_norm_before) {
    apply_norm(ctx, weights_.final_norm, act_.final_rows, act_.final_rows);
  }
  TensorView head_in = act_.final_rows;
  if (!weights_.project_out.empty()) {
    KernelTimer timer(ctx.profile, KernelFamily::kGemm);
    kernels::gemm(ctx, act_.final_rows, weights_.project_out.weight,
                  weights_.project_out.bias.view(), act_.final_proj);
    head_in = act_.final_proj;
  }
  const TensorView out = logits.slice_rows(0, num_rows);
  KernelTimer timer(ctx.profile, KernelFamily::kLmHead);
  const bool is_tied = weights_.lm_head.empty();
  kernels::gemm(ctx, head_in, is_tied ? weights_.token_embedding : weights_.lm_head.weight,
                is_tied ? TensorView() : weights_.lm_head.bias.view(), out);
  if (config_.final_logit_softcapping > 0) {
    kernels::softcap_inplace(ctx, out, static_cast<float>(config_.final_logit_softcapping));
  }
}

void DecoderModel::add_residual(const kernels::ExecutionContext& ctx, const Norm& post_norm,
                                const TensorView& sublayer_out) {
  if (config_.sandwich_norm) apply_norm(ctx, post_norm, sublayer_out, sublayer_out);
  KernelTimer timer(ctx.profile, KernelFamily::kResidual);
  kernels::add_inplace(ctx, act_.hidden, sublayer_out);
}

void DecoderModel::attention_block(const kernels::ExecutionContext& ctx,
                                   const DecoderLayerWeights& layer, int64_t layer_index,
                                   const ForwardBatch& batch, const TensorView& rope_rows,
                                   KvCache& cache) {
  const int64_t head_dim = config_.head_dim;
  const int64_t q_width = config_.num_heads * head_dim;
  const int64_t kv_width = config_.num_kv_heads * head_dim;

  TensorView input = act_.hidden;
  if (config_.is_norm_before) {
    apply_norm(ctx, layer.attention_norm, act_.hidden, act_.normed);
    input = act_.normed;
  }
  {
    KernelTimer timer(ctx.profile, KernelFamily::kGemm);
    kernels::gemm(ctx, input, layer.qkv.weight, layer.qkv.bias.view(), act_.qkv);
  }
  const TensorView q = columns(act_.qkv, 0, q_width);
  const TensorView k = columns(act_.qkv, q_width, kv_width);
  const TensorView v = columns(act_.qkv, q_width + kv_width, kv_width);
  if (config_.qk_norm) {  // each head's head_dim slice is one RMSNorm row
    KernelTimer timer(ctx.profile, KernelFamily::kNorm);
    const float eps = static_cast<float>(config_.rms_norm_eps);
    for (int64_t h = 0; h < config_.num_heads; ++h) {
      const TensorView qh = columns(q, h * head_dim, head_dim);
      kernels::rms_norm(ctx, qh, layer.q_norm.view(), eps, qh);
    }
    for (int64_t h = 0; h < config_.num_kv_heads; ++h) {
      const TensorView kh = columns(k, h * head_dim, head_dim);
      kernels::rms_norm(ctx, kh, layer.k_norm.view(), eps, kh);
    }
  }
  if (is_rope_) {
    KernelTimer timer(ctx.profile, KernelFamily::kRope);
    kernels::rope_neox(ctx, q, config_.num_heads, head_dim, rope_rot_dim_, rope_rows,
                       rope_cos_sin_.view());
    kernels::rope_neox(ctx, k, config_.num_kv_heads, head_dim, rope_rot_dim_, rope_rows,
                       rope_cos_sin_.view());
  }
  {
    KernelTimer timer(ctx.profile, KernelFamily::kAttention);
    const kernels::PagedKvCache& layer_cache = cache.layer(layer_index);
    kernels::write_kv_cache(ctx, k, v, host_ints(batch.slot_mapping), layer_cache);
    const float scale = config_.attention_scale > 0
                            ? static_cast<float>(config_.attention_scale)
                            : 1.0f / std::sqrt(static_cast<float>(head_dim));
    kernels::paged_attention(ctx, attention_plans_[layer_plan_[layer_index]], q, layer_cache, scale,
                             act_.attn_out);
  }
  {
    KernelTimer timer(ctx.profile, KernelFamily::kGemm);
    kernels::gemm(ctx, act_.attn_out, layer.out_proj.weight, layer.out_proj.bias.view(),
                  act_.proj_out);
  }
  add_residual(ctx, layer.attention_post_norm, act_.proj_out);
  if (!config_.is_norm_before) {
    apply_norm(ctx, layer.attention_norm, act_.hidden, act_.hidden);
  }
}

void DecoderModel::mlp_block(const kernels::ExecutionContext& ctx,
                             const DecoderLayerWeights& layer) {
  TensorView input = act_.hidden;
  if (config_.is_norm_before) {
    apply_norm(ctx, layer.mlp_norm, act_.hidden, act_.normed);
    input = act_.normed;
  }
  {
    KernelTimer timer(ctx.profile, KernelFamily::kGemm);
    kernels::gemm(ctx, input, layer.up.weight, layer.up.bias.view(), act_.mlp_in);
  }
  TensorView activated = act_.mlp_in;
  KernelTimer activation_timer(ctx.profile, KernelFamily::kActivation);
  if (activation_ == Activation::kSilu) {
    kernels::silu_mul(ctx, act_.mlp_in, act_.mlp_act);
    activated = act_.mlp_act;
  } else if (activation_ == Activation::kGeluTanhGated) {
    kernels::gelu_tanh_mul(ctx, act_.mlp_in, act_.mlp_act);
    activated = act_.mlp_act;
  } else if (activation_ == Activation::kGeluTanh) {
    kernels::gelu_tanh(ctx, act_.mlp_in, act_.mlp_in);
  } else {
    kernels::relu(ctx, act_.mlp_in, act_.mlp_in);
  }
  activation_timer.stop();
  {
    KernelTimer timer(ctx.profile, KernelFamily::kGemm);
    kernels::gemm(ctx, activated, layer.down.weight, layer.down.bias.view(), act_.proj_out);
  }
  add_residual(ctx, layer.mlp_post_norm, act_.proj_out);
  if (!config_.is_norm_before) {
    apply_norm(ctx, layer.mlp_norm, act_.hidden, act_.hidden);
  }
}

}  // namespace cadence
