#include "kv/block_pool.h"

#include <stdexcept>
#include <string>

namespace cadence {

BlockPool::BlockPool(int64_t num_blocks) {
  if (num_blocks <= 0) {
    throw std::invalid_argument("KV block pool needs at least one block, got " +
                                std::to_string(num_blocks));
  }
  ref_counts_.assign(static_cast<size_t>(num_blocks), 0);
  free_list_.reserve(static_cast<size_t>(num_blocks));
  // Highest id at the bottom so that a fresh pool hands out 0, 1, 2, ...
  for (int64_t id = num_blocks - 1; id >= 0; --id) free_list_.push_back(static_cast<int32_t>(id));
}

void BlockPool::allocate(int64_t num_blocks, std::vector<int32_t>& blocks) {
  if (!can_allocate(num_blocks)) {
    throw std::logic_error("BlockPool::allocate(" + std::to_string(num_blocks) + ") with only " +
                           std::to_string(num_free_blocks()) + " free blocks");
  }
  for (int64_t i = 0; i < num_blocks; ++i) {
    const int32_t id = free_list_.back();
    free_list_.pop_back();
    ref_counts_[id] = 1;
    blocks.push_back(id);
  }
}

void BlockPool::add_ref(int32_t block_id) {
  if (ref_counts_.at(block_id) <= 0) {
    throw std::logic_error("add_ref on free block " + std::to_string(block_id));
  }
  ++ref_counts_[block_id];
}

void BlockPool::release(const std::vector<int32_t>& blocks) {
  for (int32_t id : blocks) {
    if (ref_counts_.at(id) <= 0) {
      throw std::logic_error("release of free block " + std::to_string(id));
    }
    if (--ref_counts_[id] == 0) free_list_.push_back(id);
  }
}

void BlockPool::check_invariants() const {
  std::vector<char> on_free_list(ref_counts_.size(), 0);
  for (int32_t id : free_list_) {
    if (id < 0 || static_cast<size_t>(id) >= ref_counts_.size()) {
      throw std::logic_error("free list holds invalid block id " + std::to_string(id));
    }
    if (on_free_list[id]) throw std::logic_error("block " + std::to_string(id) + " freed twice");
    on_free_list[id] = 1;
  }
  for (size_t id = 0; id < ref_counts_.size(); ++id) {
    if (on_free_list[id] && ref_counts_[id] != 0) {
      throw std::logic_error("free block " + std::to_string(id) + " has references");
    }
    if (!on_free_list[id] && ref_counts_[id] <= 0) {
      throw std::logic_error("block " + std::to_string(id) + " is neither free nor referenced");
    }
  }
}

}  // namespace cadence
