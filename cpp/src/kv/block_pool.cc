#include "kv/block_pool.h"

#include <stdexcept>
#include <string>

namespace cadence {

namespace {

size_t index_capacity(int64_t num_blocks) {
  size_t capacity = 16;
  while (capacity < 2 * static_cast<size_t>(num_blocks)) capacity *= 2;
  return capacity;
}

}  // namespace

BlockPool::BlockPool(int64_t num_blocks) {
  if (num_blocks <= 0) {
    throw std::invalid_argument("KV block pool needs at least one block, got " +
                                std::to_string(num_blocks));
  }
  const auto n = static_cast<size_t>(num_blocks);
  ref_counts_.assign(n, 0);
  hashes_.resize(n);
  is_hashed_.assign(n, 0);
  prev_.assign(n, -1);
  next_.assign(n, -1);
  index_.assign(index_capacity(num_blocks), -1);
  free_list_.reserve(n);
  // Highest id at the bottom so that a fresh pool hands out 0, 1, 2, ...
  for (int64_t id = num_blocks - 1; id >= 0; --id) free_list_.push_back(static_cast<int32_t>(id));
}

void BlockPool::allocate(int64_t num_blocks, std::vector<int32_t>& blocks) {
  if (!can_allocate(num_blocks)) {
    throw std::logic_error("BlockPool::allocate(" + std::to_string(num_blocks) + ") with only " +
                           std::to_string(num_free_blocks()) + " free blocks");
  }
  for (int64_t i = 0; i < num_blocks; ++i) {
    int32_t id;
    if (!free_list_.empty()) {
      id = free_list_.back();
      free_list_.pop_back();
    } else {
      id = head_;  // the least recently released cached block
      unlink_cached(id);
      unhash(id);
      ++num_evictions_;
    }
    ref_counts_[id] = 1;
    blocks.push_back(id);
  }
}

void BlockPool::add_ref(int32_t block_id) {
  if (ref_counts_.at(block_id) == 0) {
    if (!is_hashed_[block_id]) {
      throw std::logic_error("add_ref on free block " + std::to_string(block_id));
    }
    unlink_cached(block_id);
  }
  ++ref_counts_[block_id];
}

void BlockPool::release(int32_t block_id) {
  if (ref_counts_.at(block_id) <= 0) {
    throw std::logic_error("release of unreferenced block " + std::to_string(block_id));
  }
  if (--ref_counts_[block_id] > 0) return;
  if (is_hashed_[block_id]) {
    push_cached(block_id);
  } else {
    free_list_.push_back(block_id);
  }
}

void BlockPool::release(const std::vector<int32_t>& blocks) {
  for (int32_t id : blocks) release(id);
}

void BlockPool::push_cached(int32_t block_id) {
  prev_[block_id] = tail_;
  next_[block_id] = -1;
  if (tail_ >= 0) {
    next_[tail_] = block_id;
  } else {
    head_ = block_id;
  }
  tail_ = block_id;
  ++num_cached_blocks_;
}

void BlockPool::unlink_cached(int32_t block_id) {
  const int32_t prev = prev_[block_id];
  const int32_t next = next_[block_id];
  (prev >= 0 ? next_[prev] : head_) = next;
  (next >= 0 ? prev_[next] : tail_) = prev;
  prev_[block_id] = next_[block_id] = -1;
  --num_cached_blocks_;
}

size_t BlockPool::slot_of(const BlockHash& hash) const {
  const size_t mask = index_.size() - 1;
  size_t slot = BlockHashHasher()(hash) & mask;
  while (index_[slot] >= 0 && hashes_[index_[slot]] != hash) slot = (slot + 1) & mask;
  return slot;
}

int32_t BlockPool::find(const BlockHash& hash) const { return index_[slot_of(hash)]; }

bool BlockPool::set_hash(int32_t block_id, const BlockHash& hash) {
  if (ref_counts_.at(block_id) <= 0) {
    throw std::logic_error("set_hash on unreferenced block " + std::to_string(block_id));
  }
  if (is_hashed_[block_id] || find(hash) >= 0) return false;
  hashes_[block_id] = hash;
  is_hashed_[block_id] = 1;
  index_insert(block_id);
  return true;
}

void BlockPool::index_insert(int32_t block_id) { index_[slot_of(hashes_[block_id])] = block_id; }

void BlockPool::index_erase(int32_t block_id) {
  // Backward-shift deletion: later entries of the probe run move up into the hole, so lookups
  // never need tombstones.
  const size_t mask = index_.size() - 1;
  size_t hole = slot_of(hashes_[block_id]);
  for (size_t slot = (hole + 1) & mask; index_[slot] >= 0; slot = (slot + 1) & mask) {
    const size_t home = BlockHashHasher()(hashes_[index_[slot]]) & mask;
    // The entry may move into the hole unless its home lies cyclically in (hole, slot].
    const bool stays = hole <= slot ? (hole < home && home <= slot) : (hole < home || home <= slot);
    if (stays) continue;
    index_[hole] = index_[slot];
    hole = slot;
  }
  index_[hole] = -1;
}

void BlockPool::unhash(int32_t block_id) {
  index_erase(block_id);
  is_hashed_[block_id] = 0;
}

int64_t BlockPool::drop_cached_blocks() {
  const int64_t num_dropped = num_cached_blocks_;
  while (head_ >= 0) {
    const int32_t id = head_;
    unlink_cached(id);
    unhash(id);
    free_list_.push_back(id);
  }
  for (size_t id = 0; id < is_hashed_.size(); ++id) {
    if (is_hashed_[id]) unhash(static_cast<int32_t>(id));
  }
  return num_dropped;
}

void BlockPool::check_invariants() const {
  const size_t n = ref_counts_.size();
  std::vector<char> state(n, 0);  // 1 free, 2 cached
  for (int32_t id : free_list_) {
    if (id < 0 || static_cast<size_t>(id) >= n) {
      throw std::logic_error("free list holds invalid block id " + std::to_string(id));
    }
    if (state[id]) throw std::logic_error("block " + std::to_string(id) + " freed twice");
    state[id] = 1;
  }
  int64_t num_listed = 0;
  for (int32_t id = head_, prev = -1; id >= 0; prev = id, id = next_[id]) {
    if (static_cast<size_t>(id) >= n || state[id] || prev_[id] != prev) {
      throw std::logic_error("the cached-block list is broken at block " + std::to_string(id));
    }
    state[id] = 2;
    if (++num_listed > static_cast<int64_t>(n)) {
      throw std::logic_error("the cached-block list has a cycle");
    }
  }
  if (num_listed != num_cached_blocks_ || (num_listed > 0 && next_[tail_] != -1) ||
      (num_listed == 0 && tail_ != -1)) {
    throw std::logic_error("the cached-block list's count or tail is wrong");
  }
  int64_t num_hashed = 0;
  for (size_t id = 0; id < n; ++id) {
    const std::string name = "block " + std::to_string(id);
    if (state[id] != 0 && ref_counts_[id] != 0) throw std::logic_error(name + " is free but held");
    if (state[id] == 0 && ref_counts_[id] <= 0) {
      throw std::logic_error(name + " is neither free, cached nor referenced");
    }
    if (state[id] == 1 && is_hashed_[id]) throw std::logic_error(name + " is free but hashed");
    if (state[id] == 2 && !is_hashed_[id]) throw std::logic_error(name + " is cached, no hash");
    if (is_hashed_[id]) {
      ++num_hashed;
      if (find(hashes_[id]) != static_cast<int32_t>(id)) {
        throw std::logic_error(name + "'s hash is not indexed to it");
      }
    }
  }
  int64_t num_indexed = 0;
  for (int32_t id : index_) {
    if (id < 0) continue;
    ++num_indexed;
    if (static_cast<size_t>(id) >= n || !is_hashed_[id]) {
      throw std::logic_error("the hash index names unhashed block " + std::to_string(id));
    }
  }
  if (num_indexed != num_hashed) {
    throw std::logic_error("the hash index has " + std::to_string(num_indexed) + " entries for " +
                           std::to_string(num_hashed) + " hashed blocks");
  }
}

}  // namespace cadence
