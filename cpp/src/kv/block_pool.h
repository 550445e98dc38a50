// The KV-cache block pool: bookkeeping only (the memory lives in KvCache), including the prefix
// cache's index of full blocks by content hash (kv/block_hash.h).
//
// Every block is in exactly one state:
//   free    ref count 0, no hash: on the free list.
//   cached  ref count 0, hashed: its keys and values are kept for a later request with the same
//           prefix, on the eviction list (least recently released first).
//   used    ref count >= 1, hashed or not: held by the block tables of that many sequences.
// allocate() takes free blocks first and evicts cached ones only when none is free, so
// "allocatable" = free + cached. A hash names at most one block (the index maps it to that
// block); a block computed twice for the same prefix keeps the first copy's hash only.
//
// Fixed capacity: the lists and the open-addressing hash index are sized at construction and
// never allocate afterwards.
#pragma once

#include <cstdint>
#include <vector>

#include "kv/block_hash.h"

namespace cadence {

class BlockPool {
 public:
  explicit BlockPool(int64_t num_blocks);

  int64_t num_total_blocks() const { return static_cast<int64_t>(ref_counts_.size()); }
  // Blocks allocate() can hand out: free plus cached (evictable).
  int64_t num_free_blocks() const { return num_unhashed_free() + num_cached_blocks_; }
  // Cached blocks: unreferenced, holding a hashed prefix.
  int64_t num_cached_blocks() const { return num_cached_blocks_; }
  int64_t num_used_blocks() const { return num_total_blocks() - num_free_blocks(); }
  // Cached blocks evicted by allocate() since construction.
  int64_t num_evictions() const { return num_evictions_; }

  bool can_allocate(int64_t num_blocks) const { return num_blocks <= num_free_blocks(); }
  // Precondition: can_allocate(num_blocks). Appends the new block ids to `blocks`, each with
  // ref count 1 and no hash; free blocks go first, then the least recently released cached
  // ones (their hashes leave the index). Throws std::logic_error when the precondition fails.
  void allocate(int64_t num_blocks, std::vector<int32_t>& blocks);
  // Adds one reference to a used or cached block (a cached one becomes used again).
  void add_ref(int32_t block_id);
  // Drops one reference from each block, in order; a block reaching 0 becomes free, or cached
  // when hashed (entering the eviction list as the most recent: release a sequence's blocks
  // last first, so its leaf blocks are evicted before the prefix they extend).
  void release(const std::vector<int32_t>& blocks);
  void release(int32_t block_id);
  int32_t ref_count(int32_t block_id) const { return ref_counts_.at(block_id); }

  // The block holding `hash`, or -1.
  int32_t find(const BlockHash& hash) const;
  bool is_hashed(int32_t block_id) const { return is_hashed_.at(block_id) != 0; }
  const BlockHash& hash_of(int32_t block_id) const { return hashes_.at(block_id); }
  // Records that used block `block_id` holds the full block `hash`. False (and no change) when
  // the block already has a hash or another block holds this one.
  bool set_hash(int32_t block_id, const BlockHash& hash);
  // Forgets every hash: cached blocks become free, used blocks unhashed (they are freed, not
  // cached, when released). Returns the number of cached blocks dropped.
  int64_t drop_cached_blocks();

  // Throws std::logic_error when the states above disagree: free ∪ cached ∪ used != all, a
  // free or cached block has references, the eviction list is broken, or the hash index and
  // the blocks' hashes are not one-to-one.
  void check_invariants() const;

 private:
  int64_t num_unhashed_free() const { return static_cast<int64_t>(free_list_.size()); }
  // Eviction list (doubly linked through prev_/next_, oldest at head_).
  void push_cached(int32_t block_id);
  void unlink_cached(int32_t block_id);
  // Open-addressing index (linear probing; slots hold block ids, -1 = empty).
  size_t slot_of(const BlockHash& hash) const;
  void index_insert(int32_t block_id);
  void index_erase(int32_t block_id);
  void unhash(int32_t block_id);

  std::vector<int32_t> ref_counts_;
  std::vector<int32_t> free_list_;  // LIFO: recently freed blocks are reused first
  std::vector<BlockHash> hashes_;
  std::vector<char> is_hashed_;
  std::vector<int32_t> prev_, next_;
  int32_t head_ = -1, tail_ = -1;
  int64_t num_cached_blocks_ = 0;
  int64_t num_evictions_ = 0;
  std::vector<int32_t> index_;  // capacity a power of two >= 2 x num_blocks
};

}  // namespace cadence
