// The Engine implementation: wires checkpoint -> model, block pool + KV cache,
// scheduler and sampler together. See cadence/engine.h for the public contract.
#pragma once

#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "cadence/engine.h"
#include "kernels/allocator.h"
#include "kernels/context.h"
#include "kv/block_pool.h"
#include "kv/kv_cache.h"
#include "model/forward_batch.h"
#include "model/model.h"
#include "sample/beam_search.h"
#include "sample/sampler.h"
#include "sched/scheduler.h"
#include "util/thread_pool.h"

namespace cadence {

class EngineImpl : public Engine {
 public:
  explicit EngineImpl(const EngineConfig& config);

  AddRequestStatus add_request(const std::string& request_id,
                               const std::vector<int32_t>& prompt_token_ids,
                               const SamplingParams& params,
                               const std::string& cache_salt = "") override;
  AddRequestStatus add_beam_request(const std::string& request_id,
                                    const std::vector<int32_t>& prompt_token_ids,
                                    const BeamSearchParams& params,
                                    const std::string& cache_salt = "") override;
  // Bounded by max_num_seqs and by the candidates each step needs from the vocabulary.
  int64_t max_beam_width() const override;
  bool abort_request(const std::string& request_id) override;
  bool abort_sequence(const std::string& request_id, int32_t sequence_index) override {
    return scheduler_->abort_sequence(request_id, sequence_index);
  }
  std::vector<RequestOutput> step() override;
  bool has_unfinished_requests() const override { return scheduler_->has_unfinished(); }
  int64_t reset_prefix_cache() override { return scheduler_->reset_prefix_cache(); }
  StepProfile step_profile() const override;
  void reset_step_profile() override;
  std::vector<float> compute_prompt_logits(const std::vector<int32_t>& token_ids) override;

  const ModelConfig& model_config() const override { return model_->config(); }
  const EngineConfig& config() const override { return config_; }
  EngineStats stats() const override;
  int64_t kv_cache_bytes() const override { return kv_cache_->size_bytes(); }
  std::string kv_cache_dtype() const override {
    return kernels::kv_cache_type_name(kv_cache_->type());
  }
  int64_t weight_bytes() const override { return model_->weight_bytes(); }
  std::string isa() const override;
  void check_invariants() const override { scheduler_->check_invariants(); }

 private:
  void validate_prompt(const std::vector<int32_t>& prompt_token_ids, int64_t max_tokens) const;
  void build_batch(const SchedulerOutput& output);
  // logits_ as num_rows rows of vocab_size floats, grown first when it is smaller.
  kernels::TensorView logits_rows(int64_t num_rows);
  // Samples the next token of `request` from the raw logits row (penalties etc. applied on a
  // copy in this thread's scratch), records logprobs when asked, appends it and decides
  // whether it is done, into `out`. Touches no engine state: rows run in parallel.
  void sample_next(Request& request, const float* raw_logits, RequestOutput& out) const;
  void append_token(Request& request, int32_t token, RequestOutput& out) const;
  // Runs the selection of a beam search whose live beams all have logits: moves beams
  // (and their KV blocks) or, when done, reports the hypotheses and frees the request.
  void advance_beam_search(const std::string& request_id, BeamSearch& search,
                           std::vector<RequestOutput>& results);

  EngineConfig config_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<BlockPool> block_pool_;
  std::unique_ptr<KvCache> kv_cache_;
  std::unique_ptr<Scheduler> scheduler_;
  std::mt19937_64 seed_rng_;
  kernels::ExecutionContext ctx_;  // the device, threads and memory the model runs on
  ForwardBatch batch_;             // reused across steps
  // The model writes each step's logits here: rows of vocab_size floats, grown (never shrunk)
  // to the largest number of logits rows a step has had. Sampling reads them in place (host).
  kernels::DeviceBuffer logits_;
  // What each row of logits_ is for: a sampling row (position < 0) or the prompt-logprob
  // row of `position` in `request`.
  struct LogitsRowUse {
    Request* request;
    int64_t position;
  };
  std::vector<LogitsRowUse> row_uses_;
  // A step's logits rows by use (reused across steps): prompt logprobs (position: the row's),
  // sampling (a forked sibling shares its leader's row) and beams (position: the slot).
  struct RowTask {
    Request* request;
    int64_t position;
    const float* logits;
  };
  std::vector<RowTask> prompt_rows_, sample_rows_, beam_rows_;
  std::vector<TokenLogprobs> prompt_logprobs_;  // computed for prompt_rows_, in order
  std::unordered_map<std::string, BeamSearch> beam_searches_;  // by request id
  // The step-time breakdown (EngineConfig::profile): phases here, kernel families in
  // kernel_profile_, which ctx_.profile points to when profiling.
  StepProfile phase_profile_;
  kernels::KernelProfile kernel_profile_;
};

}  // namespace cadence
