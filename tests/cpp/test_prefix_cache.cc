// The prefix cache: SHA-256 and the block hash chain, the block pool's cached state (index,
// eviction order, reset), and the scheduler's use of it (hits, the always-computed last token,
// salts, sharing with running requests, prompt logprobs, preemption, forks), closed by a seeded
// property test of random adds, aborts, finishes and steps under memory pressure.
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kv/block_hash.h"
#include "kv/block_pool.h"
#include "sched/scheduler.h"
#include "scheduler_test_util.h"
#include "test_harness.h"
#include "util/sha256.h"

using namespace cadence;

namespace {

std::string hex(const Sha256Digest& digest) {
  std::string text;
  char byte[3];
  for (uint8_t b : digest) {
    std::snprintf(byte, sizeof(byte), "%02x", b);
    text += byte;
  }
  return text;
}

BlockHash hash_of_tokens(const std::vector<int32_t>& tokens, const BlockHash* parent = nullptr,
                         const std::string& salt = "") {
  return hash_block(parent, tokens.data(), static_cast<int64_t>(tokens.size()), salt);
}

using cadence_test::complete_step;
using cadence_test::iota_tokens;

std::unique_ptr<Request> make_request(const std::string& id, std::vector<int32_t> prompt,
                                      int max_tokens = 8, const std::string& salt = "") {
  return cadence_test::make_sequence(id, std::move(prompt), max_tokens, salt);
}

// Runs steps until the request has sampled a token; returns the first step's schedule entry.
ScheduledRequest run_prefill(Scheduler& scheduler, const std::string& id) {
  ScheduledRequest first{};
  for (int step = 0; step < 64; ++step) {
    SchedulerOutput out = scheduler.schedule();
    for (const auto& item : out.scheduled) {
      if (item.request->id == id && first.request == nullptr) first = item;
    }
    complete_step(scheduler, out);
    scheduler.check_invariants();
    Request* request = scheduler.find(id);
    if (request != nullptr && !request->output_token_ids.empty()) break;
  }
  return first;
}

// A one-token request on `prompt`, run until it has computed the prompt, then finished: its
// full blocks stay cached.
void compute_and_finish(Scheduler& scheduler, const std::string& id, std::vector<int32_t> prompt,
                        const std::string& salt = "") {
  scheduler.add_request(make_request(id, std::move(prompt), 1, salt));
  run_prefill(scheduler, id);
  scheduler.finish_request(scheduler.find(id));
}

}  // namespace

TEST(sha256_matches_the_fips_test_vectors) {
  CHECK(hex(sha256("", 0)) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(hex(sha256("abc", 3)) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  CHECK(hex(sha256(two_blocks.data(), two_blocks.size())) ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  // One million 'a', fed in uneven pieces: buffering across update() calls.
  Sha256 hasher;
  const std::string piece(997, 'a');
  size_t fed = 0;
  while (fed < 1000000) {
    const size_t n = std::min<size_t>(piece.size() - (fed % 7), 1000000 - fed);
    hasher.update(piece.data(), n);
    fed += n;
  }
  CHECK(hex(hasher.finish()) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(block_hashes_chain_over_parent_tokens_and_salt) {
  const BlockHash a = hash_of_tokens({1, 2, 3, 4});
  CHECK(a == hash_of_tokens({1, 2, 3, 4}));
  CHECK(a != hash_of_tokens({1, 2, 3, 5}));
  CHECK(a != hash_of_tokens({4, 3, 2, 1}));
  CHECK(a != hash_of_tokens({1, 2, 3, 4}, nullptr, "tenant"));
  CHECK(hash_of_tokens({1, 2, 3, 4}, nullptr, "x") != hash_of_tokens({1, 2, 3, 4}, nullptr, "y"));
  // The same tokens after different parents are different blocks.
  const BlockHash b = hash_of_tokens({9, 9, 9, 9});
  CHECK(hash_of_tokens({5, 6, 7, 8}, &a) != hash_of_tokens({5, 6, 7, 8}, &b));
  CHECK(hash_of_tokens({5, 6, 7, 8}, &a) != hash_of_tokens({5, 6, 7, 8}));
  // Token ids are full 32-bit values: 256 and 1 differ in a byte other than the lowest.
  CHECK(hash_of_tokens({256}) != hash_of_tokens({1}));
}

TEST(released_hashed_blocks_stay_cached_and_count_as_allocatable) {
  BlockPool pool(4);
  std::vector<int32_t> blocks;
  pool.allocate(2, blocks);
  const BlockHash h0 = hash_of_tokens({1}), h1 = hash_of_tokens({2});
  CHECK(pool.set_hash(blocks[0], h0));
  CHECK(!pool.set_hash(blocks[0], h1));  // already hashed
  CHECK(!pool.set_hash(blocks[1], h0));  // another block holds h0
  CHECK(pool.find(h0) == blocks[0]);
  CHECK(pool.find(h1) == -1);
  pool.release(blocks);
  CHECK(pool.num_cached_blocks() == 1);  // blocks[1] had no hash: plain free
  CHECK(pool.num_free_blocks() == 4);
  CHECK(pool.num_used_blocks() == 0);
  CHECK(pool.find(h0) == blocks[0]);
  pool.check_invariants();
  pool.add_ref(blocks[0]);  // a hit: cached -> used
  CHECK(pool.num_cached_blocks() == 0 && pool.ref_count(blocks[0]) == 1);
  pool.check_invariants();
  CHECK_THROWS(pool.add_ref(blocks[1]));  // free blocks take no references
  pool.release(blocks[0]);
  CHECK(pool.drop_cached_blocks() == 1);
  CHECK(pool.find(h0) == -1 && pool.num_cached_blocks() == 0 && pool.num_free_blocks() == 4);
  pool.check_invariants();
}

TEST(free_blocks_go_before_cached_ones_and_eviction_is_least_recent_first) {
  BlockPool pool(4);
  std::vector<int32_t> blocks;
  pool.allocate(3, blocks);
  for (int i = 0; i < 3; ++i) CHECK(pool.set_hash(blocks[i], hash_of_tokens({i})));
  // Released leaf first, as a sequence releases its table: blocks[2], [1], then [0].
  pool.release(blocks[2]);
  pool.release(blocks[1]);
  pool.release(blocks[0]);
  std::vector<int32_t> fresh;
  pool.allocate(1, fresh);  // the never-hashed block 3 first
  CHECK(fresh[0] == 3);
  CHECK(pool.num_evictions() == 0 && pool.num_cached_blocks() == 3);
  pool.allocate(2, fresh);  // then the oldest cached: the leaf, then its parent
  CHECK(fresh[1] == blocks[2] && fresh[2] == blocks[1]);
  CHECK(pool.num_evictions() == 2);
  CHECK(pool.find(hash_of_tokens({2})) == -1 && pool.find(hash_of_tokens({1})) == -1);
  CHECK(pool.find(hash_of_tokens({0})) == blocks[0]);
  CHECK(!pool.is_hashed(fresh[1]));
  pool.check_invariants();
}

TEST(hash_index_survives_many_inserts_and_evictions) {
  // A small pool cycled through many hashes: the open-addressing index's deletions
  // (backward shift) must keep every remaining hash findable.
  BlockPool pool(8);
  std::mt19937 rng(7);
  std::vector<int32_t> held;
  int next = 0;
  for (int round = 0; round < 2000; ++round) {
    if (held.size() < 8 && (rng() % 3 != 0)) {
      std::vector<int32_t> got;
      pool.allocate(1, got);
      pool.set_hash(got[0], hash_of_tokens({next++}));
      held.push_back(got[0]);
    } else if (!held.empty()) {
      const size_t i = rng() % held.size();
      pool.release(held[i]);
      held.erase(held.begin() + static_cast<int64_t>(i));
    }
    if (round % 97 == 0) pool.check_invariants();
  }
  pool.check_invariants();
}

TEST(a_second_request_reuses_the_full_blocks_of_the_first) {
  BlockPool pool(16);
  Scheduler scheduler({8, 64, 4}, pool);
  compute_and_finish(scheduler, "a", iota_tokens(100, 10));
  CHECK(pool.num_used_blocks() == 0);
  CHECK(pool.num_cached_blocks() == 2);  // tokens 0..7; the partial third block is not cached

  std::vector<int32_t> longer = iota_tokens(100, 10);
  longer.push_back(7);
  scheduler.add_request(make_request("b", longer));
  const ScheduledRequest first = run_prefill(scheduler, "b");
  CHECK(first.request != nullptr);
  CHECK(first.num_new_tokens == 3);  // 11 tokens, 8 of them cached
  Request* b = scheduler.find("b");
  CHECK(b->num_cached_tokens == 8);
  CHECK(scheduler.prefix_cache_stats().num_hit_tokens == 8);
  CHECK(scheduler.prefix_cache_stats().num_queried_tokens == 10 + 11);
  scheduler.check_invariants();
}

TEST(a_fully_cached_prompt_still_computes_its_last_token) {
  BlockPool pool(16);
  Scheduler scheduler({8, 64, 4}, pool);
  compute_and_finish(scheduler, "a", iota_tokens(0, 8));
  scheduler.add_request(make_request("b", iota_tokens(0, 8)));
  const ScheduledRequest first = run_prefill(scheduler, "b");
  // Both blocks are cached, but the last token's logits are needed: the hit is one block.
  CHECK(first.num_new_tokens == 4 && first.samples_token);
  CHECK(scheduler.find("b")->num_cached_tokens == 4);
}

TEST(different_salts_never_share_blocks) {
  BlockPool pool(16);
  Scheduler scheduler({8, 64, 4}, pool);
  compute_and_finish(scheduler, "a", iota_tokens(0, 9), "tenant-a");
  scheduler.add_request(make_request("b", iota_tokens(0, 9), 8, "tenant-b"));
  scheduler.add_request(make_request("c", iota_tokens(0, 9), 8));
  run_prefill(scheduler, "b");
  run_prefill(scheduler, "c");
  CHECK(scheduler.find("b")->num_cached_tokens == 0);
  CHECK(scheduler.find("c")->num_cached_tokens == 0);
  scheduler.add_request(make_request("d", iota_tokens(0, 9), 8, "tenant-a"));
  run_prefill(scheduler, "d");
  CHECK(scheduler.find("d")->num_cached_tokens == 8);
  scheduler.check_invariants();
}

TEST(a_running_request_shares_its_computed_blocks) {
  BlockPool pool(16);
  Scheduler scheduler({8, 64, 4}, pool);
  scheduler.add_request(make_request("a", iota_tokens(0, 9), 32));
  run_prefill(scheduler, "a");
  scheduler.add_request(make_request("b", iota_tokens(0, 9), 32));
  run_prefill(scheduler, "b");
  const Request* a = scheduler.find("a");
  const Request* b = scheduler.find("b");
  CHECK(b->num_cached_tokens == 8);
  CHECK(a->blocks.table[0] == b->blocks.table[0] && a->blocks.table[1] == b->blocks.table[1]);
  CHECK(pool.ref_count(a->blocks.table[0]) == 2);
  CHECK(a->blocks.table[2] != b->blocks.table[2]);  // the partial blocks are private
  scheduler.abort_request("a");
  CHECK(pool.ref_count(b->blocks.table[0]) == 1);
  scheduler.check_invariants();
}

TEST(generated_tokens_fill_cacheable_blocks_too) {
  BlockPool pool(16);
  Scheduler scheduler({8, 64, 4}, pool);
  scheduler.add_request(make_request("a", iota_tokens(0, 6), 16));
  for (int step = 0; step < 4; ++step) complete_step(scheduler, scheduler.schedule(), 50 + step);
  // 6 prompt + 4 generated tokens, 9 computed: blocks 0 and 1 are full.
  Request* a = scheduler.find("a");
  CHECK(a->num_computed_tokens == 9);
  CHECK(pool.is_hashed(a->blocks.table[1]));
  std::vector<int32_t> next_turn = a->prompt_token_ids;
  next_turn.insert(next_turn.end(), a->output_token_ids.begin(), a->output_token_ids.end());
  next_turn.push_back(3);
  scheduler.finish_request(a);
  scheduler.add_request(make_request("b", next_turn));
  run_prefill(scheduler, "b");
  CHECK(scheduler.find("b")->num_cached_tokens == 8);
}

TEST(prompt_logprobs_requests_compute_every_position_but_fill_the_cache) {
  BlockPool pool(16);
  Scheduler scheduler({8, 64, 4}, pool);
  compute_and_finish(scheduler, "a", iota_tokens(0, 9));
  auto wants = make_request("b", iota_tokens(0, 9));
  wants->params.prompt_logprobs = 1;
  scheduler.add_request(std::move(wants));
  const ScheduledRequest first = run_prefill(scheduler, "b");
  CHECK(first.num_new_tokens == 9);
  CHECK(scheduler.find("b")->num_cached_tokens == 0);
  scheduler.check_invariants();
}

TEST(preempted_request_recomputes_from_its_own_cached_blocks) {
  BlockPool pool(4);
  Scheduler scheduler({8, 1000, 4}, pool);
  scheduler.add_request(make_request("old", iota_tokens(0, 8), 100));
  scheduler.add_request(make_request("new", iota_tokens(500, 8), 100));
  complete_step(scheduler, scheduler.schedule());
  SchedulerOutput out = scheduler.schedule();  // both need a third block: "new" is preempted
  CHECK(out.num_preempted == 1 && scheduler.num_waiting() == 1);
  complete_step(scheduler, out);
  scheduler.check_invariants();
  scheduler.abort_request("old");
  // "new"'s blocks were released leaf first: "old"'s third block evicted its second block,
  // so its first block (tokens 0..3) is still cached.
  out = scheduler.schedule();
  CHECK(out.scheduled.size() == 1 && out.scheduled[0].request->id == "new");
  CHECK(out.scheduled[0].num_new_tokens == 5);  // 8 prompt + 1 generated, 4 of them cached
  CHECK(out.scheduled[0].request->num_cached_tokens == 0);  // reported as first admitted
  scheduler.check_invariants();
}

TEST(forked_siblings_share_cached_prefix_blocks) {
  BlockPool pool(32);
  Scheduler scheduler({8, 64, 4}, pool);
  compute_and_finish(scheduler, "warm", iota_tokens(0, 10));
  RequestGroup* group = cadence_test::add_group(scheduler, "n", 2, iota_tokens(0, 10));
  Request* leader_ptr = group->sequences[0].get();
  SchedulerOutput out = scheduler.schedule();
  CHECK(out.scheduled.size() == 1 && out.scheduled[0].num_new_tokens == 2);
  scheduler.on_step_done(out);
  const std::vector<Request*> forked = scheduler.fork("n");
  CHECK(forked.size() == 1 && forked[0]->num_cached_tokens == 8);
  CHECK(pool.ref_count(leader_ptr->blocks.table[0]) == 2);
  scheduler.check_invariants();
  scheduler.abort_request("n");
  CHECK(pool.num_used_blocks() == 0);
  CHECK(pool.num_cached_blocks() == 2);
  scheduler.check_invariants();
}

TEST(prefix_caching_off_never_caches) {
  BlockPool pool(16);
  Scheduler scheduler({8, 64, 4, 0, false}, pool);
  compute_and_finish(scheduler, "a", iota_tokens(0, 9));
  CHECK(pool.num_cached_blocks() == 0);
  scheduler.add_request(make_request("b", iota_tokens(0, 9)));
  CHECK(run_prefill(scheduler, "b").num_new_tokens == 9);
  CHECK(scheduler.prefix_cache_stats().num_queried_tokens == 0);
}

TEST(reset_forgets_cached_prefixes) {
  BlockPool pool(16);
  Scheduler scheduler({8, 64, 4}, pool);
  scheduler.add_request(make_request("a", iota_tokens(0, 9), 1));
  run_prefill(scheduler, "a");
  scheduler.add_request(make_request("running", iota_tokens(900, 9), 32));
  run_prefill(scheduler, "running");
  scheduler.finish_request(scheduler.find("a"));
  CHECK(scheduler.reset_prefix_cache() == 2);
  CHECK(pool.num_cached_blocks() == 0);
  scheduler.check_invariants();
  scheduler.add_request(make_request("b", iota_tokens(0, 9)));
  CHECK(run_prefill(scheduler, "b").num_new_tokens == 9);
  scheduler.abort_request("running");  // its blocks were unhashed: freed, not cached
  CHECK(pool.num_cached_blocks() == 0);
  scheduler.finish_request(scheduler.find("b"));
  CHECK(pool.num_cached_blocks() == 2);  // b's own blocks, hashed as b computed them
  scheduler.check_invariants();
}

TEST(random_workload_keeps_cache_invariants) {
  // Prompts drawn from a few shared prefixes with random tails, some salted, some asking for
  // prompt logprobs, n up to 3, under a pool small enough to preempt and evict; random aborts
  // and finishes. The invariants (ref counts = holders, hash index <-> blocks, eviction list,
  // hashed blocks match each holder's chain) are checked after every operation.
  std::mt19937 rng(20261208);
  for (int trial = 0; trial < 8; ++trial) {
    BlockPool pool(24);
    Scheduler scheduler({6, 24, 4}, pool);
    std::vector<std::string> live;
    int next_id = 0;
    for (int op = 0; op < 400; ++op) {
      const unsigned choice = rng() % 10;
      if (choice < 3 && live.size() < 10) {
        const std::string id = "r" + std::to_string(next_id++);
        std::vector<int32_t> prompt =
            iota_tokens(static_cast<int32_t>(rng() % 3) * 100, static_cast<int>(rng() % 14));
        const int num_tail = 1 + static_cast<int>(rng() % 6);
        for (int i = 0; i < num_tail; ++i) prompt.push_back(1000 + static_cast<int32_t>(rng() % 4));
        const int n = 1 + static_cast<int>(rng() % 3);
        const std::string salt = rng() % 4 == 0 ? "s" : "";
        const bool prompt_logprobs = rng() % 6 == 0;
        auto group = std::make_unique<RequestGroup>();
        group->id = id;
        const int max_tokens = 1 + static_cast<int>(rng() % 12);
        for (int s = 0; s < n; ++s) {
          auto request = make_request(id, prompt, max_tokens, salt);
          request->sequence_index = s;
          if (prompt_logprobs) request->params.prompt_logprobs = 0;
          group->sequences.push_back(std::move(request));
        }
        scheduler.add_group(std::move(group));
        live.push_back(id);
      } else if (choice < 4 && !live.empty()) {
        const size_t i = rng() % live.size();
        scheduler.abort_request(live[i]);
        live.erase(live.begin() + static_cast<int64_t>(i));
      } else {
        SchedulerOutput out = scheduler.schedule();
        scheduler.on_step_done(out);
        std::vector<Request*> done;
        for (const auto& item : out.scheduled) {
          if (!item.samples_token) continue;
          std::vector<Request*> sequences = {item.request};
          if (item.request->sequence_index == 0 && item.request->group->has_parked()) {
            for (Request* sibling : scheduler.fork(item.request->id)) sequences.push_back(sibling);
          }
          for (Request* sequence : sequences) {
            sequence->append_output(static_cast<int32_t>(2000 + rng() % 3));
            if (static_cast<int64_t>(sequence->output_token_ids.size()) >=
                sequence->params.max_tokens) {
              done.push_back(sequence);
            }
          }
        }
        for (Request* request : done) scheduler.finish_request(request);
      }
      scheduler.check_invariants();
    }
    for (const std::string& id : live) scheduler.abort_request(id);
    scheduler.check_invariants();
    CHECK(pool.num_used_blocks() == 0);
    CHECK(pool.num_free_blocks() == 24);
    CHECK(scheduler.prefix_cache_stats().num_hit_tokens > 0);
  }
}

TEST_MAIN()
