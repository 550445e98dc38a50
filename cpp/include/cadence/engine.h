// The engine: owns the model, the paged KV-cache pool and the continuous-batching
// scheduler. One thread drives it (add_request / abort_request / step are not
// thread-safe with respect to each other); step() does the heavy work.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cadence/model_config.h"
#include "cadence/sampling_params.h"

namespace cadence {

struct EngineConfig {
  // A .gguf file, or an HF directory holding *.safetensors (model_config then required).
  std::string model_path;
  // Required for safetensors directories; for GGUF, empty architecture = read from file.
  ModelConfig model_config;
  // How the weights are stored: kFloat32, kBfloat16 or kFloat16 (2 bytes per value, widened
  // to fp32 as the kernels read them; small vectors are rounded to it), or kNative: each tensor
  // as the checkpoint stores it, GGUF quantized blocks included (kept as integer codes, read by
  // the int8 GEMM on per-row int8-quantized activations). Compute is fp32.
  WeightDtype weight_dtype = WeightDtype::kFloat32;
  // "" = none, or "int8": float weight matrices (row length a multiple of 32) quantized at load
  // to int8 per group of 32 columns, computed by the same int8 GEMM.
  std::string quantization;
  int64_t block_size = 16;  // tokens per KV block, >= 1
  // Automatic prefix caching (vLLM's enable_prefix_caching): full KV blocks are kept after their
  // request ends, keyed by a SHA-256 chain over the tokens before them (and the request's
  // cache_salt), and a request whose prompt starts with cached blocks reuses them instead of
  // computing them. Output is unchanged by a hit (bitwise, greedy). false = every request
  // computes its whole prompt.
  bool enable_prefix_caching = true;
  // How the KV cache stores keys and values (vLLM's kv_cache_dtype): kFloat32, kBfloat16 or
  // kFloat16 (2 bytes per value: twice the tokens in the same memory; rounded to nearest even
  // when written, widened to fp32 exactly when attention reads them), or kAuto = kBfloat16 on
  // CPUs with AVX-512 BF16, else kFloat32. config() holds the resolved value (never kAuto).
  KvCacheDtype kv_cache_dtype = KvCacheDtype::kAuto;
  // Bytes for the KV cache (keys + values, all layers). 0 = a default derived from free
  // RAM (see Engine::create), capped to what max_num_seqs full-length sequences need.
  int64_t kv_cache_memory_bytes = 0;
  int64_t max_num_seqs = 256;                  // running sequences per step, >= 1
  int64_t max_num_batched_tokens = 2048;       // tokens computed per step, >= 1
  int64_t max_model_len = 0;                   // 0 = the model's max_position_embeddings
  int num_threads = 0;                         // 0 = all hardware threads
  int32_t max_logprobs = kDefaultMaxLogprobs;  // cap on logprobs / prompt_logprobs, >= 0
  uint64_t seed = 0;  // seeds the RNG that draws seeds for unseeded requests
  // Step-time breakdown (Engine::step_profile): each phase of step() and each kernel family of
  // the forward pass timed. false (default): nothing is timed.
  bool profile = false;
};

enum class FinishReason { kNone, kStop, kLength, kAbort };

// Where step() spent its time (EngineConfig::profile), in seconds summed over the steps since
// the engine started or reset_step_profile(). The phases add up to the step's time.
struct StepProfile {
  int64_t num_steps = 0;          // steps that ran the model
  double schedule_seconds = 0.0;  // Scheduler::schedule
  double batch_seconds = 0.0;     // copy-on-write block copies and building the step's batch
  double forward_seconds = 0.0;   // the model's forward pass, split by kernel_seconds
  // Logits processing, sampling, logprobs, beam candidate passes and selection, freeing
  // finished sequences.
  double sampling_seconds = 0.0;
  // Within forward_seconds, per kernel family (embedding, gemm, lm_head, attention, norm,
  // rope, activation, residual); the rest of forward_seconds is the runner's own work.
  std::vector<std::pair<std::string, double>> kernel_seconds;
};

// Log-probabilities at one position, from the model's raw distribution (log-softmax of
// the logits before penalties, bias and temperature, as vLLM reports by default).
struct TokenLogprobs {
  int32_t token_id = -1;  // the sampled (or, for prompt logprobs, the actual) token
  float logprob = 0.0f;
  int32_t rank = 0;                    // 1 = most likely; ties share the better rank
  std::vector<int32_t> top_token_ids;  // the k most likely, best first
  std::vector<float> top_logprobs;
};

// One finished hypothesis of a beam-search request.
struct BeamHypothesis {
  std::vector<int32_t> token_ids;  // generated tokens; ends with the EOS token when kStop
  // Per generated token: its log-probability under the search distribution (the model's,
  // or log-softmax(logits / temperature)) and its rank there among its parent's candidates.
  std::vector<float> logprobs;
  std::vector<int32_t> ranks;
  double cum_logprob = 0.0;  // sum of logprobs
  double score = 0.0;        // cum_logprob / len(token_ids) ** length_penalty
  FinishReason finish_reason = FinishReason::kNone;  // kStop (EOS) or kLength
};

// What one step produced for one sequence of a request.
struct RequestOutput {
  std::string request_id;
  int32_t sequence_index = 0;          // which of the request's n sequences, 0 .. n-1
  std::vector<int32_t> new_token_ids;  // tokens sampled this step (0 or 1 today)
  // Parallel to new_token_ids when the request asked for logprobs (params.logprobs >= 0).
  std::vector<TokenLogprobs> new_logprobs;
  // Prompt positions 1 .. P-1 (the first token has none), sent once with sequence 0's
  // first output when params.prompt_logprobs >= 0.
  std::vector<TokenLogprobs> prompt_logprobs;
  bool finished = false;  // this sequence is done
  FinishReason finish_reason = FinishReason::kNone;
  int32_t stop_token_id = -1;  // the stop_token_ids entry that ended it; -1 for EOS/length
  // A beam-search request reports once, when it finishes (sequence_index 0): its
  // beam_width best hypotheses, best score first. Empty for sampling requests.
  std::vector<BeamHypothesis> beams;
  // Prompt tokens whose KV came from the prefix cache when the request was first scheduled
  // (a multiple of block_size; 0 without a hit or with prefix caching off).
  int64_t num_cached_tokens = 0;
};

// Result of add_request: capacity problems are values, never exceptions.
enum class AddRequestStatus { kOk, kDuplicateId };

struct EngineStats {
  int64_t num_running = 0;
  int64_t num_waiting = 0;
  int64_t num_total_blocks = 0;
  int64_t num_free_blocks = 0;
  int64_t num_preemptions = 0;  // since start
  // Prefix cache: blocks kept only as cached prefixes (part of num_free_blocks: evictable),
  // and since start the tokens looked up at admission and the tokens of those found cached.
  int64_t num_cached_blocks = 0;
  int64_t prefix_cache_queries = 0;
  int64_t prefix_cache_hits = 0;
};

class Engine {
 public:
  // Loads the model and allocates the KV pool. Throws std::invalid_argument for bad
  // config values and std::runtime_error for unreadable/unsupported model files.
  static std::unique_ptr<Engine> create(const EngineConfig& config);
  virtual ~Engine() = default;

  // Queues a request. Throws std::invalid_argument (naming the parameter and range) for
  // empty prompts, token ids outside [0, vocab_size), invalid sampling params, and
  // requests that can never fit: prompt + max_tokens > max_model_len, or more blocks
  // than the whole pool. Requests share cached prefix blocks only when their cache_salt
  // strings are equal (vLLM's cache_salt: "" for requests without one).
  virtual AddRequestStatus add_request(const std::string& request_id,
                                       const std::vector<int32_t>& prompt_token_ids,
                                       const SamplingParams& params,
                                       const std::string& cache_salt = "") = 0;
  // Queues a beam-search request (see sample/beam_search.h for the search rule). Its beams
  // share KV blocks copy-on-write and run in the same batches as sampling requests; it
  // reports only when done (RequestOutput::beams). Throws std::invalid_argument as
  // add_request does; beam_width is bounded by max_num_seqs and by the vocabulary
  // (max(2, 1 + number of EOS ids) * beam_width candidates must exist), and the worst case
  // of unshared blocks must fit the pool.
  virtual AddRequestStatus add_beam_request(const std::string& request_id,
                                            const std::vector<int32_t>& prompt_token_ids,
                                            const BeamSearchParams& params,
                                            const std::string& cache_salt = "") = 0;
  // The largest beam_width add_beam_request accepts.
  virtual int64_t max_beam_width() const = 0;
  // Frees the blocks of all the request's sequences now. Returns false when no such
  // unfinished request exists.
  virtual bool abort_request(const std::string& request_id) = 0;
  // Frees one sequence of an n > 1 request (the others go on). False when unknown or
  // when the request is a beam search (its beams live and die together).
  virtual bool abort_sequence(const std::string& request_id, int32_t sequence_index) = 0;
  // Runs one scheduler step and the model over the scheduled batch. Returns one entry per
  // request that produced tokens or finished in this step.
  virtual std::vector<RequestOutput> step() = 0;
  virtual bool has_unfinished_requests() const = 0;
  // Forgets every cached prefix (vLLM's reset_prefix_cache): later requests compute their
  // prompts in full until new blocks are cached. Blocks in use stay in use. Returns the
  // number of cached blocks freed.
  virtual int64_t reset_prefix_cache() = 0;
  // The step-time breakdown so far (all zero unless EngineConfig::profile), and its reset.
  virtual StepProfile step_profile() const = 0;
  virtual void reset_step_profile() = 0;

  // Logits for every position of one prompt [num_tokens x vocab_size], row-major, run
  // outside the schedule on blocks borrowed from the pool (for scoring and tests).
  // Precondition: the pool has enough free blocks; throws std::runtime_error otherwise.
  virtual std::vector<float> compute_prompt_logits(const std::vector<int32_t>& token_ids) = 0;

  virtual const ModelConfig& model_config() const = 0;
  virtual const EngineConfig& config() const = 0;  // with defaults resolved
  virtual EngineStats stats() const = 0;
  virtual int64_t kv_cache_bytes() const = 0;
  // The KV cache's element type: "float32", "bfloat16" or "float16" ("auto" resolved).
  virtual std::string kv_cache_dtype() const = 0;
  virtual int64_t weight_bytes() const = 0;
  virtual std::string isa() const = 0;
  // Throws std::logic_error if the block pool's or scheduler's bookkeeping is broken.
  virtual void check_invariants() const = 0;
};

}  // namespace cadence
