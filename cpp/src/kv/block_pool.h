// The KV-cache block pool: bookkeeping only (the memory lives in KvCache).
//
// Every block is either free (on the free list, ref count 0) or used (ref count >= 1).
// Sequences hold their blocks in block tables; a block shared by several sequences
// (later: n > 1 and beams) has one reference per holder.
#pragma once

#include <cstdint>
#include <vector>

namespace cadence {

class BlockPool {
 public:
  explicit BlockPool(int64_t num_blocks);

  int64_t num_total_blocks() const { return static_cast<int64_t>(ref_counts_.size()); }
  int64_t num_free_blocks() const { return static_cast<int64_t>(free_list_.size()); }
  int64_t num_used_blocks() const { return num_total_blocks() - num_free_blocks(); }

  bool can_allocate(int64_t num_blocks) const { return num_blocks <= num_free_blocks(); }
  // Precondition: can_allocate(num_blocks). Appends the new block ids to `blocks`, each
  // with ref count 1. Throws std::logic_error when the precondition is violated.
  void allocate(int64_t num_blocks, std::vector<int32_t>& blocks);
  // Adds one reference to a used block (sharing).
  void add_ref(int32_t block_id);
  // Drops one reference from each block; a block reaching 0 returns to the free list.
  void release(const std::vector<int32_t>& blocks);
  int32_t ref_count(int32_t block_id) const { return ref_counts_.at(block_id); }

  // Throws std::logic_error when free ∪ used != all blocks, a free block has a
  // reference, a used block has none, or the free list has duplicates.
  void check_invariants() const;

 private:
  std::vector<int32_t> ref_counts_;
  std::vector<int32_t> free_list_;  // LIFO: recently freed blocks are reused first
};

}  // namespace cadence
