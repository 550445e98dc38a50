#include "sched/scheduler.h"

#include <algorithm>
#include <stdexcept>

namespace cadence {

Scheduler::Scheduler(const SchedulerConfig& config, BlockPool& pool)
    : config_(config), pool_(pool) {
  if (config_.max_num_seqs < 1 || config_.max_num_batched_tokens < 1 || config_.block_size < 1) {
    throw std::invalid_argument(
        "scheduler: max_num_seqs, max_num_batched_tokens and block_size must be >= 1");
  }
}

void Scheduler::add_request(std::unique_ptr<Request> request) {
  Request* raw = request.get();
  requests_[raw->key] = std::move(request);
  if (raw->state == RequestState::kAwaitingFork) return;
  raw->state = RequestState::kWaiting;
  waiting_.push_back(raw);
}

std::vector<Request*> Scheduler::fork_siblings(Request* leader) {
  std::vector<Request*> siblings;
  siblings.swap(leader->siblings_awaiting_fork);
  for (Request* sibling : siblings) {
    sibling->block_table = leader->block_table;
    for (int32_t block : sibling->block_table) pool_.add_ref(block);
    sibling->num_computed_tokens = leader->num_computed_tokens;
    sibling->state = RequestState::kRunning;
    running_.push_back(sibling);
  }
  return siblings;
}

bool Scheduler::writes_into_shared_block(const Request& request) const {
  const int64_t block_index = request.num_computed_tokens / config_.block_size;
  return block_index < static_cast<int64_t>(request.block_table.size()) &&
         pool_.ref_count(request.block_table[block_index]) > 1;
}

int64_t Scheduler::blocks_needed(const Request& request, int64_t num_new) const {
  return blocks_for_tokens(request.num_computed_tokens + num_new) -
         static_cast<int64_t>(request.block_table.size()) +
         (writes_into_shared_block(request) ? 1 : 0);
}

void Scheduler::allocate_for(Request& request, int64_t num_new, SchedulerOutput& output) {
  if (writes_into_shared_block(request)) {
    const int64_t block_index = request.num_computed_tokens / config_.block_size;
    std::vector<int32_t> fresh;
    pool_.allocate(1, fresh);
    const int32_t shared = request.block_table[block_index];
    output.block_copies.emplace_back(shared, fresh[0]);
    pool_.release({shared});
    request.block_table[block_index] = fresh[0];
  }
  const int64_t num_more = blocks_for_tokens(request.num_computed_tokens + num_new) -
                           static_cast<int64_t>(request.block_table.size());
  if (num_more > 0) pool_.allocate(num_more, request.block_table);
}

void Scheduler::remove_from_queues(Request* request) {
  running_.erase(std::remove(running_.begin(), running_.end(), request), running_.end());
  waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), request), waiting_.end());
}

bool Scheduler::abort_request(const std::string& request_id) {
  std::vector<Request*> sequences;
  for (const auto& [key, request] : requests_) {
    if (request->id == request_id) sequences.push_back(request.get());
  }
  for (Request* request : sequences) {
    request->finish_reason = FinishReason::kAbort;
    finish_request(request);
  }
  return !sequences.empty();
}

bool Scheduler::abort_sequence(const std::string& request_id, int32_t sequence_index) {
  auto it = requests_.find(sequence_key(request_id, sequence_index));
  if (it == requests_.end()) return false;
  Request* request = it->second.get();
  if (request->state == RequestState::kAwaitingFork) {
    auto leader = requests_.find(request_id);
    if (leader != requests_.end()) {
      auto& parked = leader->second->siblings_awaiting_fork;
      parked.erase(std::remove(parked.begin(), parked.end(), request), parked.end());
    }
  }
  request->finish_reason = FinishReason::kAbort;
  finish_request(request);
  return true;
}

void Scheduler::finish_request(Request* request) {
  remove_from_queues(request);
  pool_.release(request->block_table);
  request->block_table.clear();
  request->state = RequestState::kFinished;
  requests_.erase(request->key);
}

void Scheduler::preempt(Request* request) {
  running_.erase(std::remove(running_.begin(), running_.end(), request), running_.end());
  pool_.release(request->block_table);
  request->block_table.clear();
  request->num_computed_tokens = 0;
  request->state = RequestState::kWaiting;
  waiting_.push_front(request);
  ++num_preemptions_;
}

SchedulerOutput Scheduler::schedule() {
  SchedulerOutput output;
  int64_t budget = config_.max_num_batched_tokens;

  // 1. Running requests, oldest first.
  for (size_t i = 0; i < running_.size() && budget > 0;) {
    Request* request = running_[i];
    const int64_t num_new = std::min(request->num_tokens() - request->num_computed_tokens, budget);
    const int64_t num_blocks_needed = blocks_for_tokens(request->num_computed_tokens + num_new) -
                                      static_cast<int64_t>(request->block_table.size());
    bool preempted_self = false;
    while (!pool_.can_allocate(num_blocks_needed)) {
      Request* victim = running_.back();
      preempt(victim);
      ++output.num_preempted;
      if (victim == request) {
        preempted_self = true;
        break;
      }
    }
    if (preempted_self) break;  // every newer request was preempted as well
    allocate_for(*request, num_new, output);
    output.scheduled.push_back(
        {request, num_new, request->num_computed_tokens + num_new == request->num_tokens()});
    output.num_batched_tokens += num_new;
    budget -= num_new;
    ++i;
  }

  // 2. Admit waiting requests in order while budget, sequence slots and blocks last.
  //    Not in a step that had to preempt: memory is tight, let running requests finish.
  while (output.num_preempted == 0 && !waiting_.empty() && budget > 0 &&
         static_cast<int64_t>(running_.size()) < config_.max_num_seqs) {
    Request* request = waiting_.front();
    // Sequence 0 of an n > 1 request brings its parked siblings into the running set.
    const auto num_seqs_joining = static_cast<int64_t>(1 + request->siblings_awaiting_fork.size());
    if (static_cast<int64_t>(running_.size()) + num_seqs_joining > config_.max_num_seqs &&
        !running_.empty()) {
      break;
    }
    const int64_t num_new = std::min(request->num_tokens() - request->num_computed_tokens, budget);
    if (!pool_.can_allocate(blocks_needed(*request, num_new))) break;
    waiting_.pop_front();
    allocate_for(*request, num_new, output);
    request->state = RequestState::kRunning;
    running_.push_back(request);
    output.scheduled.push_back(
        {request, num_new, request->num_computed_tokens + num_new == request->num_tokens()});
    output.num_batched_tokens += num_new;
    budget -= num_new;
  }
  return output;
}

void Scheduler::on_step_done(const SchedulerOutput& output) {
  for (const ScheduledRequest& item : output.scheduled) {
    item.request->num_computed_tokens += item.num_new_tokens;
  }
}

void Scheduler::check_invariants() const {
  pool_.check_invariants();
  std::unordered_map<int32_t, int32_t> references;  // block -> holders among sequences
  int64_t num_parked = 0;
  for (const auto& [key, request] : requests_) {
    if (request->state == RequestState::kAwaitingFork) {
      ++num_parked;
      if (!request->block_table.empty()) {
        throw std::logic_error("sequence " + key + " holds blocks before its fork");
      }
    }
    for (int32_t block : request->block_table) ++references[block];
  }
  for (const Request* request : running_) {
    if (request->state != RequestState::kRunning) {
      throw std::logic_error("request " + request->key +
                             " is in the running queue but not running");
    }
    if (static_cast<int64_t>(request->block_table.size()) <
        blocks_for_tokens(request->num_computed_tokens)) {
      throw std::logic_error("request " + request->key + " has fewer blocks than computed tokens");
    }
  }
  for (const Request* request : waiting_) {
    if (request->state != RequestState::kWaiting || !request->block_table.empty() ||
        request->num_computed_tokens != 0) {
      throw std::logic_error("waiting request " + request->key + " holds blocks or progress");
    }
  }
  if (static_cast<int64_t>(running_.size() + waiting_.size()) + num_parked !=
      static_cast<int64_t>(requests_.size())) {
    throw std::logic_error("requests are missing from the running and waiting queues");
  }
  // Every reference the pool counts is held by exactly one block-table entry.
  int64_t num_referenced_blocks = 0;
  for (const auto& [block, count] : references) {
    if (pool_.ref_count(block) != count) {
      throw std::logic_error("block " + std::to_string(block) + " has ref count " +
                             std::to_string(pool_.ref_count(block)) + " but " +
                             std::to_string(count) + " holders");
    }
    ++num_referenced_blocks;
  }
  if (num_referenced_blocks != pool_.num_used_blocks()) {
    throw std::logic_error("block tables reference " + std::to_string(num_referenced_blocks) +
                           " blocks but the pool has " + std::to_string(pool_.num_used_blocks()) +
                           " in use");
  }
}

}  // namespace cadence
