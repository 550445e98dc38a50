// The KV-cache manager: between the scheduler and the block pool. It gives each sequence the
// blocks its tokens need (copy-on-write for shared partial blocks), releases them, and runs the
// prefix cache: full blocks are hashed as they are computed (kv/block_hash.h), a released full
// block stays cached in the pool, and a new sequence whose leading blocks hash the same takes
// those blocks instead of computing them. No space is a value (false / a count), never an
// exception; misuse of the contracts below throws std::logic_error.
//
// Block table of a sequence, block_size B:
//
//   tokens  [0 .. B) [B .. 2B) ... [kB .. num_tokens)
//   table    b0       b1          bk            token t lives in table[t / B], slot t % B
//   hashes   h0       h1          (full blocks only; h_i = hash(h_{i-1}, tokens of block i))
//
// A table entry kFreedBlock is a block released because it fell out of a sliding window.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "kv/block_hash.h"
#include "kv/block_pool.h"

namespace cadence {

// A block-table entry whose block was released because it fell outside the sliding window.
constexpr int32_t kFreedBlock = -1;

// The tokens of a sequence: its prompt, then what it has generated.
struct SequenceTokens {
  const std::vector<int32_t>* prompt = nullptr;
  const std::vector<int32_t>* output = nullptr;
  int64_t size() const { return static_cast<int64_t>(prompt->size() + output->size()); }
  int32_t at(int64_t position) const {
    const auto num_prompt = static_cast<int64_t>(prompt->size());
    return position < num_prompt ? (*prompt)[position] : (*output)[position - num_prompt];
  }
};

// What the manager keeps for one sequence (a member of the scheduler's Request).
struct SequenceBlocks {
  std::vector<int32_t> table;
  // Chain hashes of the sequence's first hashes.size() full blocks; a function of the tokens
  // and the cache salt only, so it survives preemption (cleared only where tokens are dropped).
  std::vector<BlockHash> hashes;
  // Leading full blocks of `table` already offered to the cache (registered, or a copy of a
  // prefix another block holds).
  int64_t num_offered_blocks = 0;
};

struct KvCacheManagerConfig {
  int64_t block_size = 16;            // tokens per block, >= 1
  int64_t sliding_window = 0;         // > 0: release blocks outside it (free_outside_window)
  bool enable_prefix_caching = true;  // false: no hashing, every released block is free
};

// Prefix-cache counters (vLLM's prefix_cache_queries / prefix_cache_hits), in tokens.
struct PrefixCacheStats {
  int64_t num_queried_tokens = 0;  // tokens of sequences looked up when admitted
  int64_t num_hit_tokens = 0;      // of those, tokens whose KV came from the cache
};

class KvCacheManager {
 public:
  KvCacheManager(const KvCacheManagerConfig& config, BlockPool& pool);

  int64_t block_size() const { return config_.block_size; }
  bool prefix_caching_enabled() const { return config_.enable_prefix_caching; }
  int64_t blocks_for_tokens(int64_t num_tokens) const {
    return (num_tokens + config_.block_size - 1) / config_.block_size;
  }
  const BlockPool& pool() const { return pool_; }
  int64_t num_free_blocks() const { return pool_.num_free_blocks(); }
  bool can_allocate(int64_t num_blocks) const { return pool_.can_allocate(num_blocks); }

  // True when the sequence's next token (position num_computed) lands in a block it shares.
  bool writes_into_shared_block(const SequenceBlocks& seq, int64_t num_computed) const;
  // Blocks the sequence needs to compute num_new more tokens, counting a private copy of a
  // shared block it would write into.
  int64_t blocks_needed(const SequenceBlocks& seq, int64_t num_computed, int64_t num_new) const;
  // Gives the sequence what blocks_needed counts; a shared block it writes into is replaced by
  // a fresh one and (source, destination) appended to `copies`. False, changing nothing, when
  // the pool cannot cover it.
  bool allocate_slots(SequenceBlocks& seq, int64_t num_computed, int64_t num_new,
                      std::vector<std::pair<int32_t, int32_t>>& copies);
  // Adds one reference to each of the sequence's blocks (for a holder about to take a copy of
  // its table, as continue_sequences does for every moved sequence before releasing any).
  void add_refs(const SequenceBlocks& seq);
  // `to` drops its blocks and shares `from`'s (a fork or a beam taking its parent's place).
  void share(const SequenceBlocks& from, SequenceBlocks& to);
  // Releases every block of the sequence, last first (see BlockPool::release), and empties
  // its table; its hashes stay.
  void release_all(SequenceBlocks& seq);
  // Sliding window: releases the blocks that the token at position num_computed no longer
  // sees (the window's first key is num_computed - sliding_window + 1).
  void free_outside_window(SequenceBlocks& seq, int64_t num_computed);

  // Prefix cache. The number of leading full blocks of `tokens` that are cached, stopping so
  // that at least one token is left to compute; extends seq.hashes as needed. 0 when caching
  // is off. Precondition: the sequence holds no blocks.
  int64_t find_cached_prefix(SequenceBlocks& seq, const SequenceTokens& tokens,
                             const std::string& cache_salt);
  // Of the first num_blocks blocks find_cached_prefix found (by seq.hashes, unchanged pool),
  // those that are cached now and so leave the allocatable count when taken.
  int64_t num_evictable(const SequenceBlocks& seq, int64_t num_blocks) const;
  // Takes references to the first num_blocks blocks find_cached_prefix found (same step, pool
  // unchanged since); they become the sequence's table. Counts the lookup in the stats:
  // num_queried_tokens (the sequence's tokens), num_blocks * block_size of them hit.
  void take_cached_prefix(SequenceBlocks& seq, int64_t num_blocks, int64_t num_queried_tokens);
  // Counts a lookup in the stats without taking blocks (e.g. one skipped for prompt logprobs).
  void count_query(int64_t num_queried_tokens, int64_t num_hit_tokens);
  // After the sequence has computed num_computed tokens: hashes its newly full blocks and
  // offers them to the cache. No-op when caching is off.
  void cache_full_blocks(SequenceBlocks& seq, const SequenceTokens& tokens, int64_t num_computed,
                         const std::string& cache_salt);
  // Forgets every cached prefix (see BlockPool::drop_cached_blocks).
  int64_t reset_prefix_cache() { return pool_.drop_cached_blocks(); }
  const PrefixCacheStats& stats() const { return stats_; }

 private:
  // Extends seq.hashes to cover the first num_full_blocks blocks of `tokens`.
  void extend_hashes(SequenceBlocks& seq, const SequenceTokens& tokens, int64_t num_full_blocks,
                     const std::string& cache_salt);

  KvCacheManagerConfig config_;
  BlockPool& pool_;
  PrefixCacheStats stats_;
  std::vector<int32_t> block_tokens_;  // scratch: one block's token ids
};

}  // namespace cadence
