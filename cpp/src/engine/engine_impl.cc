#include "engine/engine_impl.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <stdexcept>
#include <string>

#include "cadence/errors.h"
#include "kernels/isa.h"
#include "sample/logits_processor.h"
#include "util/large_alloc.h"

namespace cadence {

namespace {

// MemAvailable from /proc/meminfo in bytes; 0 when unknown.
int64_t available_memory_bytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  int64_t value_kib = 0;
  std::string unit;
  while (meminfo >> key >> value_kib >> unit) {
    if (key == "MemAvailable:") return value_kib * 1024;
  }
  return 0;
}

void require_at_least(int64_t value, int64_t minimum, const char* name) {
  if (value < minimum) {
    throw std::invalid_argument(std::string(name) + " must be >= " + std::to_string(minimum) +
                                ", got " + std::to_string(value));
  }
}

// EngineConfig::weight_dtype and quantization -> how the loader stores the weights.
WeightFormat parse_weight_format(WeightDtype dtype, const std::string& quantization) {
  WeightFormat format;
  switch (dtype) {
    case WeightDtype::kFloat32:
      format.float_type = kernels::WeightType::kF32;
      break;
    case WeightDtype::kBfloat16:
      format.float_type = kernels::WeightType::kBF16;
      break;
    case WeightDtype::kFloat16:
      format.float_type = kernels::WeightType::kF16;
      break;
    case WeightDtype::kNative:
      format.keep_stored_types = true;
      break;
  }
  if (quantization == "int8") {
    format.quantize_int8 = true;
  } else if (!quantization.empty()) {
    throw std::invalid_argument("quantization must be '' (none) or 'int8', got '" + quantization +
                                "'");
  }
  return format;
}

// EngineConfig::kv_cache_dtype with kAuto resolved: kBfloat16 where the CPU has AVX-512 BF16,
// else kFloat32.
KvCacheDtype resolve_kv_cache_dtype(KvCacheDtype dtype) {
  if (dtype != KvCacheDtype::kAuto) return dtype;
  return kernels::cpu_has_avx512_bf16() ? KvCacheDtype::kBfloat16 : KvCacheDtype::kFloat32;
}

// A resolved kv_cache_dtype -> the KV cache's element type.
kernels::KvCacheType kv_cache_type(KvCacheDtype dtype) {
  switch (dtype) {
    case KvCacheDtype::kBfloat16:
      return kernels::KvCacheType::kBF16;
    case KvCacheDtype::kFloat16:
      return kernels::KvCacheType::kF16;
    case KvCacheDtype::kAuto:  // resolved before
    case KvCacheDtype::kFloat32:
      break;
  }
  return kernels::KvCacheType::kF32;
}

}  // namespace

std::unique_ptr<Engine> Engine::create(const EngineConfig& config) {
  return std::make_unique<EngineImpl>(config);
}

EngineImpl::EngineImpl(const EngineConfig& config) : config_(config), seed_rng_(config.seed) {
  require_at_least(config_.block_size, 1, "block_size");
  require_at_least(config_.max_num_seqs, 1, "max_num_seqs");
  require_at_least(config_.max_num_batched_tokens, 1, "max_num_batched_tokens");
  require_at_least(config_.kv_cache_memory_bytes, 0, "kv_cache_memory_bytes");
  require_at_least(config_.num_threads, 0, "num_threads");
  ModelLoadOptions load_options;
  load_options.weight_format = parse_weight_format(config_.weight_dtype, config_.quantization);
  config_.kv_cache_dtype = resolve_kv_cache_dtype(config_.kv_cache_dtype);
  const kernels::KvCacheType kv_type = kv_cache_type(config_.kv_cache_dtype);

  std::unique_ptr<Checkpoint> checkpoint = Checkpoint::open(config_.model_path);
  ModelConfig& model_config = config_.model_config;
  if (model_config.architecture.empty()) {
    const std::string suffix = ".gguf";
    const std::string& path = config_.model_path;
    if (path.size() < suffix.size() || path.compare(path.size() - suffix.size(), 5, suffix) != 0) {
      throw std::invalid_argument("model_config is required for a safetensors checkpoint");
    }
    model_config = load_gguf_model_config(path);
  }
  model_config.finalize();
  if (config_.max_model_len == 0) config_.max_model_len = model_config.max_position_embeddings;
  if (config_.max_model_len < 1 || config_.max_model_len > model_config.max_position_embeddings) {
    throw std::invalid_argument(
        "max_model_len must be in [1, " + std::to_string(model_config.max_position_embeddings) +
        "] (the model's max_position_embeddings), got " + std::to_string(config_.max_model_len));
  }

  pool_ = std::make_unique<ThreadPool>(config_.num_threads);
  config_.num_threads = pool_->num_threads();
  ctx_ = kernels::cpu_context(*pool_);
  if (config_.profile) ctx_.profile = &kernel_profile_;
  load_options.allocator = ctx_.allocator;
  load_options.max_positions = config_.max_model_len;
  model_ = create_model(model_config, *checkpoint, load_options);
  checkpoint.reset();   // unmaps the file
  release_free_heap();  // what loading freed last (the loader also does it per tensor)

  const int64_t bytes_per_block =
      KvCache::bytes_per_block(model_config.num_layers, config_.block_size,
                               model_config.num_kv_heads, model_config.head_dim, kv_type);
  const int64_t blocks_per_full_seq =
      (config_.max_model_len + config_.block_size - 1) / config_.block_size;
  if (config_.kv_cache_memory_bytes == 0) {
    // Default: a quarter of the memory available now, but no more than max_num_seqs
    // full-length sequences need, and at least one full-length sequence.
    const int64_t wanted = config_.max_num_seqs * blocks_per_full_seq * bytes_per_block;
    const int64_t affordable = available_memory_bytes() / 4;
    config_.kv_cache_memory_bytes =
        std::max(std::min(wanted, affordable), blocks_per_full_seq * bytes_per_block);
  }
  const int64_t num_blocks = config_.kv_cache_memory_bytes / bytes_per_block;
  if (num_blocks < 1) {
    throw std::invalid_argument("kv_cache_memory_bytes must hold at least one KV block (" +
                                std::to_string(bytes_per_block) + " bytes), got " +
                                std::to_string(config_.kv_cache_memory_bytes));
  }
  block_pool_ = std::make_unique<BlockPool>(num_blocks);
  kv_cache_ = std::make_unique<KvCache>(*ctx_.allocator, model_config.num_layers, num_blocks,
                                        config_.block_size, model_config.num_kv_heads,
                                        model_config.head_dim, kv_type);
  SchedulerConfig scheduler_config;
  scheduler_config.max_num_seqs = config_.max_num_seqs;
  scheduler_config.max_num_batched_tokens = config_.max_num_batched_tokens;
  scheduler_config.block_size = config_.block_size;
  scheduler_config.enable_prefix_caching = config_.enable_prefix_caching;
  // Blocks outside the window are freed only when no layer attends fully.
  if (model_config.full_attention_layers.empty()) {
    scheduler_config.sliding_window = model_config.sliding_window;
  }
  scheduler_ = std::make_unique<Scheduler>(scheduler_config, *block_pool_);
}

std::string EngineImpl::isa() const { return kernels::isa_name(kernels::active_isa()); }

EngineStats EngineImpl::stats() const {
  EngineStats stats;
  stats.num_running = scheduler_->num_running();
  stats.num_waiting = scheduler_->num_waiting();
  stats.num_total_blocks = block_pool_->num_total_blocks();
  stats.num_free_blocks = block_pool_->num_free_blocks();
  stats.num_preemptions = scheduler_->num_preemptions();
  stats.num_cached_blocks = block_pool_->num_cached_blocks();
  stats.prefix_cache_queries = scheduler_->prefix_cache_stats().num_queried_tokens;
  stats.prefix_cache_hits = scheduler_->prefix_cache_stats().num_hit_tokens;
  return stats;
}

void EngineImpl::validate_prompt(const std::vector<int32_t>& prompt_token_ids,
                                 int64_t max_tokens) const {
  const int64_t vocab_size = model_->config().vocab_size;
  if (prompt_token_ids.empty()) throw std::invalid_argument("the prompt must not be empty");
  for (int32_t id : prompt_token_ids) {
    if (id < 0 || id >= vocab_size) {
      throw std::invalid_argument("prompt token id " + std::to_string(id) +
                                  " is out of range [0, " + std::to_string(vocab_size) + ")");
    }
  }
  const int64_t num_prompt = static_cast<int64_t>(prompt_token_ids.size());
  if (num_prompt + max_tokens > config_.max_model_len) {
    throw std::invalid_argument("prompt (" + std::to_string(num_prompt) +
                                " tokens) + max_tokens (" + std::to_string(max_tokens) +
                                ") exceeds max_model_len (" +
                                std::to_string(config_.max_model_len) + ")");
  }
  const int64_t blocks_needed = scheduler_->blocks_for_tokens(num_prompt + max_tokens);
  if (blocks_needed > block_pool_->num_total_blocks()) {
    throw std::invalid_argument("prompt + max_tokens needs " + std::to_string(blocks_needed) +
                                " KV blocks but the whole pool has " +
                                std::to_string(block_pool_->num_total_blocks()) +
                                "; raise kv_cache_memory_bytes or lower max_tokens");
  }
}

namespace {

// Distinct, well-mixed seeds for the sequences of one request (splitmix64 finalizer).
uint64_t sequence_seed(uint64_t seed, int32_t sequence_index) {
  if (sequence_index == 0) return seed;
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(sequence_index);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

AddRequestStatus EngineImpl::add_request(const std::string& request_id,
                                         const std::vector<int32_t>& prompt_token_ids,
                                         const SamplingParams& params,
                                         const std::string& cache_salt) {
  params.validate(model_->config().vocab_size, config_.max_logprobs);
  if (params.n > config_.max_num_seqs) {
    throw InvalidParameter("n", "n must be <= max_num_seqs (" +
                                    std::to_string(config_.max_num_seqs) + "), got " +
                                    std::to_string(params.n));
  }
  validate_prompt(prompt_token_ids, params.max_tokens);
  if (scheduler_->contains(request_id)) return AddRequestStatus::kDuplicateId;
  const uint64_t seed = params.seed.has_value() ? *params.seed : seed_rng_();
  auto group = std::make_unique<RequestGroup>();
  group->id = request_id;
  for (int32_t index = 0; index < params.n; ++index) {
    auto request = std::make_unique<Request>();
    request->id = request_id;
    request->sequence_index = index;
    request->prompt_token_ids = prompt_token_ids;
    request->cache_salt = cache_salt;
    request->params = params;
    request->rng.seed(sequence_seed(seed, index));
    request->max_total_tokens = static_cast<int64_t>(prompt_token_ids.size()) + params.max_tokens;
    group->sequences.push_back(std::move(request));
  }
  scheduler_->add_group(std::move(group));
  return AddRequestStatus::kOk;
}

int64_t EngineImpl::max_beam_width() const {
  const int64_t per_beam = beam_search_num_candidates(1, model_->config().eos_token_ids.size());
  return std::min<int64_t>(config_.max_num_seqs, model_->config().vocab_size / per_beam);
}

AddRequestStatus EngineImpl::add_beam_request(const std::string& request_id,
                                              const std::vector<int32_t>& prompt_token_ids,
                                              const BeamSearchParams& params,
                                              const std::string& cache_salt) {
  params.validate(max_beam_width());
  validate_prompt(prompt_token_ids, params.max_tokens);
  // Worst case: the prompt's full blocks shared, everything after them private per beam.
  const auto num_prompt = static_cast<int64_t>(prompt_token_ids.size());
  const int64_t shared = num_prompt / config_.block_size;
  const int64_t worst_case =
      shared +
      params.beam_width * (scheduler_->blocks_for_tokens(num_prompt + params.max_tokens) - shared);
  if (worst_case > block_pool_->num_total_blocks()) {
    throw std::invalid_argument("beam search with beam_width " + std::to_string(params.beam_width) +
                                " may need " + std::to_string(worst_case) +
                                " KV blocks but the whole pool has " +
                                std::to_string(block_pool_->num_total_blocks()) +
                                "; raise kv_cache_memory_bytes or lower beam_width or max_tokens");
  }
  if (scheduler_->contains(request_id)) return AddRequestStatus::kDuplicateId;
  auto group = std::make_unique<RequestGroup>();
  group->id = request_id;
  group->is_beam_search = true;
  for (int32_t slot = 0; slot < params.beam_width; ++slot) {
    auto request = std::make_unique<Request>();
    request->id = request_id;
    request->sequence_index = slot;
    request->prompt_token_ids = prompt_token_ids;
    request->cache_salt = cache_salt;
    request->params.max_tokens = params.max_tokens;
    request->max_total_tokens = num_prompt + params.max_tokens;
    group->sequences.push_back(std::move(request));
  }
  scheduler_->add_group(std::move(group));
  beam_searches_.emplace(request_id, BeamSearch(params, model_->config().eos_token_ids));
  return AddRequestStatus::kOk;
}

bool EngineImpl::abort_request(const std::string& request_id) {
  beam_searches_.erase(request_id);
  return scheduler_->abort_request(request_id);
}

void EngineImpl::advance_beam_search(const std::string& request_id, BeamSearch& search,
                                     std::vector<RequestOutput>& results) {
  const BeamSearch::Step step = search.select();
  if (step.done) {
    RequestOutput out;
    out.request_id = request_id;
    out.num_cached_tokens = std::max<int64_t>(0, scheduler_->find(request_id)->num_cached_tokens);
    out.beams = search.results();
    out.finished = true;
    out.finish_reason = out.beams.front().finish_reason;
    results.push_back(std::move(out));
    scheduler_->abort_request(request_id);  // frees every beam's blocks
    beam_searches_.erase(request_id);       // `search` is gone after this
    return;
  }
  scheduler_->continue_sequences(request_id, step.parent);
  for (int32_t slot = 0; slot < search.beam_width(); ++slot) {
    if (step.parent[slot] < 0) continue;
    scheduler_->find(sequence_key(request_id, slot))->append_output(step.token[slot]);
  }
}

void EngineImpl::build_batch(const SchedulerOutput& output) {
  ForwardBatch& batch = batch_;
  batch.token_ids.clear();
  batch.positions.clear();
  batch.slot_mapping.clear();
  batch.query_start.assign(1, 0);
  batch.context_lens.clear();
  batch.prompt_lens.clear();
  batch.logits_rows.clear();
  row_uses_.clear();
  batch.max_blocks_per_seq = 1;
  for (const ScheduledRequest& item : output.scheduled) {
    batch.max_blocks_per_seq = std::max<int64_t>(
        batch.max_blocks_per_seq, static_cast<int64_t>(item.request->blocks.table.size()));
  }
  batch.block_tables.assign(output.scheduled.size() * batch.max_blocks_per_seq, 0);
  const int64_t block_size = config_.block_size;
  for (size_t s = 0; s < output.scheduled.size(); ++s) {
    Request& request = *output.scheduled[s].request;
    const int64_t begin = request.num_computed_tokens;
    const int64_t end = begin + output.scheduled[s].num_new_tokens;
    const bool wants_prompt_logprobs = request.params.prompt_logprobs >= 0;
    for (int64_t pos = begin; pos < end; ++pos) {
      // Row `pos` predicts token pos + 1; each is collected once (a recompute after
      // preemption skips the positions already collected).
      if (wants_prompt_logprobs && pos + 1 < request.num_prompt_tokens() &&
          pos >= static_cast<int64_t>(request.prompt_logprobs.size())) {
        batch.logits_rows.push_back(static_cast<int32_t>(batch.token_ids.size()));
        row_uses_.push_back({&request, pos});
      }
      batch.token_ids.push_back(request.token_at(pos));
      batch.positions.push_back(static_cast<int32_t>(pos));
      batch.slot_mapping.push_back(static_cast<int32_t>(
          request.blocks.table[pos / block_size] * block_size + pos % block_size));
    }
    batch.query_start.push_back(static_cast<int32_t>(batch.token_ids.size()));
    batch.context_lens.push_back(static_cast<int32_t>(end));
    batch.prompt_lens.push_back(static_cast<int32_t>(request.num_prompt_tokens()));
    std::copy(request.blocks.table.begin(), request.blocks.table.end(),
              batch.block_tables.begin() + static_cast<int64_t>(s) * batch.max_blocks_per_seq);
    if (output.scheduled[s].samples_token) {
      batch.logits_rows.push_back(static_cast<int32_t>(batch.token_ids.size()) - 1);
      row_uses_.push_back({&request, -1});
    }
  }
}

void EngineImpl::append_token(Request& request, int32_t token, RequestOutput& out) const {
  request.append_output(token);
  out.new_token_ids.push_back(token);
  const SamplingParams& params = request.params;
  const auto& eos = model_->config().eos_token_ids;
  const int64_t num_output = static_cast<int64_t>(request.output_token_ids.size());
  if (!params.ignore_eos && std::find(eos.begin(), eos.end(), token) != eos.end()) {
    out.finish_reason = FinishReason::kStop;  // EOS: stop_token_id stays -1
  } else if (std::find(params.stop_token_ids.begin(), params.stop_token_ids.end(), token) !=
             params.stop_token_ids.end()) {
    out.finish_reason = FinishReason::kStop;
    out.stop_token_id = token;
  } else if (num_output >= params.max_tokens || request.num_tokens() >= config_.max_model_len) {
    out.finish_reason = FinishReason::kLength;
  }
  out.finished = out.finish_reason != FinishReason::kNone;
}

namespace {

// What sampling one row needs besides the row: a processed copy of it and the sampler's
// candidate list. One per thread, grown on first use and reused after that.
struct RowScratch {
  std::vector<float> logits;
  Sampler sampler;
};

RowScratch& row_scratch() {
  thread_local RowScratch scratch;
  return scratch;
}

}  // namespace

void EngineImpl::sample_next(Request& request, const float* raw_logits, RequestOutput& out) const {
  const int64_t vocab_size = model_->config().vocab_size;
  const SamplingParams& params = request.params;
  RowScratch& scratch = row_scratch();
  out.request_id = request.id;
  out.sequence_index = request.sequence_index;
  out.num_cached_tokens = std::max<int64_t>(0, request.num_cached_tokens);
  const float* logits = raw_logits;
  const auto num_output = static_cast<int64_t>(request.output_token_ids.size());
  if (needs_logits_processing(params, num_output)) {
    scratch.logits.assign(raw_logits, raw_logits + vocab_size);
    TokenHistory history{&request.prompt_token_ids, &request.output_token_ids,
                         &request.output_counts};
    process_logits(params, history, model_->config().eos_token_ids, scratch.logits.data(),
                   vocab_size);
    logits = scratch.logits.data();
  }
  const int32_t token = scratch.sampler.sample(logits, vocab_size, params, request.rng);
  if (params.logprobs >= 0) {
    out.new_logprobs.push_back(compute_logprobs(raw_logits, vocab_size, token, params.logprobs));
  }
  append_token(request, token, out);
}

namespace {

// Adds the time since the previous lap to a StepProfile phase; does nothing when off.
class PhaseClock {
 public:
  explicit PhaseClock(bool is_on) : is_on_(is_on) {
    if (is_on_) last_ = std::chrono::steady_clock::now();
  }
  void lap(double& seconds) {
    if (!is_on_) return;
    const auto now = std::chrono::steady_clock::now();
    seconds += std::chrono::duration<double>(now - last_).count();
    last_ = now;
  }

 private:
  bool is_on_;
  std::chrono::steady_clock::time_point last_;
};

}  // namespace

StepProfile EngineImpl::step_profile() const {
  StepProfile profile = phase_profile_;
  for (int32_t f = 0; f < static_cast<int32_t>(kernels::KernelFamily::kCount); ++f) {
    profile.kernel_seconds.emplace_back(
        kernels::kernel_family_name(static_cast<kernels::KernelFamily>(f)),
        kernel_profile_.seconds[f]);
  }
  return profile;
}

void EngineImpl::reset_step_profile() {
  phase_profile_ = StepProfile();
  kernel_profile_ = kernels::KernelProfile();
}

std::vector<RequestOutput> EngineImpl::step() {
  PhaseClock clock(config_.profile);
  SchedulerOutput output = scheduler_->schedule();
  for (const std::string& request_id : output.restarted_beam_searches) {
    beam_searches_.at(request_id).restart();
  }
  clock.lap(phase_profile_.schedule_seconds);
  if (output.empty()) return {};
  if (config_.profile) ++phase_profile_.num_steps;
  for (const auto& [src, dst] : output.block_copies) kv_cache_->copy_block(ctx_, src, dst);
  build_batch(output);
  const int64_t vocab_size = model_->config().vocab_size;
  const kernels::TensorView logits = logits_rows(static_cast<int64_t>(batch_.logits_rows.size()));
  clock.lap(phase_profile_.batch_seconds);
  model_->forward(ctx_, batch_, *kv_cache_, logits);
  clock.lap(phase_profile_.forward_seconds);
  scheduler_->on_step_done(output);
  clock.lap(phase_profile_.schedule_seconds);

  // 1. Serially, in row order: what each row is for. Forks change the scheduler, so they
  //    happen here, before any row is sampled.
  prompt_rows_.clear();
  sample_rows_.clear();
  beam_rows_.clear();
  std::vector<std::string> beam_searches_with_logits;
  for (size_t row = 0; row < row_uses_.size(); ++row) {
    Request& request = *row_uses_[row].request;
    const float* raw_logits = logits.as<const float>() + static_cast<int64_t>(row) * vocab_size;
    if (row_uses_[row].position >= 0) {  // a prompt-logprob row
      prompt_rows_.push_back({&request, row_uses_[row].position, raw_logits});
      continue;
    }
    if (request.group->is_beam_search) {
      beam_rows_.push_back({&request, request.sequence_index, raw_logits});
      if (std::find(beam_searches_with_logits.begin(), beam_searches_with_logits.end(),
                    request.id) == beam_searches_with_logits.end()) {
        beam_searches_with_logits.push_back(request.id);
      }
      continue;
    }
    sample_rows_.push_back({&request, -1, raw_logits});
    // The prompt is computed: parked siblings (n > 1) join and sample from the same row.
    if (request.sequence_index == 0 && request.group->has_parked()) {
      for (Request* sibling : scheduler_->fork(request.id)) {
        sample_rows_.push_back({sibling, -1, raw_logits});
      }
    }
  }
  // 2. Every row on all threads: prompt logprobs, sampling (penalties, the sampler, logprobs)
  //    and the beam candidate passes. A row touches only its own sequence (its tokens and RNG
  //    stream) and this thread's scratch, so the results are bitwise those of a serial pass.
  const auto num_prompt = static_cast<int64_t>(prompt_rows_.size());
  const auto num_sample = static_cast<int64_t>(sample_rows_.size());
  const auto num_beam = static_cast<int64_t>(beam_rows_.size());
  prompt_logprobs_.resize(static_cast<size_t>(num_prompt));
  std::vector<RequestOutput> results(static_cast<size_t>(num_sample));
  pool_->parallel_for(num_prompt + num_sample + num_beam, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      if (i < num_prompt) {
        const RowTask& task = prompt_rows_[i];
        const Request& request = *task.request;
        prompt_logprobs_[i] =
            compute_logprobs(task.logits, vocab_size, request.prompt_token_ids[task.position + 1],
                             request.params.prompt_logprobs);
      } else if (i < num_prompt + num_sample) {
        const RowTask& task = sample_rows_[i - num_prompt];
        sample_next(*task.request, task.logits, results[i - num_prompt]);
      } else {
        const RowTask& task = beam_rows_[i - num_prompt - num_sample];
        beam_searches_.at(task.request->id).set_logits(task.position, task.logits, vocab_size);
      }
    }
  });
  // 3. Serially, in row order: prompt logprobs join their requests (sequence 0's first output
  //    carries them), finished sequences free their blocks, beam searches select.
  for (int64_t i = 0; i < num_prompt; ++i) {
    prompt_rows_[i].request->prompt_logprobs.push_back(std::move(prompt_logprobs_[i]));
  }
  std::vector<Request*> finished;
  for (int64_t i = 0; i < num_sample; ++i) {
    Request& request = *sample_rows_[i].request;
    RequestOutput& out = results[i];
    if (request.params.prompt_logprobs >= 0 && !request.prompt_logprobs_sent &&
        request.sequence_index == 0) {
      out.prompt_logprobs = std::move(request.prompt_logprobs);
      request.prompt_logprobs.clear();
      request.prompt_logprobs_sent = true;
    }
    if (out.finished) finished.push_back(&request);
  }
  for (Request* request : finished) scheduler_->finish_request(request);  // gone after this
  for (const std::string& request_id : beam_searches_with_logits) {
    BeamSearch& search = beam_searches_.at(request_id);
    if (search.ready()) advance_beam_search(request_id, search, results);
  }
  clock.lap(phase_profile_.sampling_seconds);
  return results;
}

std::vector<float> EngineImpl::compute_prompt_logits(const std::vector<int32_t>& token_ids) {
  validate_prompt(token_ids, 1);
  const int64_t num_tokens = static_cast<int64_t>(token_ids.size());
  const int64_t num_blocks = scheduler_->blocks_for_tokens(num_tokens);
  if (!block_pool_->can_allocate(num_blocks)) {
    throw std::runtime_error("compute_prompt_logits needs " + std::to_string(num_blocks) +
                             " free KV blocks, the pool has " +
                             std::to_string(block_pool_->num_free_blocks()));
  }
  std::vector<int32_t> blocks;
  block_pool_->allocate(num_blocks, blocks);
  ForwardBatch batch;
  batch.max_blocks_per_seq = num_blocks;
  batch.block_tables = blocks;
  batch.query_start = {0, static_cast<int32_t>(num_tokens)};
  batch.context_lens = {static_cast<int32_t>(num_tokens)};
  batch.prompt_lens = {static_cast<int32_t>(num_tokens)};
  const int64_t block_size = config_.block_size;
  for (int64_t pos = 0; pos < num_tokens; ++pos) {
    batch.token_ids.push_back(token_ids[pos]);
    batch.positions.push_back(static_cast<int32_t>(pos));
    batch.slot_mapping.push_back(
        static_cast<int32_t>(blocks[pos / block_size] * block_size + pos % block_size));
    batch.logits_rows.push_back(static_cast<int32_t>(pos));
  }
  // A buffer of its own: all num_tokens rows, more than a step's logits_ holds. The model
  // writes it in place: host memory, as the CPU context's logits are (a device backend would
  // copy them back here, as step() would).
  const int64_t vocab_size = model_->config().vocab_size;
  std::vector<float> logits(static_cast<size_t>(num_tokens * vocab_size));
  try {
    model_->forward(ctx_, batch, *kv_cache_,
                    kernels::TensorView::rows(logits.data(), num_tokens, vocab_size, vocab_size));
  } catch (...) {
    block_pool_->release(blocks);
    throw;
  }
  block_pool_->release(blocks);
  return logits;
}

kernels::TensorView EngineImpl::logits_rows(int64_t num_rows) {
  const int64_t vocab_size = model_->config().vocab_size;
  const int64_t num_bytes = num_rows * vocab_size * static_cast<int64_t>(sizeof(float));
  if (num_bytes > logits_.size_bytes()) {
    logits_.reset();  // release first: nothing in it is kept
    logits_ = kernels::DeviceBuffer(*ctx_.allocator, num_bytes);
  }
  return kernels::TensorView::rows(logits_.as<float>(), num_rows, vocab_size, vocab_size,
                                   ctx_.device);
}

}  // namespace cadence
