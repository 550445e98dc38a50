// Building requests and playing the engine's part for the scheduler tests.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "sched/scheduler.h"

namespace cadence_test {

inline std::vector<int32_t> iota_tokens(int32_t first, int count) {
  std::vector<int32_t> tokens;
  for (int i = 0; i < count; ++i) tokens.push_back(first + i);
  return tokens;
}

inline std::unique_ptr<cadence::Request> make_sequence(const std::string& id,
                                                       std::vector<int32_t> prompt,
                                                       int max_tokens = 8,
                                                       const std::string& salt = "") {
  auto request = std::make_unique<cadence::Request>();
  request->id = id;
  request->prompt_token_ids = std::move(prompt);
  request->params.max_tokens = max_tokens;
  request->cache_salt = salt;
  return request;
}

// Queues a request of `n` sequences (or beam slots) on one prompt; returns its group.
inline cadence::RequestGroup* add_group(cadence::Scheduler& scheduler, const std::string& id, int n,
                                        const std::vector<int32_t>& prompt, int max_tokens = 8,
                                        bool is_beam_search = false) {
  auto group = std::make_unique<cadence::RequestGroup>();
  group->id = id;
  group->is_beam_search = is_beam_search;
  for (int s = 0; s < n; ++s) {
    auto sequence = make_sequence(id, prompt, max_tokens);
    sequence->sequence_index = s;
    group->sequences.push_back(std::move(sequence));
  }
  cadence::RequestGroup* raw = group.get();
  scheduler.add_group(std::move(group));
  return raw;
}

// The engine's part after a step: progress advances and every sampling sequence gets `token`.
inline void complete_step(cadence::Scheduler& scheduler, const cadence::SchedulerOutput& output,
                          int32_t token = 1) {
  scheduler.on_step_done(output);
  for (const auto& item : output.scheduled) {
    if (item.samples_token) item.request->append_output(token);
  }
}

}  // namespace cadence_test
