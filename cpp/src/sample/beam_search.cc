#include "sample/beam_search.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace cadence {

int64_t beam_search_num_candidates(int32_t beam_width, size_t num_eos_ids) {
  return std::max<int64_t>(2, 1 + static_cast<int64_t>(num_eos_ids)) * beam_width;
}

BeamSearch::BeamSearch(const BeamSearchParams& params, std::vector<int32_t> eos_token_ids)
    : params_(params),
      eos_token_ids_(std::move(eos_token_ids)),
      num_candidates_(beam_search_num_candidates(params.beam_width, eos_token_ids_.size())) {
  restart();
}

void BeamSearch::restart() {
  const auto width = static_cast<size_t>(params_.beam_width);
  beams_.assign(width, Beam{});
  live_.assign(width, 0);
  live_[0] = 1;
  candidates_.assign(width, {});
  has_candidates_.assign(width, 0);
  finished_.clear();
}

bool BeamSearch::is_eos(int32_t token) const {
  return !params_.ignore_eos &&
         std::find(eos_token_ids_.begin(), eos_token_ids_.end(), token) != eos_token_ids_.end();
}

double BeamSearch::score(double cum_logprob, size_t length) const {
  if (params_.length_penalty == 0.0f) return cum_logprob;
  return cum_logprob / std::pow(static_cast<double>(length), params_.length_penalty);
}

double BeamSearch::best_reachable_score(double cum_logprob, size_t length) const {
  // Continuations only add log-probabilities <= 0 and end with length+1 .. max_tokens tokens.
  const size_t longest = static_cast<size_t>(params_.max_tokens);
  return score(cum_logprob, params_.length_penalty > 0.0f ? longest : length + 1);
}

void BeamSearch::set_logits(int32_t slot, const float* logits, int64_t vocab_size) {
  const double inv_temperature =
      params_.temperature > 0.0f ? 1.0 / static_cast<double>(params_.temperature) : 1.0;
  float max_logit = logits[0];
  for (int64_t i = 1; i < vocab_size; ++i) max_logit = std::max(max_logit, logits[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < vocab_size; ++i) {
    sum += std::exp((static_cast<double>(logits[i]) - max_logit) * inv_temperature);
  }
  const double log_normalizer = max_logit * inv_temperature + std::log(sum);

  // The best num_candidates_ tokens by logit (ties: lower id), via a small min-heap.
  const auto worse = [&](int32_t a, int32_t b) {  // heap order: the worst on top
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  };
  const auto k = static_cast<size_t>(std::min<int64_t>(num_candidates_, vocab_size));
  std::vector<int32_t> heap;
  heap.reserve(k + 1);
  for (int64_t i = 0; i < vocab_size; ++i) {
    const auto id = static_cast<int32_t>(i);
    if (heap.size() < k) {
      heap.push_back(id);
      std::push_heap(heap.begin(), heap.end(), worse);
    } else if (worse(id, heap.front())) {
      std::pop_heap(heap.begin(), heap.end(), worse);
      heap.back() = id;
      std::push_heap(heap.begin(), heap.end(), worse);
    }
  }
  std::sort_heap(heap.begin(), heap.end(), worse);  // best first
  std::vector<TokenCandidate>& out = candidates_[slot];
  out.clear();
  for (int32_t id : heap) {
    out.push_back({id, static_cast<float>(logits[id] * inv_temperature - log_normalizer)});
  }
  has_candidates_[slot] = 1;
}

bool BeamSearch::ready() const {
  for (size_t slot = 0; slot < live_.size(); ++slot) {
    if (live_[slot] && !has_candidates_[slot]) return false;
  }
  return true;
}

void BeamSearch::offer_finished(const Beam& beam, FinishReason reason) {
  BeamHypothesis hypothesis;
  hypothesis.token_ids = beam.token_ids;
  hypothesis.logprobs = beam.logprobs;
  hypothesis.ranks = beam.ranks;
  hypothesis.cum_logprob = beam.cum_logprob;
  hypothesis.score = score(beam.cum_logprob, beam.token_ids.size());
  hypothesis.finish_reason = reason;
  const auto width = static_cast<size_t>(params_.beam_width);
  if (finished_.size() == width && !(hypothesis.score > finished_.back().score)) return;
  // After the equal scores already kept: earlier hypotheses win ties.
  auto at =
      std::upper_bound(finished_.begin(), finished_.end(), hypothesis.score,
                       [](double value, const BeamHypothesis& kept) { return value > kept.score; });
  finished_.insert(at, std::move(hypothesis));
  if (finished_.size() > width) finished_.pop_back();
}

BeamSearch::Step BeamSearch::select() {
  const auto width = static_cast<size_t>(params_.beam_width);
  std::vector<Candidate> all;
  for (size_t slot = 0; slot < width; ++slot) {
    if (!live_[slot]) continue;
    int32_t rank = 1;
    for (const TokenCandidate& c : candidates_[slot]) {
      all.push_back({static_cast<int32_t>(slot), c.token_id, c.logprob, rank++,
                     beams_[slot].cum_logprob + c.logprob});
    }
  }
  const auto num_best = static_cast<std::ptrdiff_t>(
      std::min<int64_t>(num_candidates_, static_cast<int64_t>(all.size())));
  std::partial_sort(all.begin(), all.begin() + num_best, all.end(),
                    [](const Candidate& a, const Candidate& b) {
                      if (a.cum_logprob != b.cum_logprob) return a.cum_logprob > b.cum_logprob;
                      if (a.slot != b.slot) return a.slot < b.slot;
                      return a.token_id < b.token_id;
                    });
  const auto extend = [this](const Candidate& c) {
    Beam beam = beams_[c.slot];
    beam.token_ids.push_back(c.token_id);
    beam.logprobs.push_back(c.logprob);
    beam.ranks.push_back(c.rank);
    beam.cum_logprob = c.cum_logprob;
    return beam;
  };
  std::vector<const Candidate*> kept;
  for (std::ptrdiff_t i = 0; i < num_best; ++i) {
    const Candidate& c = all[i];
    if (is_eos(c.token_id)) {
      offer_finished(extend(c), FinishReason::kStop);
    } else if (kept.size() < width) {
      kept.push_back(&c);
    }
  }
  if (kept.size() != width) {
    throw std::logic_error("beam search kept " + std::to_string(kept.size()) + " of " +
                           std::to_string(width) + " beams (too few candidates)");
  }

  // A kept beam stays in its parent's slot when it is the parent's first kept child (its
  // KV blocks stay put); the others move into the slots whose beams had no kept child.
  Step step;
  step.parent.assign(width, -1);
  step.token.assign(width, -1);
  std::vector<int32_t> slot_of(kept.size(), -1);
  for (size_t j = 0; j < kept.size(); ++j) {
    const int32_t parent = kept[j]->slot;
    if (step.parent[parent] < 0) {
      slot_of[j] = parent;
      step.parent[parent] = parent;
    }
  }
  int32_t next_free = 0;
  for (size_t j = 0; j < kept.size(); ++j) {
    if (slot_of[j] >= 0) continue;
    while (step.parent[next_free] >= 0) ++next_free;
    slot_of[j] = next_free;
    step.parent[next_free] = kept[j]->slot;
  }
  std::vector<Beam> next(width);
  for (size_t j = 0; j < kept.size(); ++j) {
    next[slot_of[j]] = extend(*kept[j]);
    step.token[slot_of[j]] = kept[j]->token_id;
  }
  beams_ = std::move(next);
  live_.assign(width, 1);
  has_candidates_.assign(width, 0);

  const size_t length = beams_[0].token_ids.size();  // the same for every live beam
  double best_live = beams_[0].cum_logprob;
  for (const Beam& beam : beams_) best_live = std::max(best_live, beam.cum_logprob);
  if (length >= static_cast<size_t>(params_.max_tokens)) {
    for (const Beam& beam : beams_) offer_finished(beam, FinishReason::kLength);
    step.done = true;
  } else if (finished_.size() == width &&
             best_reachable_score(best_live, length) <= finished_.back().score) {
    step.done = true;
  }
  return step;
}

}  // namespace cadence
