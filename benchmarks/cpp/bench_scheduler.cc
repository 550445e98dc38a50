// The scheduler's own cost, without the model: replays an offline workload (R requests of P
// distinct prompt tokens, each generating G tokens, every sequence sampling token 1) through
// Scheduler::schedule / on_step_done / finish_request with prefix caching on and off, in
// alternating batches, and prints the time per workload and per scheduled token. With nothing
// shared the caching run does all its extra work (hashing every full block, lookups at
// admission, cached releases) and never hits, so the difference is the prefix cache's
// overhead; compare it with the model's time for the same workload (bench_prefix_cache.py's
// offline scenario uses R=32, P=128, G=64).
//
//   bench_scheduler [--requests=32] [--prompt=128] [--generate=64] [--rounds=7]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "kv/block_pool.h"
#include "sched/scheduler.h"

namespace {

using namespace cadence;

struct Workload {
  int num_requests = 32;
  int num_prompt_tokens = 128;
  int num_generated = 64;
};

// Runs the workload to completion; returns the number of tokens scheduled.
int64_t run_workload(const Workload& load, bool enable_prefix_caching) {
  const int64_t block_size = 16;
  const int64_t blocks_per_request =
      (load.num_prompt_tokens + load.num_generated + block_size - 1) / block_size;
  BlockPool pool(load.num_requests * blocks_per_request);
  Scheduler scheduler({load.num_requests, 2048, block_size, 0, enable_prefix_caching}, pool);
  for (int r = 0; r < load.num_requests; ++r) {
    auto request = std::make_unique<Request>();
    request->id = "r" + std::to_string(r);
    for (int t = 0; t < load.num_prompt_tokens; ++t) {
      request->prompt_token_ids.push_back(r * 100000 + t);  // no two requests share a block
    }
    request->params.max_tokens = load.num_generated;
    scheduler.add_request(std::move(request));
  }
  int64_t num_scheduled = 0;
  std::vector<Request*> done;
  while (scheduler.has_unfinished()) {
    SchedulerOutput out = scheduler.schedule();
    scheduler.on_step_done(out);
    done.clear();
    for (const ScheduledRequest& item : out.scheduled) {
      num_scheduled += item.num_new_tokens;
      if (!item.samples_token) continue;
      item.request->append_output(1);
      if (static_cast<int64_t>(item.request->output_token_ids.size()) >= load.num_generated) {
        done.push_back(item.request);
      }
    }
    for (Request* request : done) scheduler.finish_request(request);
  }
  return num_scheduled;
}

int parse_flag(int argc, char** argv, const char* name, int fallback) {
  const size_t length = std::strlen(name);
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], name, length) == 0 && argv[i][length] == '=') {
      return std::atoi(argv[i] + length + 1);
    }
  }
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  Workload load;
  load.num_requests = parse_flag(argc, argv, "--requests", load.num_requests);
  load.num_prompt_tokens = parse_flag(argc, argv, "--prompt", load.num_prompt_tokens);
  load.num_generated = parse_flag(argc, argv, "--generate", load.num_generated);
  const int num_rounds = parse_flag(argc, argv, "--rounds", 7);
  std::printf("%d requests x (%d prompt + %d generated) tokens, nothing shared, %d rounds\n",
              load.num_requests, load.num_prompt_tokens, load.num_generated, num_rounds);
  std::vector<double> seconds[2];  // [caching off, on]
  int64_t num_tokens = 0;
  for (int round = 0; round < num_rounds; ++round) {
    for (int k = 0; k < 2; ++k) {
      const bool caching = (round + k) % 2 == 1;  // alternate which goes first
      const auto start = std::chrono::steady_clock::now();
      num_tokens = run_workload(load, caching);
      seconds[caching ? 1 : 0].push_back(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
  }
  double best[2];
  for (int k = 0; k < 2; ++k) best[k] = *std::min_element(seconds[k].begin(), seconds[k].end());
  std::printf("scheduler time per workload (best of %d): caching off %.3f ms, on %.3f ms\n",
              num_rounds, 1e3 * best[0], 1e3 * best[1]);
  std::printf("per scheduled token: off %.1f ns, on %.1f ns; the prefix cache adds %.3f ms\n",
              1e9 * best[0] / static_cast<double>(num_tokens),
              1e9 * best[1] / static_cast<double>(num_tokens), 1e3 * (best[1] - best[0]));
  return 0;
}
