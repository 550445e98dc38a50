#include "kv/kv_cache_manager.h"

#include <algorithm>
#include <stdexcept>

namespace cadence {

KvCacheManager::KvCacheManager(const KvCacheManagerConfig& config, BlockPool& pool)
    : config_(config), pool_(pool) {
  if (config_.block_size < 1) throw std::invalid_argument("block_size must be >= 1");
  block_tokens_.resize(static_cast<size_t>(config_.block_size));
}

bool KvCacheManager::writes_into_shared_block(const SequenceBlocks& seq,
                                              int64_t num_computed) const {
  const int64_t block_index = num_computed / config_.block_size;
  return block_index < static_cast<int64_t>(seq.table.size()) &&
         pool_.ref_count(seq.table[block_index]) > 1;
}

int64_t KvCacheManager::blocks_needed(const SequenceBlocks& seq, int64_t num_computed,
                                      int64_t num_new) const {
  return blocks_for_tokens(num_computed + num_new) - static_cast<int64_t>(seq.table.size()) +
         (writes_into_shared_block(seq, num_computed) ? 1 : 0);
}

bool KvCacheManager::allocate_slots(SequenceBlocks& seq, int64_t num_computed, int64_t num_new,
                                    std::vector<std::pair<int32_t, int32_t>>& copies) {
  if (!pool_.can_allocate(blocks_needed(seq, num_computed, num_new))) return false;
  if (writes_into_shared_block(seq, num_computed)) {
    const int64_t block_index = num_computed / config_.block_size;
    std::vector<int32_t> fresh;
    pool_.allocate(1, fresh);
    const int32_t shared = seq.table[block_index];
    copies.emplace_back(shared, fresh[0]);
    pool_.release(shared);
    seq.table[block_index] = fresh[0];
  }
  const int64_t num_more =
      blocks_for_tokens(num_computed + num_new) - static_cast<int64_t>(seq.table.size());
  if (num_more > 0) pool_.allocate(num_more, seq.table);
  return true;
}

void KvCacheManager::add_refs(const SequenceBlocks& seq) {
  for (int32_t block : seq.table) {
    if (block != kFreedBlock) pool_.add_ref(block);
  }
}

void KvCacheManager::share(const SequenceBlocks& from, SequenceBlocks& to) {
  add_refs(from);  // first, so a block both hold never drops to zero in between
  release_all(to);
  to.table = from.table;
  to.hashes = from.hashes;
  to.num_offered_blocks = from.num_offered_blocks;
}

void KvCacheManager::release_all(SequenceBlocks& seq) {
  for (auto it = seq.table.rbegin(); it != seq.table.rend(); ++it) {
    if (*it != kFreedBlock) pool_.release(*it);
  }
  seq.table.clear();
  seq.num_offered_blocks = 0;
}

void KvCacheManager::free_outside_window(SequenceBlocks& seq, int64_t num_computed) {
  if (config_.sliding_window <= 0) return;
  const int64_t first_key = num_computed - config_.sliding_window + 1;
  const int64_t num_outside = std::max<int64_t>(0, first_key) / config_.block_size;
  for (int64_t b = 0; b < num_outside && b < static_cast<int64_t>(seq.table.size()); ++b) {
    int32_t& block = seq.table[b];
    if (block == kFreedBlock) continue;
    pool_.release(block);
    block = kFreedBlock;
  }
}

void KvCacheManager::extend_hashes(SequenceBlocks& seq, const SequenceTokens& tokens,
                                   int64_t num_full_blocks, const std::string& cache_salt) {
  const int64_t block_size = config_.block_size;
  for (auto b = static_cast<int64_t>(seq.hashes.size()); b < num_full_blocks; ++b) {
    for (int64_t i = 0; i < block_size; ++i) block_tokens_[i] = tokens.at(b * block_size + i);
    const BlockHash* parent = b > 0 ? &seq.hashes[b - 1] : nullptr;
    seq.hashes.push_back(hash_block(parent, block_tokens_.data(), block_size,
                                    b == 0 ? std::string_view(cache_salt) : std::string_view()));
  }
}

int64_t KvCacheManager::find_cached_prefix(SequenceBlocks& seq, const SequenceTokens& tokens,
                                           const std::string& cache_salt) {
  if (!config_.enable_prefix_caching) return 0;
  if (!seq.table.empty()) throw std::logic_error("find_cached_prefix on a sequence with blocks");
  // The last token is always computed: its logits sample the next one.
  const int64_t max_blocks = (tokens.size() - 1) / config_.block_size;
  extend_hashes(seq, tokens, max_blocks, cache_salt);
  int64_t num_found = 0;
  while (num_found < max_blocks && pool_.find(seq.hashes[num_found]) >= 0) ++num_found;
  return num_found;
}

int64_t KvCacheManager::num_evictable(const SequenceBlocks& seq, int64_t num_blocks) const {
  int64_t count = 0;
  for (int64_t b = 0; b < num_blocks; ++b) {
    if (pool_.ref_count(pool_.find(seq.hashes[b])) == 0) ++count;
  }
  return count;
}

void KvCacheManager::take_cached_prefix(SequenceBlocks& seq, int64_t num_blocks,
                                        int64_t num_queried_tokens) {
  if (!seq.table.empty()) throw std::logic_error("take_cached_prefix on a sequence with blocks");
  for (int64_t b = 0; b < num_blocks; ++b) {
    const int32_t block = pool_.find(seq.hashes[b]);
    if (block < 0) throw std::logic_error("take_cached_prefix: block left the cache");
    pool_.add_ref(block);
    seq.table.push_back(block);
  }
  seq.num_offered_blocks = num_blocks;
  count_query(num_queried_tokens, num_blocks * config_.block_size);
}

void KvCacheManager::count_query(int64_t num_queried_tokens, int64_t num_hit_tokens) {
  if (!config_.enable_prefix_caching) return;
  stats_.num_queried_tokens += num_queried_tokens;
  stats_.num_hit_tokens += num_hit_tokens;
}

void KvCacheManager::cache_full_blocks(SequenceBlocks& seq, const SequenceTokens& tokens,
                                       int64_t num_computed, const std::string& cache_salt) {
  if (!config_.enable_prefix_caching) return;
  const int64_t num_full =
      std::min<int64_t>(num_computed / config_.block_size, static_cast<int64_t>(seq.table.size()));
  if (num_full <= seq.num_offered_blocks) return;
  extend_hashes(seq, tokens, num_full, cache_salt);
  for (int64_t b = seq.num_offered_blocks; b < num_full; ++b) {
    // False when the block is hashed already (shared with a sibling or beam that offered it)
    // or another block holds this prefix (computed twice at once): either way it is cached.
    if (seq.table[b] != kFreedBlock) pool_.set_hash(seq.table[b], seq.hashes[b]);
  }
  seq.num_offered_blocks = num_full;
}

}  // namespace cadence
