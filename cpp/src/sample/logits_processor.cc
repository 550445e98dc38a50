#include "sample/logits_processor.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace cadence {

namespace {

constexpr float kMasked = -std::numeric_limits<float>::infinity();

bool ends_with(const std::vector<int32_t>& output, const std::vector<int32_t>& word,
               size_t prefix_length) {
  if (output.size() < prefix_length) return false;
  return std::equal(word.begin(), word.begin() + static_cast<std::ptrdiff_t>(prefix_length),
                    output.end() - static_cast<std::ptrdiff_t>(prefix_length));
}

}  // namespace

bool needs_logits_processing(const SamplingParams& params, int64_t num_output_tokens) {
  return num_output_tokens < params.min_tokens || !params.allowed_token_ids.empty() ||
         !params.bad_words_token_ids.empty() || !params.logit_bias.empty() ||
         params.has_penalties();
}

void process_logits(const SamplingParams& params, const TokenHistory& history,
                    const std::vector<int32_t>& eos_token_ids, float* logits, int64_t vocab_size) {
  const std::vector<int32_t>& output = *history.output_token_ids;
  if (static_cast<int64_t>(output.size()) < params.min_tokens) {
    for (int32_t id : eos_token_ids) {
      if (id < vocab_size) logits[id] = kMasked;
    }
    for (int32_t id : params.stop_token_ids) logits[id] = kMasked;
  }
  if (!params.allowed_token_ids.empty()) {
    std::vector<float> kept(params.allowed_token_ids.size());
    for (size_t i = 0; i < kept.size(); ++i) kept[i] = logits[params.allowed_token_ids[i]];
    std::fill(logits, logits + vocab_size, kMasked);
    for (size_t i = 0; i < kept.size(); ++i) logits[params.allowed_token_ids[i]] = kept[i];
  }
  for (const auto& word : params.bad_words_token_ids) {
    if (ends_with(output, word, word.size() - 1)) logits[word.back()] = kMasked;
  }
  for (const auto& [id, bias] : params.logit_bias) logits[id] += bias;

  if (params.repetition_penalty != 1.0f) {
    // HF semantics: every distinct token of prompt and output once; positive logits are
    // divided, negative ones multiplied. Sorted + unique: no vocabulary-sized table per token.
    const float penalty = params.repetition_penalty;
    std::vector<int32_t> unique_ids;
    unique_ids.reserve(history.prompt_token_ids->size() + output.size());
    unique_ids.insert(unique_ids.end(), history.prompt_token_ids->begin(),
                      history.prompt_token_ids->end());
    unique_ids.insert(unique_ids.end(), output.begin(), output.end());
    std::sort(unique_ids.begin(), unique_ids.end());
    unique_ids.erase(std::unique(unique_ids.begin(), unique_ids.end()), unique_ids.end());
    for (int32_t id : unique_ids) {
      logits[id] = logits[id] > 0.0f ? logits[id] / penalty : logits[id] * penalty;
    }
  }
  if (params.frequency_penalty != 0.0f || params.presence_penalty != 0.0f) {
    // OpenAI semantics over generated tokens only.
    for (const auto& [id, count] : *history.output_counts) {
      logits[id] -= params.frequency_penalty * static_cast<float>(count) +
                    (count > 0 ? params.presence_penalty : 0.0f);
    }
  }
}

TokenLogprobs compute_logprobs(const float* logits, int64_t vocab_size, int32_t token_id,
                               int32_t num_top) {
  float max_logit = logits[0];
  for (int64_t i = 1; i < vocab_size; ++i) max_logit = std::max(max_logit, logits[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < vocab_size; ++i)
    sum += std::exp(static_cast<double>(logits[i] - max_logit));
  const float log_normalizer = max_logit + static_cast<float>(std::log(sum));

  TokenLogprobs out;
  out.token_id = token_id;
  out.logprob = logits[token_id] - log_normalizer;
  int32_t num_better = 0;
  for (int64_t i = 0; i < vocab_size; ++i) num_better += logits[i] > logits[token_id];
  out.rank = num_better + 1;
  if (num_top > 0) {
    std::vector<int32_t> ids(static_cast<size_t>(vocab_size));
    for (int64_t i = 0; i < vocab_size; ++i) ids[i] = static_cast<int32_t>(i);
    const auto k = static_cast<std::ptrdiff_t>(std::min<int64_t>(num_top, vocab_size));
    std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), [&](int32_t a, int32_t b) {
      return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
    });
    for (std::ptrdiff_t i = 0; i < k; ++i) {
      out.top_token_ids.push_back(ids[i]);
      out.top_logprobs.push_back(logits[ids[i]] - log_normalizer);
    }
  }
  return out;
}

}  // namespace cadence
