// The CPU backend's attention plan and run (attention_plan.h). The plan cuts one step's
// attention into work items and gives each thread a contiguous run of them, balanced by the
// keys they visit; every layer's run then just executes its run of items.
//
// Cutting never changes results: an item computes each of its (row, head) pairs with the same
// instruction sequence whatever else it holds, key partitions have fixed boundaries and split
// decode rows merge their partition states in ascending order (kernel_table.h).
#include <algorithm>
#include <vector>

#include "kernels/cpu/ops_cpu.h"
#include "kernels/cpu/work_split.h"

namespace cadence::kernels::cpu {
namespace {

struct CutOptions {
  int64_t heads_per_item = 1;
  // Decode rows (a sequence with one query row) with more than one key partition get one
  // item per partition, whose states are merged after the items ran.
  bool is_split_decode = false;
};

int64_t num_key_partitions(int64_t pos) { return pos < 0 ? 0 : pos / kAttentionPartitionKeys + 1; }

// The number of key partitions of sequence s if its decode row is split, else 0.
int64_t split_partitions(const AttentionBatch& batch, int64_t s, const CutOptions& cut) {
  if (!cut.is_split_decode || batch.query_start[s + 1] - batch.query_start[s] != 1) return 0;
  const int64_t parts = num_key_partitions(batch.context_lens[s] - 1);
  return parts > 1 ? parts : 0;
}

// The first key position a row at `pos` sees (sliding window W > 0: pos - W + 1).
int64_t first_key(int64_t pos, int64_t window) {
  return window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0;
}

// Fills items (and costs ~ keys x heads, for load balancing) in the fixed order: sequence, kv
// head, head chunk, then row chunk (or partition, for a split decode row). A split item's
// partial_states points into `states` (null while the cut is only being sized), laid out in
// sequence order, then head, then partition: [split row][num_heads][partitions][state].
// Returns the total cost.
int64_t cut_items(const AttentionBatch& batch, const AttentionShape& shape, const CutOptions& cut,
                  float* states, std::vector<AttentionItem>& items, std::vector<int64_t>& costs) {
  items.clear();
  costs.clear();
  const int64_t group = shape.num_heads / shape.num_kv_heads;
  const int64_t state_floats = attention_state_floats(shape.head_dim);
  const int64_t rows_per_item = std::max<int64_t>(1, kAttentionMaxPairs / cut.heads_per_item);
  int64_t partial_offset = 0;
  int64_t total_cost = 0;
  auto add = [&](const AttentionItem& item, int64_t cost) {
    items.push_back(item);
    costs.push_back(cost);
    total_cost += cost;
  };
  for (int64_t s = 0; s < batch.num_seqs; ++s) {
    const int64_t q_begin = batch.query_start[s];
    const int64_t q_end = batch.query_start[s + 1];
    const int64_t row_offset = batch.context_lens[s] - q_end;  // position = row + offset
    const int64_t parts = split_partitions(batch, s, cut);
    for (int64_t g = 0; g < shape.num_kv_heads; ++g) {
      for (int64_t h0 = g * group; h0 < (g + 1) * group; h0 += cut.heads_per_item) {
        const int64_t h1 = std::min((g + 1) * group, h0 + cut.heads_per_item);
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
            if (states != nullptr) {
              item.partial_states = states + partial_offset + (h0 * parts + part) * state_floats;
            }
            const int64_t key_begin =
                std::max(part * kAttentionPartitionKeys,
                         first_key(batch.context_lens[s] - 1, batch.sliding_window));
            const int64_t num_keys = std::max<int64_t>(
                0, std::min((part + 1) * kAttentionPartitionKeys, int64_t{batch.context_lens[s]}) -
                       key_begin);
            add(item, (num_keys + 16) * (h1 - h0));
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
          add(item, (num_keys + 16) * (h1 - h0));
        }
      }
    }
    partial_offset += parts * shape.num_heads * state_floats;
  }
  return total_cost;
}

// Per-thread attention scratch; grows once, then reused (no allocation in steady state).
float* attention_scratch(int64_t num_floats) {
  thread_local std::vector<float> scratch;
  if (static_cast<int64_t>(scratch.size()) < num_floats) scratch.resize(num_floats);
  return scratch.data();
}

}  // namespace

void plan_attention(ThreadPool& pool, const AttentionBatch& batch, const AttentionShape& shape,
                    AttentionPlan& plan) {
  plan.set_target(batch, shape);
  AttentionPlan::Cpu& cpu = plan.cpu();
  cpu.items.clear();
  cpu.split_rows.clear();
  cpu.thread_begin.clear();
  cpu.num_threads = 0;
  if (batch.num_seqs <= 0 || shape.num_kv_heads <= 0 || shape.num_heads <= 0) return;
  const int64_t group = shape.num_heads / shape.num_kv_heads;
  if (group <= 0) return;

  // Whole GQA groups per item (K/V read once for all heads of a kv head). When that gives too
  // few items to balance the threads (decode of a few sequences), split long decode rows by
  // key partition; if threads would still idle, split the groups' heads as well.
  thread_local std::vector<int64_t> costs;
  CutOptions cut;
  cut.heads_per_item = std::min(group, kAttentionMaxPairs);
  int64_t total_cost = cut_items(batch, shape, cut, nullptr, cpu.items, costs);
  const int64_t max_threads =
      std::max<int64_t>(1, total_cost * shape.head_dim / (kMinAttentionKeysPerThread * 64));
  const int64_t num_threads = std::min<int64_t>(pool.num_threads(), max_threads);
  if (num_threads > 1 && static_cast<int64_t>(cpu.items.size()) < 4 * num_threads) {
    cut.is_split_decode = true;
    total_cost = cut_items(batch, shape, cut, nullptr, cpu.items, costs);
    const auto num_items = static_cast<int64_t>(cpu.items.size());
    if (num_items < num_threads) {
      const int64_t chunks_per_group = ceil_div(num_threads, num_items);
      cut.heads_per_item = std::max<int64_t>(1, ceil_div(cut.heads_per_item, chunks_per_group));
      total_cost = cut_items(batch, shape, cut, nullptr, cpu.items, costs);
    }
  }
  if (cpu.items.empty()) return;

  // Split decode rows: size their state buffer, then cut again with the items pointing into it.
  const int64_t state_floats = attention_state_floats(shape.head_dim);
  int64_t num_state_floats = 0;
  for (int64_t s = 0; s < batch.num_seqs; ++s) {
    const int64_t parts = split_partitions(batch, s, cut);
    if (parts == 0) continue;
    AttentionPlan::SplitRow row;
    row.row = batch.query_start[s];
    row.num_parts = parts;
    row.states_offset = num_state_floats;
    cpu.split_rows.push_back(row);
    num_state_floats += parts * shape.num_heads * state_floats;
  }
  if (static_cast<int64_t>(cpu.partition_states.size()) < num_state_floats) {
    cpu.partition_states.resize(num_state_floats);
  }
  if (num_state_floats > 0) {
    cut_items(batch, shape, cut, cpu.partition_states.data(), cpu.items, costs);
  }

  // Thread t runs the items whose cost midpoint falls in the t-th of num_threads equal shares
  // of the total cost: contiguous runs of items, balanced by keys visited.
  cpu.num_threads = num_threads;
  cpu.thread_begin.assign(static_cast<size_t>(num_threads + 1), 0);
  int64_t cost_before = 0;
  int64_t owner = 0;
  for (size_t i = 0; i < cpu.items.size(); ++i) {
    const int64_t mid = cost_before + costs[i] / 2;
    cost_before += costs[i];
    const int64_t item_owner = std::min(num_threads - 1, mid * num_threads / total_cost);
    while (owner < item_owner) cpu.thread_begin[++owner] = static_cast<int64_t>(i);
  }
  while (owner < num_threads) cpu.thread_begin[++owner] = static_cast<int64_t>(cpu.items.size());
}

void run_attention(const KernelTable& table, ThreadPool& pool, const AttentionPlan& plan,
                   const float* q, int64_t ld_q, const PagedKvCache& cache, float scale, float* out,
                   int64_t ld_out) {
  const AttentionPlan::Cpu& cpu = plan.cpu();
  if (cpu.num_threads <= 0) return;
  const int64_t head_dim = plan.shape().head_dim;
  AttentionArgs args;
  args.q = q;
  args.ld_q = ld_q;
  args.num_heads = plan.shape().num_heads;
  args.batch = &plan.batch();
  args.cache = &cache;
  args.scale = scale;
  args.out = out;
  args.ld_out = ld_out;
  const int64_t scratch_floats = attention_scratch_floats(head_dim, kAttentionMaxPairs);
  auto run_threads = [&](int64_t t_begin, int64_t t_end) {
    float* scratch = attention_scratch(scratch_floats);
    for (int64_t i = cpu.thread_begin[t_begin]; i < cpu.thread_begin[t_end]; ++i) {
      table.attention_item(args, cpu.items[i], scratch);
    }
  };
  if (cpu.num_threads <= 1) {
    run_threads(0, 1);
  } else {
    pool.parallel_for(cpu.num_threads, run_threads);
  }

  // Merge the split decode rows' partition states, in partition order (small: heads x
  // partitions x head_dim per row, so the calling thread does it).
  if (cpu.split_rows.empty()) return;
  float* scratch = attention_scratch(scratch_floats);
  const int64_t state_floats = attention_state_floats(head_dim);
  for (const AttentionPlan::SplitRow& row : cpu.split_rows) {
    const float* states = cpu.partition_states.data() + row.states_offset;
    for (int64_t h = 0; h < args.num_heads; ++h) {
      table.attention_merge(states, row.num_parts, head_dim, scratch,
                            out + row.row * ld_out + h * head_dim);
      states += row.num_parts * state_floats;
    }
  }
}

void paged_attention(const KernelTable& table, ThreadPool& pool, const float* q, int64_t ld_q,
                     int64_t num_heads, const AttentionBatch& batch, const PagedKvCache& cache,
                     float scale, float* out, int64_t ld_out) {
  AttentionPlan plan;
  plan_attention(pool, batch, AttentionShape{num_heads, cache.num_kv_heads, cache.head_dim}, plan);
  run_attention(table, pool, plan, q, ld_q, cache, scale, out, ld_out);
}

}  // namespace cadence::kernels::cpu
