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
  raw->state = RequestState::kWaiting;
  requests_[raw->id] = std::move(request);
  waiting_.push_back(raw);
}

void Scheduler::remove_from_queues(Request* request) {
  running_.erase(std::remove(running_.begin(), running_.end(), request), running_.end());
  waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), request), waiting_.end());
}

bool Scheduler::abort_request(const std::string& request_id) {
  auto it = requests_.find(request_id);
  if (it == requests_.end()) return false;
  it->second->finish_reason = FinishReason::kAbort;
  finish_request(it->second.get());
  return true;
}

void Scheduler::finish_request(Request* request) {
  remove_from_queues(request);
  pool_.release(request->block_table);
  request->block_table.clear();
  request->state = RequestState::kFinished;
  requests_.erase(request->id);
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
    pool_.allocate(std::max<int64_t>(0, num_blocks_needed), request->block_table);
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
    const int64_t num_new = std::min(request->num_tokens() - request->num_computed_tokens, budget);
    const int64_t num_blocks_needed = blocks_for_tokens(request->num_computed_tokens + num_new) -
                                      static_cast<int64_t>(request->block_table.size());
    if (!pool_.can_allocate(num_blocks_needed)) break;
    waiting_.pop_front();
    pool_.allocate(num_blocks_needed, request->block_table);
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
  int64_t num_referenced = 0;
  for (const Request* request : running_) {
    if (request->state != RequestState::kRunning) {
      throw std::logic_error("request " + request->id + " is in the running queue but not running");
    }
    if (static_cast<int64_t>(request->block_table.size()) <
        blocks_for_tokens(request->num_computed_tokens)) {
      throw std::logic_error("request " + request->id + " has fewer blocks than computed tokens");
    }
    num_referenced += static_cast<int64_t>(request->block_table.size());
  }
  for (const Request* request : waiting_) {
    if (request->state != RequestState::kWaiting || !request->block_table.empty() ||
        request->num_computed_tokens != 0) {
      throw std::logic_error("waiting request " + request->id + " holds blocks or progress");
    }
  }
  if (running_.size() + waiting_.size() != requests_.size()) {
    throw std::logic_error("requests are missing from the running and waiting queues");
  }
  // Without sharing, every used block belongs to exactly one running request.
  if (num_referenced != pool_.num_used_blocks()) {
    throw std::logic_error("block tables reference " + std::to_string(num_referenced) +
                           " blocks but the pool has " + std::to_string(pool_.num_used_blocks()) +
                           " in use");
  }
}

}  // namespace cadence
