// Beam search: the selection rule (sample/beam_search.h) on hand-made distributions, and
// the scheduler side (beams as one unit, block sharing, restart on preemption).
#include <cmath>
#include <memory>
#include <vector>

#include "sample/beam_search.h"
#include "sched/scheduler.h"
#include "scheduler_test_util.h"
#include "test_harness.h"

using namespace cadence;

namespace {

constexpr int64_t kVocab = 6;
constexpr int32_t kEos = 5;

// Logits whose log-softmax is exactly log(probs) (probs sum to 1).
std::vector<float> logits_for(const std::vector<double>& probs) {
  std::vector<float> logits;
  for (double p : probs) logits.push_back(static_cast<float>(std::log(p)));
  return logits;
}

// Feeds every live beam the distribution `next(slot)` and runs one selection.
template <typename Next>
BeamSearch::Step feed_and_select(BeamSearch& search, Next next) {
  for (int32_t slot = 0; slot < search.beam_width(); ++slot) {
    if (!search.is_live(slot)) continue;
    CHECK(!search.ready());
    const std::vector<float> logits = next(slot);
    search.set_logits(slot, logits.data(), kVocab);
  }
  CHECK(search.ready());
  return search.select();
}

BeamSearchParams params(int32_t width, int32_t max_tokens, float length_penalty = 1.0f) {
  BeamSearchParams p;
  p.beam_width = width;
  p.max_tokens = max_tokens;
  p.length_penalty = length_penalty;
  return p;
}

}  // namespace

TEST(width_one_follows_the_argmax) {
  BeamSearch search(params(1, 3), {kEos});
  const auto flat = [](int32_t) { return logits_for({0.1, 0.5, 0.2, 0.1, 0.05, 0.05}); };
  for (int i = 0; i < 2; ++i) {
    const BeamSearch::Step step = feed_and_select(search, flat);
    CHECK(!step.done);
    CHECK(step.parent[0] == 0 && step.token[0] == 1);
  }
  CHECK(feed_and_select(search, flat).done);
  CHECK(search.results().size() == 1);
  CHECK(search.results()[0].token_ids == std::vector<int32_t>({1, 1, 1}));
  CHECK(search.results()[0].finish_reason == FinishReason::kLength);
  CHECK(std::abs(search.results()[0].cum_logprob - 3 * std::log(0.5)) < 1e-5);
}

TEST(first_selection_fans_out_from_the_prompt_and_children_keep_their_parents_slot) {
  BeamSearch search(params(3, 4), {kEos});
  // From the prompt: tokens 2 > 0 > 3 are the three best.
  BeamSearch::Step step = feed_and_select(
      search, [](int32_t) { return logits_for({0.3, 0.05, 0.4, 0.2, 0.04, 0.01}); });
  CHECK(step.parent == std::vector<int32_t>({0, 0, 0}));
  CHECK(step.token == std::vector<int32_t>({2, 0, 3}));
  // Next: slot 1 (prob 0.3) is very sure of token 4, the others are flat, so the best three
  // are slot 1's token 4, slot 0's token 0 (0.4 * 0.3) and slot 0's token 1: slot 2 has no
  // kept child and takes slot 0's second child.
  step = feed_and_select(search, [](int32_t slot) {
    if (slot == 1) return logits_for({0.01, 0.01, 0.01, 0.01, 0.95, 0.01});
    return logits_for({0.3, 0.29, 0.1, 0.1, 0.1, 0.11});
  });
  CHECK(step.parent == std::vector<int32_t>({0, 1, 0}));
  CHECK(step.token == std::vector<int32_t>({0, 4, 1}));
  CHECK(!step.done);
}

TEST(eos_candidates_finish_and_search_stops_when_no_live_beam_can_win) {
  // length_penalty 0: score = cum_logprob. EOS at 0.6 from the prompt finishes a
  // hypothesis with score log 0.6; the live beams are below it and can only fall.
  BeamSearch search(params(2, 10, 0.0f), {kEos});
  BeamSearch::Step step = feed_and_select(
      search, [](int32_t) { return logits_for({0.2, 0.1, 0.05, 0.03, 0.02, 0.6}); });
  CHECK(!step.done);  // only one finished hypothesis of two
  CHECK(step.token == std::vector<int32_t>({0, 1}));
  CHECK(search.results().size() == 1);
  CHECK(search.results()[0].token_ids == std::vector<int32_t>({kEos}));
  CHECK(search.results()[0].finish_reason == FinishReason::kStop);
  // Both live beams end now: the better (0.2 * 0.9) is the second hypothesis; the set is
  // full and the best live beam (0.2 * 0.1) cannot beat log(0.18).
  step =
      feed_and_select(search, [](int32_t) { return logits_for({0.1, 0.0, 0.0, 0.0, 0.0, 0.9}); });
  CHECK(step.done);
  CHECK(search.results().size() == 2);
  CHECK(search.results()[0].token_ids == std::vector<int32_t>({kEos}));
  CHECK(search.results()[1].token_ids == std::vector<int32_t>({0, kEos}));
  CHECK(std::abs(search.results()[1].score - std::log(0.18)) < 1e-5);
}

TEST(length_penalty_prefers_longer_hypotheses_and_keeps_searching_while_they_can_win) {
  // With length_penalty 1 a short EOS hypothesis (log 0.5 / 1) loses to a longer one whose
  // per-token log-probability is higher, so the search must not stop early.
  BeamSearch search(params(1, 3, 1.0f), {kEos});
  BeamSearch::Step step =
      feed_and_select(search, [](int32_t) { return logits_for({0.45, 0.0, 0.0, 0.0, 0.05, 0.5}); });
  CHECK(!step.done);  // log(0.45) / 3 (reachable) > log(0.5) / 1
  step =
      feed_and_select(search, [](int32_t) { return logits_for({0.99, 0.0, 0.0, 0.0, 0.0, 0.01}); });
  CHECK(!step.done);
  step =
      feed_and_select(search, [](int32_t) { return logits_for({0.99, 0.0, 0.0, 0.0, 0.0, 0.01}); });
  CHECK(step.done);
  CHECK(search.results()[0].token_ids == std::vector<int32_t>({0, 0, 0}));
  CHECK(search.results()[0].finish_reason == FinishReason::kLength);
}

TEST(ignore_eos_makes_eos_an_ordinary_token) {
  BeamSearchParams p = params(1, 2);
  p.ignore_eos = true;
  BeamSearch search(p, {kEos});
  const auto eos_likely = [](int32_t) { return logits_for({0.1, 0.1, 0.1, 0.1, 0.1, 0.5}); };
  CHECK(!feed_and_select(search, eos_likely).done);
  CHECK(feed_and_select(search, eos_likely).done);
  CHECK(search.results()[0].token_ids == std::vector<int32_t>({kEos, kEos}));
}

TEST(restart_returns_to_the_prompt) {
  BeamSearch search(params(2, 4), {kEos});
  feed_and_select(search, [](int32_t) { return logits_for({0.2, 0.1, 0.05, 0.03, 0.02, 0.6}); });
  CHECK(search.is_live(1));
  search.restart();
  CHECK(search.is_live(0) && !search.is_live(1));
  CHECK(search.results().empty());
  CHECK(!search.ready());
}

namespace {

// The scheduler side of a beam request: `width` slots, 1.. parked behind slot 0.
void add_beam_request(Scheduler& scheduler, const std::string& id, int32_t width,
                      int num_prompt_tokens) {
  cadence_test::add_group(scheduler, id, width, std::vector<int32_t>(num_prompt_tokens, 3), 64,
                          /*is_beam_search=*/true);
}

// After a step of the engine: every scheduled slot has computed its tokens.
void move_and_append(Scheduler& scheduler, const std::string& id,
                     const std::vector<int32_t>& parent) {
  scheduler.continue_sequences(id, parent);
  for (size_t s = 0; s < parent.size(); ++s) {
    scheduler.find(sequence_key(id, static_cast<int32_t>(s)))->append_output(9);
  }
}

}  // namespace

TEST(beams_share_blocks_move_together_and_copy_on_write) {
  BlockPool pool(32);
  Scheduler scheduler({8, 64, 4}, pool);
  add_beam_request(scheduler, "b", 3, 10);  // 10 tokens: 2 full blocks + a partial one
  SchedulerOutput out = scheduler.schedule();
  CHECK(out.scheduled.size() == 1);  // only slot 0 computes the prompt
  scheduler.on_step_done(out);
  move_and_append(scheduler, "b", {0, 0, 0});  // every beam continues the prompt
  scheduler.check_invariants();
  CHECK(pool.num_used_blocks() == 3);  // all three blocks shared by three slots

  out = scheduler.schedule();  // each beam writes position 10 into the shared partial block
  CHECK(out.scheduled.size() == 3);
  CHECK(out.block_copies.size() == 2);  // the last writer keeps the original
  CHECK(pool.num_used_blocks() == 5);
  scheduler.on_step_done(out);
  scheduler.check_invariants();

  // Slot 2 continues slot 0: it drops its own partial block and shares slot 0's.
  move_and_append(scheduler, "b", {0, 1, 0});
  scheduler.check_invariants();
  CHECK(pool.num_used_blocks() == 4);
  CHECK(scheduler.find(sequence_key("b", 2))->blocks.table ==
        scheduler.find(sequence_key("b", 0))->blocks.table);
}

TEST(a_beam_waits_for_its_siblings_when_the_budget_runs_out) {
  BlockPool pool(32);
  Scheduler scheduler({8, 2, 4}, pool);  // two tokens per step
  add_beam_request(scheduler, "b", 3, 2);
  SchedulerOutput out = scheduler.schedule();
  scheduler.on_step_done(out);
  move_and_append(scheduler, "b", {0, 0, 0});
  out = scheduler.schedule();
  CHECK(out.scheduled.size() == 2);  // slots 0 and 1
  scheduler.on_step_done(out);
  out = scheduler.schedule();  // slots 0 and 1 are done and wait; slot 2 runs
  CHECK(out.scheduled.size() == 1);
  CHECK(out.scheduled[0].request->sequence_index == 2);
  scheduler.on_step_done(out);
  CHECK(scheduler.schedule().empty());  // everyone waits for the selection
  scheduler.check_invariants();
}

TEST(preempting_a_beam_search_frees_all_its_blocks_and_restarts_it) {
  BlockPool pool(7);
  Scheduler scheduler({8, 64, 4}, pool);
  scheduler.add_request(cadence_test::make_sequence("old", std::vector<int32_t>(8, 1), 64));
  add_beam_request(scheduler, "b", 2, 4);
  SchedulerOutput out = scheduler.schedule();  // "old": 2 blocks, "b" slot 0: 1 block
  CHECK(out.scheduled.size() == 2);
  scheduler.on_step_done(out);
  scheduler.find("old")->append_output(1);
  move_and_append(scheduler, "b", {0, 0});
  scheduler.check_invariants();
  // Grow "old" until the pool runs out: the beam search (newest) is preempted whole.
  bool restarted = false;
  for (int step = 0; step < 40 && !restarted; ++step) {
    out = scheduler.schedule();
    scheduler.on_step_done(out);
    scheduler.check_invariants();
    for (const auto& item : out.scheduled) {
      if (item.request->id == "old") item.request->append_output(1);
    }
    if (!out.restarted_beam_searches.empty()) {
      restarted = true;
      CHECK(out.restarted_beam_searches == std::vector<std::string>({"b"}));
      break;
    }
    bool all_beams_computed = true;
    for (int32_t s = 0; s < 2; ++s) {
      const Request* beam = scheduler.find(sequence_key("b", s));
      all_beams_computed &= beam->num_computed_tokens == beam->num_tokens();
    }
    if (all_beams_computed) move_and_append(scheduler, "b", {0, 1});
  }
  CHECK(restarted);
  const Request* slot0 = scheduler.find(sequence_key("b", 0));
  const Request* slot1 = scheduler.find(sequence_key("b", 1));
  CHECK(slot0->state == RequestState::kWaiting && slot0->output_token_ids.empty());
  CHECK(slot1->state == RequestState::kAwaitingFork && slot1->blocks.table.empty());
  CHECK(pool.num_used_blocks() == static_cast<int64_t>(scheduler.find("old")->blocks.table.size()));
  CHECK(!scheduler.abort_sequence("b", 1));  // beams are only removed together
  CHECK(scheduler.abort_request("b"));
  scheduler.check_invariants();
}

TEST_MAIN()
