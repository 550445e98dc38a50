// Continuous batching: each step spends one token budget over the running requests
// (oldest first: a decode token each, or the next prefill chunk) and then admits waiting
// requests in arrival order. Prefill chunks and decode tokens share one batch.
//
// Memory policy: a request holds blocks for exactly the tokens it has computed or is
// computing this step. When the pool cannot cover a running request's next tokens, the
// newest running request is preempted by recompute (all its blocks freed, its progress
// reset, put back at the head of the waiting queue) until it can — possibly the request
// itself, which then waits. Admission never preempts.
//
// Sliding window W (SchedulerConfig::sliding_window, set when every layer of the model attends
// only to its W newest positions): after each step, blocks whose tokens all lie before the
// window of the request's next token (position num_computed_tokens - W + 1) are released and
// their block-table entries become kFreedBlock; attention never reads them again.
//
// Beam search: a request's beams sit next to each other in the running queue and are
// scheduled and preempted as one unit; a preempted beam search frees all its blocks and
// restarts from its prompt (its search is deterministic, so the result is the same). A
// beam that already has this step's token computed waits (is not scheduled) until its
// siblings catch up.
//
// Prefix caching (SchedulerConfig::enable_prefix_caching, see kv/kv_cache_manager.h): a
// request being admitted with nothing computed takes the cached blocks of its longest cached
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
  int64_t max_num_seqs = 256;             // running requests at once, >= 1
  int64_t max_num_batched_tokens = 2048;  // tokens computed per step, >= 1
  int64_t block_size = 16;                // tokens per block, >= 1
  int64_t sliding_window = 0;             // > 0: free blocks outside it (see above); 0: keep
  bool enable_prefix_caching = true;      // reuse cached blocks of equal prefixes (see above)
};

struct ScheduledRequest {
  Request* request = nullptr;
  int64_t num_new_tokens = 0;  // positions [num_computed_tokens, + num_new_tokens)
  // True when this chunk reaches the request's last known token, so a token is sampled.
  bool samples_token = false;
};

struct SchedulerOutput {
  std::vector<ScheduledRequest> scheduled;
  // Copy-on-write: (source block, destination block) pairs whose KV contents must be
  // copied before the model runs, because a sequence is about to write into a block it
  // shared with its siblings.
  std::vector<std::pair<int32_t, int32_t>> block_copies;
  int64_t num_batched_tokens = 0;
  int64_t num_preempted = 0;
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
  // Queues a sequence; one in state kAwaitingFork is only registered (its leader forks it).
  void add_request(std::unique_ptr<Request> request);
  bool contains(const std::string& key) const { return requests_.count(key) != 0; }
  // The sequence with this key (see sequence_key), or nullptr.
  Request* find(const std::string& key) const;
  // Removes every unfinished sequence of the request and frees their blocks. False when
  // the request has none.
  bool abort_request(const std::string& request_id);
  // Removes one sequence of a request (e.g. it matched a stop string). False when unknown
  // or a beam-search slot (beams are removed together, with abort_request).
  bool abort_sequence(const std::string& request_id, int32_t sequence_index);
  // Sequence 0 has just computed its prompt: its parked siblings take references to its
  // blocks (the partial last block is copied on their first write) and start running with
  // the prompt computed. Returns them.
  std::vector<Request*> fork_siblings(Request* leader);
  // Beam search after a selection: slot s of the request continues slot parent[s]'s
  // hypothesis (as it was before this call): it drops its own blocks and takes references
  // to the parent's, with its tokens and progress. parent[s] == s keeps the slot as it is.
  // A parked slot that receives a parent joins the running queue beside its siblings.
  // Precondition: every parent is running with all its tokens computed.
  void move_beams(const std::string& request_id, const std::vector<int32_t>& parent);

  SchedulerOutput schedule();
  // After the model ran: advances num_computed_tokens of every scheduled request.
  void on_step_done(const SchedulerOutput& output);
  // Frees the blocks of a finished request and forgets it.
  void finish_request(Request* request);

  int64_t num_running() const { return static_cast<int64_t>(running_.size()); }
  int64_t num_waiting() const { return static_cast<int64_t>(waiting_.size()); }
  bool has_unfinished() const { return !requests_.empty(); }
  int64_t num_preemptions() const { return num_preemptions_; }
  const PrefixCacheStats& prefix_cache_stats() const { return kv_manager_.stats(); }
  // Forgets every cached prefix; returns the number of cached blocks dropped.
  int64_t reset_prefix_cache() { return kv_manager_.reset_prefix_cache(); }

  // Throws std::logic_error when running/waiting/blocks bookkeeping disagree, on top of
  // the pool's own invariant check.
  void check_invariants() const;

 private:
  // Preempts one sequence, or, for a beam-search slot, restarts its whole beam search.
  void preempt(Request* request, SchedulerOutput& output);
  void restart_beam_search(const std::string& request_id);
  // The running requests scheduled as one unit starting at running_[first]: the request
  // alone, or all the beams of a beam search. Returns one past the last.
  size_t unit_end(size_t first) const;
  // Blocks the unit's sequences need to compute num_new[i] more tokens each, counting a
  // block that several of them share and write into once per copy actually made.
  int64_t blocks_needed_for_unit(size_t first, const std::vector<int64_t>& num_new) const;
  // The request's unfinished sequences, highest sequence index first: a fixed order (the map's
  // is not), so the order in which their blocks are released, and so evicted, is reproducible.
  std::vector<Request*> sequences_of(const std::string& request_id) const;
  void remove_from_queues(Request* request);
  // Admits the head of the waiting queue when budget and blocks allow (taking its cached
  // prefix). False when it cannot be admitted now.
  bool admit_next(int64_t& budget, SchedulerOutput& output);
  // Gives the request the blocks for num_new more tokens; the caller checked the space.
  void allocate_slots(Request& request, int64_t num_new, SchedulerOutput& output);
  // Releases the request's blocks (kept as cached prefixes where hashed).
  void release_blocks(Request& request);

  SchedulerConfig config_;
  BlockPool& pool_;
  KvCacheManager kv_manager_;
  std::unordered_map<std::string, std::unique_ptr<Request>> requests_;
  std::vector<Request*> running_;  // admission order, oldest first
  std::deque<Request*> waiting_;
  int64_t num_preemptions_ = 0;
};

}  // namespace cadence
