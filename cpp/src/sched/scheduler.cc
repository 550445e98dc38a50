#include "sched/scheduler.h"

#include <algorithm>
#include <stdexcept>

namespace cadence {

Scheduler::Scheduler(const SchedulerConfig& config, BlockPool& pool)
    : config_(config),
      pool_(pool),
      kv_manager_({config.block_size, config.sliding_window, config.enable_prefix_caching}, pool) {
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

Request* Scheduler::find(const std::string& key) const {
  auto it = requests_.find(key);
  return it == requests_.end() ? nullptr : it->second.get();
}

std::vector<Request*> Scheduler::fork_siblings(Request* leader) {
  std::vector<Request*> siblings;
  siblings.swap(leader->siblings_awaiting_fork);
  for (Request* sibling : siblings) {
    kv_manager_.share(leader->blocks, sibling->blocks);
    sibling->num_computed_tokens = leader->num_computed_tokens;
    sibling->num_cached_tokens = leader->num_cached_tokens;
    sibling->state = RequestState::kRunning;
    running_.push_back(sibling);
  }
  return siblings;
}

void Scheduler::release_blocks(Request& request) { kv_manager_.release_all(request.blocks); }

void Scheduler::remove_from_queues(Request* request) {
  running_.erase(std::remove(running_.begin(), running_.end(), request), running_.end());
  waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), request), waiting_.end());
}

std::vector<Request*> Scheduler::sequences_of(const std::string& request_id) const {
  std::vector<Request*> sequences;
  for (const auto& [key, request] : requests_) {
    if (request->id == request_id) sequences.push_back(request.get());
  }
  std::sort(sequences.begin(), sequences.end(), [](const Request* a, const Request* b) {
    return a->sequence_index > b->sequence_index;
  });
  return sequences;
}

bool Scheduler::abort_request(const std::string& request_id) {
  const std::vector<Request*> sequences = sequences_of(request_id);
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
  if (request->is_beam_search) return false;
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
  release_blocks(*request);
  request->state = RequestState::kFinished;
  requests_.erase(request->key);
}

void Scheduler::preempt(Request* request, SchedulerOutput& output) {
  if (request->is_beam_search) {
    restart_beam_search(request->id);
    output.restarted_beam_searches.push_back(request->id);
    ++num_preemptions_;
    return;
  }
  running_.erase(std::remove(running_.begin(), running_.end(), request), running_.end());
  release_blocks(*request);
  request->num_computed_tokens = 0;
  request->state = RequestState::kWaiting;
  waiting_.push_front(request);
  ++num_preemptions_;
}

size_t Scheduler::unit_end(size_t first) const {
  const Request* request = running_[first];
  size_t end = first + 1;
  if (!request->is_beam_search) return end;
  while (end < running_.size() && running_[end]->is_beam_search &&
         running_[end]->id == request->id) {
    ++end;
  }
  return end;
}

int64_t Scheduler::blocks_needed_for_unit(size_t first, const std::vector<int64_t>& num_new) const {
  int64_t total = 0;
  std::unordered_map<int32_t, int32_t> writers;  // shared block -> unit members writing to it
  for (size_t m = 0; m < num_new.size(); ++m) {
    const Request& request = *running_[first + m];
    if (num_new[m] == 0) continue;
    total += blocks_for_tokens(request.num_computed_tokens + num_new[m]) -
             static_cast<int64_t>(request.blocks.table.size());
    if (kv_manager_.writes_into_shared_block(request.blocks, request.num_computed_tokens)) {
      ++writers[request.blocks.table[request.num_computed_tokens / config_.block_size]];
    }
  }
  // Writers copy the shared block in turn; the last holder of it writes in place.
  for (const auto& [block, count] : writers) {
    total += count - (pool_.ref_count(block) == count ? 1 : 0);
  }
  return total;
}

void Scheduler::restart_beam_search(const std::string& request_id) {
  Request* leader = find(request_id);
  const int64_t num_prompt_blocks = leader->num_prompt_tokens() / config_.block_size;
  for (Request* request : sequences_of(request_id)) {
    running_.erase(std::remove(running_.begin(), running_.end(), request), running_.end());
    release_blocks(*request);
    request->num_computed_tokens = 0;
    request->output_token_ids.clear();
    request->output_counts.clear();
    auto& hashes = request->blocks.hashes;  // only the prompt's tokens remain
    hashes.resize(std::min<size_t>(hashes.size(), static_cast<size_t>(num_prompt_blocks)));
    if (request != leader && request->state != RequestState::kAwaitingFork) {
      request->state = RequestState::kAwaitingFork;
      leader->siblings_awaiting_fork.push_back(request);
    }
  }
  leader->state = RequestState::kWaiting;
  waiting_.push_front(leader);
}

void Scheduler::move_beams(const std::string& request_id, const std::vector<int32_t>& parent) {
  const size_t width = parent.size();
  std::vector<Request*> slots(width);
  for (size_t s = 0; s < width; ++s) {
    slots[s] = find(sequence_key(request_id, static_cast<int32_t>(s)));
    if (slots[s] == nullptr) throw std::logic_error("beam slot " + std::to_string(s) + " missing");
  }
  // Parents as they were before any slot changes (a parent may itself be overwritten).
  struct Snapshot {
    SequenceBlocks blocks;
    std::vector<int32_t> output_token_ids;
    std::unordered_map<int32_t, int32_t> output_counts;
    int64_t num_computed_tokens = 0;
  };
  std::unordered_map<int32_t, Snapshot> parents;
  for (size_t s = 0; s < width; ++s) {
    const int32_t p = parent[s];
    if (p < 0 || p == static_cast<int32_t>(s) || parents.count(p) != 0) continue;
    const Request& source = *slots[p];
    parents[p] = {source.blocks, source.output_token_ids, source.output_counts,
                  source.num_computed_tokens};
  }
  for (size_t s = 0; s < width; ++s) {  // references first, so no shared block hits zero
    const int32_t p = parent[s];
    if (p < 0 || p == static_cast<int32_t>(s)) continue;
    kv_manager_.add_refs(parents[p].blocks);
  }
  for (size_t s = 0; s < width; ++s) {
    const int32_t p = parent[s];
    if (p < 0 || p == static_cast<int32_t>(s)) continue;
    Request& slot = *slots[s];
    const Snapshot& source = parents[p];
    release_blocks(slot);
    slot.blocks = source.blocks;
    slot.output_token_ids = source.output_token_ids;
    slot.output_counts = source.output_counts;
    slot.num_computed_tokens = source.num_computed_tokens;
    if (slot.state == RequestState::kAwaitingFork) {
      auto& parked = slots[0]->siblings_awaiting_fork;
      parked.erase(std::remove(parked.begin(), parked.end(), &slot), parked.end());
      slot.state = RequestState::kRunning;
      // Beside its running siblings, so the beams stay one contiguous unit.
      auto last = std::find_if(running_.rbegin(), running_.rend(),
                               [&](const Request* r) { return r->id == request_id; });
      running_.insert(last.base(), &slot);
    }
  }
}

SchedulerOutput Scheduler::schedule() {
  SchedulerOutput output;
  int64_t budget = config_.max_num_batched_tokens;

  // 1. Running units (a request, or all beams of a beam search), oldest first.
  for (size_t i = 0; i < running_.size() && budget > 0;) {
    const size_t end = unit_end(i);
    std::vector<int64_t> num_new(end - i);
    int64_t unit_budget = budget;
    for (size_t m = i; m < end; ++m) {
      const Request& request = *running_[m];
      num_new[m - i] = std::min(request.num_tokens() - request.num_computed_tokens, unit_budget);
      unit_budget -= num_new[m - i];
    }
    bool preempted_self = false;
    while (!kv_manager_.can_allocate(blocks_needed_for_unit(i, num_new))) {
      const bool victim_is_this_unit = running_.size() == end;  // the unit is the newest
      preempt(running_.back(), output);
      ++output.num_preempted;
      if (victim_is_this_unit) {
        preempted_self = true;
        break;
      }
    }
    if (preempted_self) break;  // every newer request was preempted as well
    for (size_t m = i; m < end; ++m) {
      if (num_new[m - i] == 0) continue;  // a beam waiting for its siblings' tokens
      Request* request = running_[m];
      allocate_slots(*request, num_new[m - i], output);
      output.scheduled.push_back(
          {request, num_new[m - i],
           request->num_computed_tokens + num_new[m - i] == request->num_tokens()});
      output.num_batched_tokens += num_new[m - i];
      budget -= num_new[m - i];
    }
    i = end;
  }

  // 2. Admit waiting requests in order while budget, sequence slots and blocks last.
  //    Not in a step that had to preempt: memory is tight, let running requests finish.
  while (output.num_preempted == 0 && !waiting_.empty() && budget > 0 &&
         static_cast<int64_t>(running_.size()) < config_.max_num_seqs) {
    if (!admit_next(budget, output)) break;
  }
  return output;
}

bool Scheduler::admit_next(int64_t& budget, SchedulerOutput& output) {
  Request* request = waiting_.front();
  // Sequence 0 of an n > 1 request brings its parked siblings into the running set.
  const auto num_seqs_joining = static_cast<int64_t>(1 + request->siblings_awaiting_fork.size());
  if (static_cast<int64_t>(running_.size()) + num_seqs_joining > config_.max_num_seqs &&
      !running_.empty()) {
    return false;
  }
  // The cached prefix: whole blocks, at least the last token left to compute. Prompt logprobs
  // need the logits of every prompt position, so such a request computes them all.
  const bool wants_prompt_logprobs = request->params.prompt_logprobs >= 0;
  const int64_t num_hit_blocks =
      wants_prompt_logprobs
          ? 0
          : kv_manager_.find_cached_prefix(request->blocks, request->tokens(), request->cache_salt);
  const int64_t num_hit_tokens = num_hit_blocks * config_.block_size;
  const int64_t num_new = std::min(request->num_tokens() - num_hit_tokens, budget);
  // New blocks past the hit, plus the hit blocks that are cached now: taking them removes
  // them from what the pool can allocate.
  const int64_t num_blocks = blocks_for_tokens(num_hit_tokens + num_new) - num_hit_blocks +
                             kv_manager_.num_evictable(request->blocks, num_hit_blocks);
  if (!kv_manager_.can_allocate(num_blocks)) return false;
  waiting_.pop_front();
  if (!wants_prompt_logprobs) {
    kv_manager_.take_cached_prefix(request->blocks, num_hit_blocks, request->num_tokens());
  }
  request->num_computed_tokens = num_hit_tokens;
  if (request->num_cached_tokens < 0) request->num_cached_tokens = num_hit_tokens;
  allocate_slots(*request, num_new, output);
  request->state = RequestState::kRunning;
  running_.push_back(request);
  output.scheduled.push_back(
      {request, num_new, request->num_computed_tokens + num_new == request->num_tokens()});
  output.num_batched_tokens += num_new;
  budget -= num_new;
  return true;
}

void Scheduler::allocate_slots(Request& request, int64_t num_new, SchedulerOutput& output) {
  if (!kv_manager_.allocate_slots(request.blocks, request.num_computed_tokens, num_new,
                                  output.block_copies)) {
    throw std::logic_error("allocate_slots for " + request.key + " after the space was checked");
  }
}

void Scheduler::on_step_done(const SchedulerOutput& output) {
  for (const ScheduledRequest& item : output.scheduled) {
    Request& request = *item.request;
    request.num_computed_tokens += item.num_new_tokens;
    kv_manager_.cache_full_blocks(request.blocks, request.tokens(), request.num_computed_tokens,
                                  request.cache_salt);
    kv_manager_.free_outside_window(request.blocks, request.num_computed_tokens);
  }
}

void Scheduler::check_invariants() const {
  pool_.check_invariants();
  std::unordered_map<int32_t, int32_t> references;  // block -> holders among sequences
  int64_t num_parked = 0;
  for (const auto& [key, request] : requests_) {
    if (request->state == RequestState::kAwaitingFork) {
      ++num_parked;
      if (!request->blocks.table.empty()) {
        throw std::logic_error("sequence " + key + " holds blocks before its fork");
      }
    }
    const std::vector<int32_t>& table = request->blocks.table;
    for (size_t b = 0; b < table.size(); ++b) {
      if (table[b] == kFreedBlock) continue;
      ++references[table[b]];
      // A hashed block holds exactly the prefix this sequence's chain says it does.
      if (pool_.is_hashed(table[b]) && (b >= request->blocks.hashes.size() ||
                                        pool_.hash_of(table[b]) != request->blocks.hashes[b])) {
        throw std::logic_error("sequence " + key + " block " + std::to_string(b) +
                               " is cached under another prefix's hash");
      }
    }
    if (request->blocks.num_offered_blocks > static_cast<int64_t>(table.size()) ||
        request->blocks.num_offered_blocks * config_.block_size > request->num_computed_tokens) {
      throw std::logic_error("sequence " + key + " offered blocks it has not computed");
    }
    // Freed entries only with a window, and only for blocks the next token does not see.
    const int64_t first_key = request->num_computed_tokens - config_.sliding_window + 1;
    for (size_t b = 0; b < table.size(); ++b) {
      if (table[b] == kFreedBlock &&
          (config_.sliding_window <= 0 ||
           static_cast<int64_t>(b + 1) * config_.block_size > first_key)) {
        throw std::logic_error("sequence " + key + " freed block " + std::to_string(b) +
                               " that its sliding window still sees");
      }
    }
  }
  for (const Request* request : running_) {
    if (request->state != RequestState::kRunning) {
      throw std::logic_error("request " + request->key +
                             " is in the running queue but not running");
    }
    if (static_cast<int64_t>(request->blocks.table.size()) <
        blocks_for_tokens(request->num_computed_tokens)) {
      throw std::logic_error("request " + request->key + " has fewer blocks than computed tokens");
    }
  }
  for (size_t i = 0; i < running_.size();) {  // a beam search's slots form one unit
    const size_t end = unit_end(i);
    for (size_t j = end; j < running_.size(); ++j) {
      if (running_[i]->is_beam_search && running_[j]->id == running_[i]->id) {
        throw std::logic_error("the beams of request " + running_[i]->id +
                               " are not contiguous in the running queue");
      }
    }
    i = end;
  }
  for (const Request* request : waiting_) {
    if (request->state != RequestState::kWaiting || !request->blocks.table.empty() ||
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
