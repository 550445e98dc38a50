// Scheduler: token budget, mixing prefill chunks with decode, admission limits,
// preemption by recompute of the newest request, aborts, and invariants throughout.
#include <functional>
#include <memory>
#include <string>

#include "sched/scheduler.h"
#include "scheduler_test_util.h"
#include "test_harness.h"

using namespace cadence;

namespace {

using cadence_test::complete_step;

// Distinct prompt tokens per request, so no two requests share a cached prefix
// (test_prefix_cache.cc covers sharing).
std::unique_ptr<Request> make_request(const std::string& id, int num_prompt_tokens,
                                      int max_tokens = 8) {
  const auto base = static_cast<int32_t>(std::hash<std::string>()(id) % 1000) * 1000;
  return cadence_test::make_sequence(id, cadence_test::iota_tokens(base, num_prompt_tokens),
                                     max_tokens);
}

}  // namespace

TEST(prefill_then_decode) {
  BlockPool pool(16);
  Scheduler scheduler({8, 64, 4}, pool);
  scheduler.add_request(make_request("a", 10));
  SchedulerOutput out = scheduler.schedule();
  CHECK(out.scheduled.size() == 1);
  CHECK(out.scheduled[0].num_new_tokens == 10);
  CHECK(out.scheduled[0].samples_token);
  CHECK(pool.num_used_blocks() == 3);  // ceil(10 / 4)
  complete_step(scheduler, out);
  scheduler.check_invariants();

  out = scheduler.schedule();
  CHECK(out.scheduled.size() == 1);
  CHECK(out.scheduled[0].num_new_tokens == 1);  // decode
  CHECK(pool.num_used_blocks() == 3);           // token 10 still fits block 2
  complete_step(scheduler, out);
  out = scheduler.schedule();
  CHECK(pool.num_used_blocks() == 3);
  complete_step(scheduler, out);
  out = scheduler.schedule();  // token 12 needs a 4th block
  CHECK(pool.num_used_blocks() == 4);
  scheduler.check_invariants();
}

TEST(budget_chunks_prefill_and_mixes_with_decode) {
  BlockPool pool(64);
  Scheduler scheduler({8, 16, 4}, pool);
  scheduler.add_request(make_request("a", 5));
  SchedulerOutput out = scheduler.schedule();
  complete_step(scheduler, out);  // "a" is decoding now
  scheduler.add_request(make_request("b", 40));
  out = scheduler.schedule();
  CHECK(out.scheduled.size() == 2);
  CHECK(out.scheduled[0].request->id == "a");
  CHECK(out.scheduled[0].num_new_tokens == 1);
  CHECK(out.scheduled[1].request->id == "b");
  CHECK(out.scheduled[1].num_new_tokens == 15);  // the rest of the budget
  CHECK(!out.scheduled[1].samples_token);        // mid-prompt chunk: no sample
  CHECK(out.num_batched_tokens == 16);
  complete_step(scheduler, out);
  out = scheduler.schedule();
  CHECK(out.scheduled[1].num_new_tokens == 15);
  complete_step(scheduler, out);
  out = scheduler.schedule();
  CHECK(out.scheduled[1].num_new_tokens == 10);
  CHECK(out.scheduled[1].samples_token);
  scheduler.check_invariants();
}

TEST(max_num_seqs_limits_admission) {
  BlockPool pool(64);
  Scheduler scheduler({2, 1000, 4}, pool);
  for (const char* id : {"a", "b", "c"}) scheduler.add_request(make_request(id, 3));
  SchedulerOutput out = scheduler.schedule();
  CHECK(out.scheduled.size() == 2);
  CHECK(scheduler.num_running() == 2);
  CHECK(scheduler.num_waiting() == 1);
  scheduler.check_invariants();
}

TEST(admission_waits_for_blocks_without_preempting) {
  BlockPool pool(4);
  Scheduler scheduler({8, 1000, 4}, pool);
  scheduler.add_request(make_request("a", 12));  // 3 blocks
  scheduler.add_request(make_request("b", 8));   // 2 blocks: does not fit
  SchedulerOutput out = scheduler.schedule();
  CHECK(out.scheduled.size() == 1);
  CHECK(out.num_preempted == 0);
  CHECK(scheduler.num_waiting() == 1);
  scheduler.check_invariants();
}

TEST(newest_running_request_is_preempted_by_recompute) {
  BlockPool pool(4);
  // Prefix caching off: the recompute starts from nothing (test_prefix_cache.cc has the
  // recompute that finds its own blocks cached).
  Scheduler scheduler({8, 1000, 4, 0, false}, pool);
  scheduler.add_request(make_request("old", 8, 100));  // 2 blocks
  scheduler.add_request(make_request("new", 8, 100));  // 2 blocks
  SchedulerOutput out = scheduler.schedule();
  CHECK(out.scheduled.size() == 2);
  CHECK(pool.num_free_blocks() == 0);
  complete_step(scheduler, out);  // both now hold 9 tokens: each needs a 3rd block
  out = scheduler.schedule();
  CHECK(out.num_preempted == 1);
  CHECK(out.scheduled.size() == 1);
  CHECK(out.scheduled[0].request->id == "old");
  CHECK(scheduler.num_waiting() == 1);
  scheduler.check_invariants();
  complete_step(scheduler, out);
  // The preempted request lost its progress and will recompute prompt + outputs.
  scheduler.abort_request("old");
  out = scheduler.schedule();
  CHECK(out.scheduled.size() == 1);
  CHECK(out.scheduled[0].request->id == "new");
  CHECK(out.scheduled[0].num_new_tokens == 9);  // 8 prompt + 1 generated
  CHECK(out.scheduled[0].samples_token);
  scheduler.check_invariants();
}

TEST(request_preempts_itself_when_it_is_the_newest) {
  BlockPool pool(3);
  Scheduler scheduler({8, 1000, 4}, pool);
  scheduler.add_request(make_request("a", 4, 100));  // 1 block
  scheduler.add_request(make_request("b", 8, 100));  // 2 blocks
  SchedulerOutput out = scheduler.schedule();
  complete_step(scheduler, out);
  // "a" needs a 2nd block: "b" (newest) is preempted; then "b" stays waiting.
  out = scheduler.schedule();
  CHECK(out.num_preempted == 1);
  CHECK(out.scheduled.size() == 1);
  CHECK(out.scheduled[0].request->id == "a");
  scheduler.check_invariants();
}

TEST(abort_frees_blocks_and_forgets_request) {
  BlockPool pool(8);
  Scheduler scheduler({8, 1000, 4}, pool);
  scheduler.add_request(make_request("a", 10));
  scheduler.add_request(make_request("b", 3));
  scheduler.schedule();
  CHECK(pool.num_free_blocks() == 4);
  CHECK(scheduler.abort_request("a"));
  CHECK(!scheduler.abort_request("a"));
  CHECK(!scheduler.contains("a"));
  CHECK(pool.num_free_blocks() == 7);
  scheduler.check_invariants();
  CHECK(scheduler.abort_request("b"));
  CHECK(pool.num_free_blocks() == 8);
  CHECK(!scheduler.has_unfinished());
}

TEST(many_requests_under_memory_pressure_keep_invariants) {
  BlockPool pool(10);
  Scheduler scheduler({6, 24, 4}, pool);
  int num_finished = 0;
  for (int i = 0; i < 12; ++i)
    scheduler.add_request(make_request("r" + std::to_string(i), 3 + i % 7, 9));
  for (int step = 0; step < 2000 && scheduler.has_unfinished(); ++step) {
    SchedulerOutput out = scheduler.schedule();
    CHECK(out.num_batched_tokens <= 24);
    CHECK(!out.empty());
    complete_step(scheduler, out);
    for (const auto& item : out.scheduled) {
      if (item.samples_token && item.request->output_token_ids.size() >= 9) {
        scheduler.finish_request(item.request);
        ++num_finished;
      }
    }
    scheduler.check_invariants();
  }
  CHECK(num_finished == 12);
  CHECK(pool.num_free_blocks() == 10);
  CHECK(scheduler.num_preemptions() > 0);
}

TEST(siblings_share_prompt_blocks_and_copy_the_partial_one_on_write) {
  BlockPool pool(16);
  Scheduler scheduler({8, 1000, 4}, pool);
  // 10 prompt tokens: blocks 0, 1 full, 2 partial.
  RequestGroup* group =
      cadence_test::add_group(scheduler, "r", 3, cadence_test::iota_tokens(0, 10), 5);
  Request* leader_ptr = group->sequences[0].get();
  scheduler.check_invariants();

  SchedulerOutput out = scheduler.schedule();
  CHECK(out.scheduled.size() == 1);  // only the leader computes the prompt
  scheduler.on_step_done(out);
  const std::vector<Request*> forked = scheduler.fork("r");
  CHECK(forked.size() == 2);
  for (Request* sequence : forked) CHECK(sequence->blocks.table == leader_ptr->blocks.table);
  CHECK(pool.num_used_blocks() == 3);  // shared, not copied
  for (int32_t block : leader_ptr->blocks.table) CHECK(pool.ref_count(block) == 3);
  scheduler.check_invariants();

  leader_ptr->append_output(1);
  for (Request* sequence : forked) sequence->append_output(1);
  out = scheduler.schedule();  // each writes position 10, inside the shared block 2
  CHECK(out.scheduled.size() == 3);
  CHECK(out.block_copies.size() == 2);  // the last writer keeps the original block
  CHECK(pool.num_used_blocks() == 5);
  CHECK(pool.ref_count(leader_ptr->blocks.table[0]) == 3);
  scheduler.check_invariants();

  CHECK(scheduler.abort_sequence("r", 1));  // one sibling stops; the others go on
  CHECK(!scheduler.abort_sequence("r", 1));
  CHECK(scheduler.num_running() == 2);
  scheduler.check_invariants();
  CHECK(scheduler.abort_request("r"));
  CHECK(pool.num_free_blocks() == 16);
  CHECK(!scheduler.has_unfinished());
}

TEST(sliding_window_frees_blocks_outside_it) {
  // Window 6, blocks of 4: the next token at position n sees keys from n - 5, so a block is
  // released once all its 4 tokens lie before that.
  BlockPool pool(16);
  Scheduler scheduler({8, 64, 4, 6}, pool);
  scheduler.add_request(make_request("a", 10, 20));
  Request* a = scheduler.find("a");
  for (int step = 0; step < 12; ++step) {
    SchedulerOutput out = scheduler.schedule();
    CHECK(out.scheduled.size() == 1);
    complete_step(scheduler, out);
    scheduler.check_invariants();
    const int64_t n = a->num_computed_tokens;
    const int64_t first_key = n - 6 + 1;
    int64_t num_freed = 0;
    for (size_t b = 0; b < a->blocks.table.size(); ++b) {
      const bool outside = static_cast<int64_t>(b + 1) * 4 <= first_key;
      CHECK((a->blocks.table[b] == kFreedBlock) == outside);
      num_freed += outside;
    }
    CHECK(pool.num_used_blocks() == static_cast<int64_t>(a->blocks.table.size()) - num_freed);
    CHECK(pool.num_used_blocks() <= 3);  // ceil((6 + 4) / 4)
  }
  CHECK(a->num_computed_tokens == 21);  // prompt 10 + 11 decode steps
  // A newcomer reuses the freed blocks; finishing releases only the live ones.
  scheduler.add_request(make_request("b", 20));
  SchedulerOutput out = scheduler.schedule();
  CHECK(out.scheduled.size() == 2);
  complete_step(scheduler, out);
  scheduler.check_invariants();
  scheduler.finish_request(a);
  scheduler.check_invariants();
  scheduler.abort_request("b");
  scheduler.check_invariants();
  CHECK(pool.num_used_blocks() == 0);
}

TEST(sliding_window_preemption_releases_live_blocks_only) {
  // 5 blocks of 4, window 8: each request keeps up to 3 live blocks, so two cannot both grow.
  // "a" (newest, with freed entries by then) is preempted when "b" needs a block.
  BlockPool pool(5);
  Scheduler scheduler({8, 64, 4, 8}, pool);
  scheduler.add_request(make_request("b", 4, 30));
  scheduler.add_request(make_request("a", 13, 30));
  Request* a = scheduler.find("a");
  bool saw_freed_entry = false;
  for (int step = 0; step < 12 && scheduler.num_preemptions() == 0; ++step) {
    for (int32_t block : a->blocks.table) saw_freed_entry |= block == kFreedBlock;
    SchedulerOutput out = scheduler.schedule();
    complete_step(scheduler, out);
    scheduler.check_invariants();
  }
  CHECK(saw_freed_entry);
  CHECK(scheduler.num_preemptions() == 1);
  CHECK(a->blocks.table.empty() && a->num_computed_tokens == 0);
  const Request* b = scheduler.find("b");
  int64_t b_live = 0;
  for (int32_t block : b->blocks.table) b_live += block != kFreedBlock;
  CHECK(pool.num_used_blocks() == b_live);
  scheduler.abort_request("a");
  scheduler.abort_request("b");
  scheduler.check_invariants();
  CHECK(pool.num_used_blocks() == 0);
}

TEST_MAIN()
