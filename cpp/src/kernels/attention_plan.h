// Paged attention is planned once per step and run once per layer (FlashInfer's plan/run):
// the batch's sequences, lengths and block tables are the same in every layer, so how the
// work is cut and who runs which piece is decided once, from the batch, and each layer's
// run only walks its share.
//
//   step:   plan_attention(ctx, batch, shape, plan)          (ops.h; one per distinct window)
//   layer:  paged_attention(ctx, plan, q, cache[layer], ...)  (every layer with that window)
//
// A plan holds what its backend needs: on the CPU the ordered work items, each thread's run
// of them and the partition-state scratch of split decode rows; a CUDA backend keeps its
// device-side copy of the metadata here. A plan is reused across steps: its buffers grow to
// the largest batch seen and are not reallocated after that.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cpu/kernel_table.h"
#include "kernels/paged_kv.h"

namespace cadence::kernels {

// The heads of one attention call: query head h reads kv head h / (num_heads / num_kv_heads).
struct AttentionShape {
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
};

class AttentionPlan {
 public:
  AttentionPlan() = default;
  // Move-only: the CPU items point into the plan's own partition-state buffer.
  AttentionPlan(AttentionPlan&&) = default;
  AttentionPlan& operator=(AttentionPlan&&) = default;
  AttentionPlan(const AttentionPlan&) = delete;
  AttentionPlan& operator=(const AttentionPlan&) = delete;

  // What the plan was made for; its runs read the batch's arrays, which must stay valid and
  // unchanged until the last run.
  const AttentionBatch& batch() const { return batch_; }
  const AttentionShape& shape() const { return shape_; }

  // --- CPU backend (kernels/cpu/attention_plan_cpu.cc) ----------------------------------
  // Work items in the fixed order sequence, kv head, head chunk, row chunk or key partition.
  // Thread t runs items [thread_begin[t], thread_begin[t + 1]); num_threads <= 1: the caller
  // runs them all.
  struct SplitRow {
    int64_t row = 0;            // the decode row (query row index)
    int64_t num_parts = 0;      // its key partitions
    int64_t states_offset = 0;  // [num_heads][num_parts][state] at partition_states + this
  };
  struct Cpu {
    std::vector<cpu::AttentionItem> items;
    std::vector<int64_t> thread_begin;
    int64_t num_threads = 0;
    // Split decode rows: their items write partition states here; the run merges them.
    std::vector<float> partition_states;
    std::vector<SplitRow> split_rows;
  };
  const Cpu& cpu() const { return cpu_; }
  Cpu& cpu() { return cpu_; }

  void set_target(const AttentionBatch& batch, const AttentionShape& shape) {
    batch_ = batch;
    shape_ = shape;
  }

 private:
  AttentionBatch batch_;
  AttentionShape shape_;
  Cpu cpu_;
};

}  // namespace cadence::kernels
