#include "sample/sampler.h"

#include <algorithm>
#include <cmath>

namespace cadence {

int32_t argmax_token(const float* logits, int64_t vocab_size) {
  int64_t best = 0;
  for (int64_t i = 1; i < vocab_size; ++i) {
    if (logits[i] > logits[best]) best = i;
  }
  return static_cast<int32_t>(best);
}

namespace {

// Higher probability first; equal probabilities by lower token id, so the order (and
// hence the sampled token for a given draw) is fully determined.
bool better(float prob_a, int32_t id_a, float prob_b, int32_t id_b) {
  return prob_a > prob_b || (prob_a == prob_b && id_a < id_b);
}

}  // namespace

int32_t Sampler::sample(const float* logits, int64_t vocab_size, const SamplingParams& params,
                        std::mt19937_64& rng) {
  if (params.is_greedy()) return argmax_token(logits, vocab_size);

  const uint64_t draw = rng();
  const double uniform = static_cast<double>(draw >> 11) * (1.0 / 9007199254740992.0);  // [0,1)

  float max_logit = logits[0];
  for (int64_t i = 1; i < vocab_size; ++i) max_logit = std::max(max_logit, logits[i]);
  const float inv_temperature = 1.0f / params.temperature;
  // A temperature so small that 1/T overflows (T < ~3e-39) is the T -> 0 limit: all the mass
  // on the best logit. (The product (max - max) * inf would be NaN.) The draw above is still
  // taken, so the sequence's RNG stream advances as for any sampled token.
  if (!std::isfinite(inv_temperature)) return argmax_token(logits, vocab_size);
  auto by_rank = [](const Candidate& a, const Candidate& b) {
    return better(a.prob, a.token_id, b.prob, b.token_id);
  };
  const bool has_top_k = params.top_k > 0 && params.top_k < vocab_size;
  if (!has_top_k && params.top_p >= 1.0f && params.min_p <= 0.0f) {
    // Every token stays: one pass of exp() in token order, then the walk (what the general
    // path below computes for this case, value for value, without its candidate list).
    probs_.resize(static_cast<size_t>(vocab_size));
    double total = 0.0;
    for (int64_t i = 0; i < vocab_size; ++i) {
      probs_[i] = std::exp((logits[i] - max_logit) * inv_temperature);
      total += probs_[i];
    }
    const double point = uniform * total;
    double cumulative = 0.0;
    for (int64_t i = 0; i < vocab_size; ++i) {
      cumulative += probs_[i];
      if (point < cumulative) return static_cast<int32_t>(i);
    }
    return static_cast<int32_t>(vocab_size - 1);
  }
  // Candidates first carry their logit in `prob`: top-k selects on logits (temperature
  // preserves the order), so exp() runs only over the k survivors.
  size_t num_kept;
  bool in_token_order = true;  // candidates_[0, num_kept) by increasing token id
  if (has_top_k) {
    // The k best by rank, kept in a heap with the worst on top: one comparison per token for
    // all but the few that enter it. The same set as a selection over all tokens.
    num_kept = static_cast<size_t>(params.top_k);
    candidates_.clear();
    for (int64_t i = 0; i < vocab_size; ++i) {
      const Candidate candidate{logits[i], static_cast<int32_t>(i)};
      if (candidates_.size() < num_kept) {
        candidates_.push_back(candidate);
        std::push_heap(candidates_.begin(), candidates_.end(), by_rank);
      } else if (by_rank(candidate, candidates_.front())) {
        std::pop_heap(candidates_.begin(), candidates_.end(), by_rank);
        candidates_.back() = candidate;
        std::push_heap(candidates_.begin(), candidates_.end(), by_rank);
      }
    }
    in_token_order = false;
  } else {
    candidates_.resize(static_cast<size_t>(vocab_size));
    for (int64_t i = 0; i < vocab_size; ++i) {
      candidates_[i] = {logits[i], static_cast<int32_t>(i)};
    }
    num_kept = candidates_.size();
  }
  bool sorted_prefix = false;  // candidates_[0, num_kept) sorted by rank
  for (size_t i = 0; i < num_kept; ++i) {
    candidates_[i].prob = std::exp((candidates_[i].prob - max_logit) * inv_temperature);
  }
  if (params.top_p < 1.0f) {
    // Keep the smallest prefix (by rank) whose mass reaches top_p of the kept mass.
    // Sort only as much as needed: a growing partial sort.
    double total = 0.0;
    for (size_t i = 0; i < num_kept; ++i) total += candidates_[i].prob;
    const double target = static_cast<double>(params.top_p) * total;
    size_t num_sorted = std::min<size_t>(64, num_kept);
    for (;;) {
      std::partial_sort(candidates_.begin(), candidates_.begin() + num_sorted,
                        candidates_.begin() + num_kept, by_rank);
      double mass = 0.0;
      size_t cut = 0;
      while (cut < num_sorted && mass < target) mass += candidates_[cut++].prob;
      if (mass >= target || num_sorted == num_kept) {
        num_kept = std::max<size_t>(1, cut);
        break;
      }
      num_sorted = std::min(num_kept, num_sorted * 4);
    }
    sorted_prefix = true;
  }
  if (params.min_p > 0.0f) {
    // Relative to the most likely token, whose unnormalized probability is 1.
    const float threshold = params.min_p;
    size_t write = 0;
    for (size_t i = 0; i < num_kept; ++i) {
      if (candidates_[i].prob >= threshold) candidates_[write++] = candidates_[i];
    }
    num_kept = std::max<size_t>(1, write);  // the best token always passes (prob 1)
  }
  if (!sorted_prefix && !in_token_order) {
    // A fixed walk order independent of how the selection arranged the candidates.
    std::sort(candidates_.begin(), candidates_.begin() + num_kept,
              [](const Candidate& a, const Candidate& b) { return a.token_id < b.token_id; });
  }
  double total = 0.0;
  for (size_t i = 0; i < num_kept; ++i) total += candidates_[i].prob;
  const double point = uniform * total;
  double cumulative = 0.0;
  for (size_t i = 0; i < num_kept; ++i) {
    cumulative += candidates_[i].prob;
    if (point < cumulative) return candidates_[i].token_id;
  }
  return candidates_[num_kept - 1].token_id;
}

}  // namespace cadence
