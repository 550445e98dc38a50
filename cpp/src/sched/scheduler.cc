#include "sched/scheduler.h"

#include <algorithm>
#include <stdexcept>

namespace cadence {

namespace {

// The group's sequences in `state`, by sequence index.
std::vector<Request*> sequences_in(const RequestGroup& group, RequestState state) {
  std::vector<Request*> members;
  for (const auto& sequence : group.sequences) {
    if (sequence->state == state) members.push_back(sequence.get());
  }
  return members;
}

}  // namespace

Scheduler::Scheduler(const SchedulerConfig& config, BlockPool& pool)
    : config_(config),
      pool_(pool),
      kv_manager_({config.block_size, config.sliding_window, config.enable_prefix_caching}, pool) {
  if (config_.max_num_seqs < 1 || config_.max_num_batched_tokens < 1 || config_.block_size < 1) {
    throw std::invalid_argument(
        "scheduler: max_num_seqs, max_num_batched_tokens and block_size must be >= 1");
  }
}

void Scheduler::add_group(std::unique_ptr<RequestGroup> group) {
  if (group->sequences.empty() || contains(group->id)) {
    throw std::logic_error("add_group: no sequences, or request id '" + group->id + "' in use");
  }
  for (size_t i = 0; i < group->sequences.size(); ++i) {
    Request& sequence = *group->sequences[i];
    if (sequence.id != group->id || sequence.sequence_index != static_cast<int32_t>(i)) {
      throw std::logic_error("add_group: sequence " + std::to_string(i) + " of '" + group->id +
                             "' has the wrong id or index");
    }
    sequence.group = group.get();
    sequence.key = sequence_key(group->id, sequence.sequence_index);
    sequence.state = i == 0 ? RequestState::kWaiting : RequestState::kAwaitingFork;
    sequences_[sequence.key] = &sequence;
  }
  group->is_running = false;
  waiting_.push_back(group.get());
  groups_[group->id] = std::move(group);
}

void Scheduler::add_request(std::unique_ptr<Request> request) {
  auto group = std::make_unique<RequestGroup>();
  group->id = request->id;
  group->sequences.push_back(std::move(request));
  add_group(std::move(group));
}

Request* Scheduler::find(const std::string& key) const {
  auto it = sequences_.find(key);
  return it == sequences_.end() ? nullptr : it->second;
}

int64_t Scheduler::num_running() const {
  int64_t num = 0;
  for (const RequestGroup* group : running_) num += group->count(RequestState::kRunning);
  return num;
}

int64_t Scheduler::num_waiting() const {
  int64_t num = 0;
  for (const RequestGroup* group : waiting_) num += group->count(RequestState::kWaiting);
  return num;
}

void Scheduler::release_blocks(Request& request) { kv_manager_.release_all(request.blocks); }

void Scheduler::forget(RequestGroup* group) {
  running_.erase(std::remove(running_.begin(), running_.end(), group), running_.end());
  waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), group), waiting_.end());
  for (const auto& sequence : group->sequences) sequences_.erase(sequence->key);
  groups_.erase(group->id);  // `group` is gone after this
}

void Scheduler::finish_request(Request* request) {
  RequestGroup* group = request->group;
  release_blocks(*request);
  request->state = RequestState::kFinished;
  if (group->count(RequestState::kFinished) == static_cast<int64_t>(group->sequences.size())) {
    forget(group);
  }
}

bool Scheduler::abort_request(const std::string& request_id) {
  auto it = groups_.find(request_id);
  if (it == groups_.end()) return false;
  RequestGroup* group = it->second.get();
  // Highest index first, so the order in which blocks are released (and so evicted) does not
  // depend on anything but the request.
  for (auto s = group->sequences.rbegin(); s != group->sequences.rend(); ++s) {
    Request& sequence = **s;
    if (sequence.state == RequestState::kFinished) continue;
    release_blocks(sequence);
    sequence.state = RequestState::kFinished;
    sequence.finish_reason = FinishReason::kAbort;
  }
  forget(group);
  return true;
}

bool Scheduler::abort_sequence(const std::string& request_id, int32_t sequence_index) {
  Request* request = find(sequence_key(request_id, sequence_index));
  if (request == nullptr || request->state == RequestState::kFinished ||
      request->group->is_beam_search) {
    return false;
  }
  RequestGroup* group = request->group;
  if (sequence_index == 0 && group->has_parked()) {
    // Parked sequences would continue from sequence 0: without it they end too.
    return abort_request(request_id);
  }
  request->finish_reason = FinishReason::kAbort;
  finish_request(request);  // may forget the group
  return true;
}

void Scheduler::continue_sequences(const std::string& request_id,
                                   const std::vector<int32_t>& parent) {
  RequestGroup& group = *groups_.at(request_id);
  const size_t width = parent.size();
  if (width != group.sequences.size()) throw std::logic_error("continue_sequences: width");
  // Parents as they were before any sequence changes (a parent may itself be overwritten).
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
    const Request& source = *group.sequences.at(p);
    if (source.state != RequestState::kRunning) {
      throw std::logic_error("continue_sequences: parent " + std::to_string(p) + " not running");
    }
    parents[p] = {source.blocks, source.output_token_ids, source.output_counts,
                  source.num_computed_tokens};
  }
  for (size_t s = 0; s < width; ++s) {  // references first, so no shared block hits zero
    const int32_t p = parent[s];
    if (p >= 0 && p != static_cast<int32_t>(s)) kv_manager_.add_refs(parents[p].blocks);
  }
  for (size_t s = 0; s < width; ++s) {
    const int32_t p = parent[s];
    if (p < 0 || p == static_cast<int32_t>(s)) continue;
    Request& sequence = *group.sequences[s];
    const Snapshot& source = parents[p];
    release_blocks(sequence);
    sequence.blocks = source.blocks;
    sequence.output_token_ids = source.output_token_ids;
    sequence.output_counts = source.output_counts;
    sequence.num_computed_tokens = source.num_computed_tokens;
    sequence.num_cached_tokens = group.leader().num_cached_tokens;
    sequence.state = RequestState::kRunning;
  }
}

std::vector<Request*> Scheduler::fork(const std::string& request_id) {
  RequestGroup& group = *groups_.at(request_id);
  std::vector<int32_t> parent(group.sequences.size(), -1);
  std::vector<Request*> forked;
  for (const auto& sequence : group.sequences) {
    if (sequence->state != RequestState::kAwaitingFork) continue;
    parent[sequence->sequence_index] = 0;
    forked.push_back(sequence.get());
  }
  continue_sequences(request_id, parent);
  return forked;
}

void Scheduler::preempt(RequestGroup* group, SchedulerOutput& output) {
  running_.erase(std::remove(running_.begin(), running_.end(), group), running_.end());
  const int64_t num_prompt_blocks = group->leader().num_prompt_tokens() / config_.block_size;
  for (auto s = group->sequences.rbegin(); s != group->sequences.rend(); ++s) {
    Request& sequence = **s;
    if (sequence.state != RequestState::kRunning) continue;
    release_blocks(sequence);
    sequence.num_computed_tokens = 0;
    sequence.state = RequestState::kWaiting;
    if (group->is_beam_search) {  // restarts from the prompt: slot 0 alone, the rest parked
      sequence.output_token_ids.clear();
      sequence.output_counts.clear();
      auto& hashes = sequence.blocks.hashes;  // only the prompt's tokens remain
      hashes.resize(std::min<size_t>(hashes.size(), static_cast<size_t>(num_prompt_blocks)));
      if (sequence.sequence_index > 0) sequence.state = RequestState::kAwaitingFork;
    }
  }
  if (group->is_beam_search) output.restarted_beam_searches.push_back(group->id);
  group->is_running = false;
  waiting_.push_front(group);
  ++num_preemptions_;
  ++output.num_preempted;
}

int64_t Scheduler::blocks_needed(const std::vector<Request*>& members,
                                 const std::vector<int64_t>& num_new) const {
  int64_t total = 0;
  std::unordered_map<int32_t, int32_t> writers;  // shared block -> members writing to it
  for (size_t m = 0; m < members.size(); ++m) {
    const Request& request = *members[m];
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

void Scheduler::allocate_slots(Request& request, int64_t num_new, SchedulerOutput& output) {
  if (!kv_manager_.allocate_slots(request.blocks, request.num_computed_tokens, num_new,
                                  output.block_copies)) {
    throw std::logic_error("allocate_slots for " + request.key + " after the space was checked");
  }
}

void Scheduler::schedule_tokens(Request& request, int64_t num_new, int64_t& budget,
                                SchedulerOutput& output) {
  if (num_new == 0) return;  // waits for its group's other sequences, or for budget
  allocate_slots(request, num_new, output);
  output.scheduled.push_back(
      {&request, num_new, request.num_computed_tokens + num_new == request.num_tokens()});
  output.num_batched_tokens += num_new;
  budget -= num_new;
}

bool Scheduler::schedule_running(RequestGroup* group, int64_t& budget, SchedulerOutput& output) {
  const std::vector<Request*> members = sequences_in(*group, RequestState::kRunning);
  std::vector<int64_t> num_new(members.size());
  int64_t group_budget = budget;
  for (size_t m = 0; m < members.size(); ++m) {
    num_new[m] = std::min(members[m]->num_tokens() - members[m]->num_computed_tokens, group_budget);
    group_budget -= num_new[m];
  }
  while (!kv_manager_.can_allocate(blocks_needed(members, num_new))) {
    RequestGroup* victim = running_.back();  // the newest
    preempt(victim, output);
    if (victim == group) return false;
  }
  for (size_t m = 0; m < members.size(); ++m)
    schedule_tokens(*members[m], num_new[m], budget, output);
  return true;
}

bool Scheduler::admit_next(int64_t& budget, int64_t& num_running_seqs, SchedulerOutput& output) {
  RequestGroup* group = waiting_.front();
  // A group joins with its parked sequences, which run once they continue from sequence 0.
  const std::vector<Request*> members = sequences_in(*group, RequestState::kWaiting);
  const int64_t num_joining =
      static_cast<int64_t>(members.size()) + group->count(RequestState::kAwaitingFork);
  if (num_running_seqs + num_joining > config_.max_num_seqs && !running_.empty()) return false;
  // Each sequence's cached prefix: whole blocks, at least the last token left to compute.
  // Prompt logprobs need the logits of every prompt position, so such a request computes
  // them all.
  const bool wants_prompt_logprobs = group->leader().params.prompt_logprobs >= 0;
  std::vector<int64_t> num_hit_blocks(members.size(), 0), num_new(members.size());
  std::vector<int32_t> taken_cached;  // distinct hit blocks that are cached (unreferenced) now
  int64_t num_blocks = 0, group_budget = budget;
  for (size_t m = 0; m < members.size(); ++m) {
    Request& request = *members[m];
    if (!wants_prompt_logprobs) {
      num_hit_blocks[m] =
          kv_manager_.find_cached_prefix(request.blocks, request.tokens(), request.cache_salt);
      for (int64_t b = 0; b < num_hit_blocks[m]; ++b) {
        const int32_t block = pool_.find(request.blocks.hashes[b]);
        if (pool_.ref_count(block) == 0 &&
            std::find(taken_cached.begin(), taken_cached.end(), block) == taken_cached.end()) {
          taken_cached.push_back(block);
        }
      }
    }
    const int64_t num_hit_tokens = num_hit_blocks[m] * config_.block_size;
    num_new[m] = std::min(request.num_tokens() - num_hit_tokens, group_budget);
    group_budget -= num_new[m];
    num_blocks += blocks_for_tokens(num_hit_tokens + num_new[m]) - num_hit_blocks[m];
  }
  // Taking a cached block removes it from what the pool can allocate.
  num_blocks += static_cast<int64_t>(taken_cached.size());
  if (!kv_manager_.can_allocate(num_blocks)) return false;
  waiting_.pop_front();
  // Every hit first: allocating may evict cached blocks, which must not be one of them.
  for (size_t m = 0; m < members.size(); ++m) {
    Request& request = *members[m];
    if (!wants_prompt_logprobs) {
      kv_manager_.take_cached_prefix(request.blocks, num_hit_blocks[m], request.num_tokens());
    }
    request.num_computed_tokens = num_hit_blocks[m] * config_.block_size;
    if (request.num_cached_tokens < 0) request.num_cached_tokens = request.num_computed_tokens;
    request.state = RequestState::kRunning;
  }
  for (size_t m = 0; m < members.size(); ++m)
    schedule_tokens(*members[m], num_new[m], budget, output);
  group->is_running = true;
  running_.push_back(group);
  num_running_seqs += static_cast<int64_t>(members.size());
  return true;
}

SchedulerOutput Scheduler::schedule() {
  SchedulerOutput output;
  int64_t budget = config_.max_num_batched_tokens;
  // 1. Running groups, oldest first.
  for (size_t i = 0; i < running_.size() && budget > 0; ++i) {
    if (!schedule_running(running_[i], budget, output)) break;  // newer ones were preempted
  }
  // 2. Admit waiting groups in order while budget, sequence slots and blocks last.
  //    Not in a step that had to preempt: memory is tight, let running groups finish.
  int64_t num_running_seqs = num_running();  // kept current by admit_next
  while (output.num_preempted == 0 && !waiting_.empty() && budget > 0 &&
         num_running_seqs < config_.max_num_seqs) {
    if (!admit_next(budget, num_running_seqs, output)) break;
  }
  return output;
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
  size_t num_sequences = 0;
  for (const auto& [id, owned] : groups_) {
    const RequestGroup& group = *owned;
    const auto queued = [&](const auto& queue) {
      return std::count(queue.begin(), queue.end(), &group);
    };
    if (queued(running_) != (group.is_running ? 1 : 0) ||
        queued(waiting_) != (group.is_running ? 0 : 1)) {
      throw std::logic_error("group " + id + " is not queued exactly once, as its state says");
    }
    if (group.count(group.is_running ? RequestState::kWaiting : RequestState::kRunning) != 0) {
      throw std::logic_error("group " + id + " mixes running and waiting sequences");
    }
    if (group.has_parked() && group.leader().state == RequestState::kFinished) {
      throw std::logic_error("group " + id + " has parked sequences but no sequence 0");
    }
    for (const auto& owned_sequence : group.sequences) {
      const Request& request = *owned_sequence;
      const std::string& key = request.key;
      ++num_sequences;
      if (request.group != &group || find(key) != &request) {
        throw std::logic_error("sequence " + key + " is not indexed under its group");
      }
      const std::vector<int32_t>& table = request.blocks.table;
      const bool is_queued =
          request.state == RequestState::kWaiting || request.state == RequestState::kAwaitingFork;
      if ((request.state != RequestState::kRunning && !table.empty()) ||
          (is_queued && request.num_computed_tokens != 0)) {
        throw std::logic_error("sequence " + key + " holds blocks or progress but is not running");
      }
      if (request.state == RequestState::kRunning &&
          static_cast<int64_t>(table.size()) < blocks_for_tokens(request.num_computed_tokens)) {
        throw std::logic_error("sequence " + key + " has fewer blocks than computed tokens");
      }
      for (size_t b = 0; b < table.size(); ++b) {
        if (table[b] == kFreedBlock) {
          // Freed entries only with a window, and only for blocks the next token does not see.
          const int64_t first_key = request.num_computed_tokens - config_.sliding_window + 1;
          if (config_.sliding_window <= 0 ||
              static_cast<int64_t>(b + 1) * config_.block_size > first_key) {
            throw std::logic_error("sequence " + key + " freed block " + std::to_string(b) +
                                   " that its sliding window still sees");
          }
          continue;
        }
        ++references[table[b]];
        // A hashed block holds exactly the prefix this sequence's chain says it does.
        if (pool_.is_hashed(table[b]) && (b >= request.blocks.hashes.size() ||
                                          pool_.hash_of(table[b]) != request.blocks.hashes[b])) {
          throw std::logic_error("sequence " + key + " block " + std::to_string(b) +
                                 " is cached under another prefix's hash");
        }
      }
      if (request.blocks.num_offered_blocks > static_cast<int64_t>(table.size()) ||
          request.blocks.num_offered_blocks * config_.block_size > request.num_computed_tokens) {
        throw std::logic_error("sequence " + key + " offered blocks it has not computed");
      }
    }
  }
  if (num_sequences != sequences_.size() || running_.size() + waiting_.size() != groups_.size()) {
    throw std::logic_error("the sequence index or the queues disagree with the groups");
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
