// Continuous batching over request groups (sched/request.h): each step spends one token budget
// over the running groups (oldest first: a decode token for each of a group's running
// sequences, or their next prefill chunks) and then admits waiting groups in arrival order.
// Prefill chunks and decode tokens share one batch.
//
// Memory policy: a sequence holds blocks for exactly the tokens it has computed or is
// computing this step. When the pool cannot cover a running group's next tokens, the newest
// running group is preempted by recompute (all its blocks freed, its progress reset, put back
// at the head of the waiting queue) until it can — possibly the group itself, which then waits.
// Admission never preempts. A preempted beam search restarts from its prompt (its search is
// deterministic, so the result is the same); a preempted sampling group keeps its sequences'
// tokens and RNG states and recomputes them.
//
// Forks: sequence 0 computes the prompt while the group's other sequences are parked; then
// continue_sequences gives each parked one sequence 0's blocks (shared; a shared partial block
// is copied on first write) and progress. n > 1 sampling forks once (fork); a beam search uses
// the same call after every selection to move hypotheses between slots. A sequence that already
// has this step's token computed waits (is not scheduled) until its group catches up.
//
// Sliding window W (SchedulerConfig::sliding_window, set when every layer of the model attends
// only to its W newest positions): after each step, blocks whose tokens all lie before the
// window of the sequence's next token (position num_computed_tokens - W + 1) are released and
// their block-table entries become kFreedBlock; attention never reads them again.
//
// Prefix caching (SchedulerConfig::enable_prefix_caching, see kv/kv_cache_manager.h): a
// sequence being admitted with nothing computed takes the cached blocks of its longest cached
// prefix of full blocks and starts computing after them (at least its last token is computed);
// a request asking for prompt logprobs computes every position, so it takes none. Blocks
// become cached as sequences compute them, and stay cached after release until evicted.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "kv/block_pool.h"
#include "kv/kv_cache_manager.h"
#include "sched/request.h"

namespace cadence {

struct SchedulerConfig {
  int64_t max_num_seqs = 256;             // running sequences at once, >= 1
  int64_t max_num_batched_tokens = 2048;  // tokens computed per step, >= 1
  int64_t block_size = 16;                // tokens per block, >= 1
  int64_t sliding_window = 0;             // > 0: free blocks outside it (see above); 0: keep
  bool enable_prefix_caching = true;      // reuse cached blocks of equal prefixes (see above)
};

struct ScheduledRequest {
  Request* request = nullptr;
  int64_t num_new_tokens = 0;  // positions [num_computed_tokens, + num_new_tokens)
  // True when this chunk reaches the sequence's last known token, so a token is sampled.
  bool samples_token = false;
};

struct SchedulerOutput {
  std::vector<ScheduledRequest> scheduled;
  // Copy-on-write: (source block, destination block) pairs whose KV contents must be
  // copied before the model runs, because a sequence is about to write into a block it
  // shared with its siblings.
  std::vector<std::pair<int32_t, int32_t>> block_copies;
  int64_t num_batched_tokens = 0;
  int64_t num_preempted = 0;  // groups
  // Beam-search requests preempted in this step: they restart from the prompt.
  std::vector<std::string> restarted_beam_searches;
  bool empty() const { return scheduled.empty(); }
};

class Scheduler {
 public:
  Scheduler(const SchedulerConfig& config, BlockPool& pool);

  int64_t blocks_for_tokens(int64_t num_tokens) const {
    return kv_manager_.blocks_for_tokens(num_tokens);
  }
  // Queues a request. Preconditions: at least one sequence, sequences[i]->sequence_index == i,
  // every sequence's id == group->id, the id not in use. Sets each sequence's key and group;
  // sequence 0 waits, the others are parked until they continue from it.
  void add_group(std::unique_ptr<RequestGroup> group);
  // A group of one sequence (a sampling request with n = 1).
  void add_request(std::unique_ptr<Request> request);
  bool contains(const std::string& request_id) const { return groups_.count(request_id) != 0; }
  // The sequence with this key (see sequence_key), or nullptr.
  Request* find(const std::string& key) const;
  // Removes every unfinished sequence of the request and frees their blocks. False when
  // the request has none.
  bool abort_request(const std::string& request_id);
  // Removes one sequence of a request (e.g. it matched a stop string). False when unknown
  // or a beam-search slot (beams are removed together, with abort_request).
  bool abort_sequence(const std::string& request_id, int32_t sequence_index);
  // Sequence s continues sequence parent[s]'s state as it was before this call: it drops its
  // own blocks and takes references to the parent's, with its tokens and progress (its own
  // RNG and parameters stay). parent[s] == s or < 0 leaves slot s as it is; a parked
  // sequence that receives a parent runs. Precondition: every parent is running with all its
  // tokens computed.
  void continue_sequences(const std::string& request_id, const std::vector<int32_t>& parent);
  // n > 1 after sequence 0 computed the prompt: every parked sequence continues from sequence
  // 0 (and so samples its first token from the same logits). Returns them.
  std::vector<Request*> fork(const std::string& request_id);

  SchedulerOutput schedule();
  // After the model ran: advances num_computed_tokens of every scheduled sequence.
  void on_step_done(const SchedulerOutput& output);
  // Frees the blocks of a finished sequence; its group is forgotten (and every pointer into
  // it invalid) once no sequence of it is left.
  void finish_request(Request* request);

  int64_t num_running() const;  // running sequences
  int64_t num_waiting() const;  // waiting sequences (parked ones not counted)
  bool has_unfinished() const { return !groups_.empty(); }
  int64_t num_preemptions() const { return num_preemptions_; }
  const PrefixCacheStats& prefix_cache_stats() const { return kv_manager_.stats(); }
  // Forgets every cached prefix; returns the number of cached blocks dropped.
  int64_t reset_prefix_cache() { return kv_manager_.reset_prefix_cache(); }

  // Throws std::logic_error when groups, queues, sequence states and blocks disagree, on top
  // of the pool's own invariant check.
  void check_invariants() const;

 private:
  // Preempts one group, or, for a beam search, restarts it from its prompt.
  void preempt(RequestGroup* group, SchedulerOutput& output);
  // Blocks the group's running sequences need to compute num_new[i] more tokens each,
  // counting a block that several of them share and write into once per copy actually made.
  int64_t blocks_needed(const std::vector<Request*>& members,
                        const std::vector<int64_t>& num_new) const;
  // Schedules the running group's sequences within `budget` (preempting newer groups for
  // blocks). False when the group preempted itself: every newer group went too.
  bool schedule_running(RequestGroup* group, int64_t& budget, SchedulerOutput& output);
  // Admits the head of the waiting queue when budget, sequence slots (num_running_seqs, the
  // running sequences, which it updates) and blocks allow, taking its cached prefixes. False
  // when it cannot be admitted now.
  bool admit_next(int64_t& budget, int64_t& num_running_seqs, SchedulerOutput& output);
  // Gives the sequence the blocks for num_new more tokens; the caller checked the space.
  void allocate_slots(Request& request, int64_t num_new, SchedulerOutput& output);
  void schedule_tokens(Request& request, int64_t num_new, int64_t& budget, SchedulerOutput& output);
  // Releases the sequence's blocks (kept as cached prefixes where hashed).
  void release_blocks(Request& request);
  void forget(RequestGroup* group);

  SchedulerConfig config_;
  BlockPool& pool_;
  KvCacheManager kv_manager_;
  std::unordered_map<std::string, std::unique_ptr<RequestGroup>> groups_;  // by request id
  std::unordered_map<std::string, Request*> sequences_;                    // by sequence key
  std::vector<RequestGroup*> running_;  // admission order, oldest first
  std::deque<RequestGroup*> waiting_;
  int64_t num_preemptions_ = 0;
};

}  // namespace cadence
