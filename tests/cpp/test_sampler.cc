// Sampler::sample against a plain reference of its documented rule: rank every token (logit,
// then lower id), keep the top-k, exp((logit - max) / T), keep the smallest rank prefix
// holding top_p of the mass, drop tokens under min_p of the best, and walk the survivors (in
// rank order when top-p sorted them, else by token id) to the draw. The fast paths (a heap
// for top-k, no candidate list when nothing is cut) must pick exactly the reference's token.
#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "sample/sampler.h"
#include "test_harness.h"

using cadence::Sampler;
using cadence::SamplingParams;

namespace {

struct Ranked {
  float logit;
  int32_t id;
};

int32_t reference_sample(const std::vector<float>& logits, const SamplingParams& params,
                         uint64_t draw) {
  const double uniform = static_cast<double>(draw >> 11) * (1.0 / 9007199254740992.0);
  std::vector<Ranked> ranked;
  for (size_t i = 0; i < logits.size(); ++i) ranked.push_back({logits[i], static_cast<int32_t>(i)});
  std::sort(ranked.begin(), ranked.end(), [](const Ranked& a, const Ranked& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  });
  const float max_logit = ranked.front().logit;
  if (params.top_k > 0 && static_cast<size_t>(params.top_k) < ranked.size()) {
    ranked.resize(static_cast<size_t>(params.top_k));
  }
  std::vector<std::pair<float, int32_t>> kept;  // (unnormalized prob, id), rank order
  for (const Ranked& r : ranked) {
    kept.emplace_back(std::exp((r.logit - max_logit) * (1.0f / params.temperature)), r.id);
  }
  const bool by_rank = params.top_p < 1.0f;
  if (by_rank) {
    double total = 0.0;
    for (const auto& k : kept) total += k.first;
    double mass = 0.0;
    size_t cut = 0;
    while (cut < kept.size() && mass < params.top_p * total) mass += kept[cut++].first;
    kept.resize(std::max<size_t>(1, cut));
  }
  if (params.min_p > 0.0f) {
    std::vector<std::pair<float, int32_t>> passed;
    for (const auto& k : kept) {
      if (k.first >= params.min_p) passed.push_back(k);
    }
    kept = passed;
  }
  if (!by_rank) {
    std::sort(kept.begin(), kept.end(),
              [](const auto& a, const auto& b) { return a.second < b.second; });
  }
  double total = 0.0;
  for (const auto& k : kept) total += k.first;
  double cumulative = 0.0;
  for (const auto& k : kept) {
    cumulative += k.first;
    if (uniform * total < cumulative) return k.second;
  }
  return kept.back().second;
}

}  // namespace

TEST(sample_equals_the_reference_rule) {
  std::mt19937 rng(99);
  Sampler sampler;
  const struct {
    int32_t top_k;
    float top_p, min_p, temperature;
  } cases[] = {{0, 1.0f, 0.0f, 1.0f},  {0, 1.0f, 0.0f, 0.7f}, {50, 1.0f, 0.0f, 0.8f},
               {50, 0.9f, 0.0f, 0.8f}, {0, 0.9f, 0.0f, 1.0f}, {0, 1.0f, 0.05f, 1.0f},
               {7, 0.5f, 0.1f, 1.3f},  {1, 1.0f, 0.0f, 1.0f}, {300, 0.95f, 0.02f, 0.6f}};
  int num_checked = 0;
  for (const auto& c : cases) {
    SamplingParams params;
    params.top_k = c.top_k;
    params.top_p = c.top_p;
    params.min_p = c.min_p;
    params.temperature = c.temperature;
    for (int trial = 0; trial < 40; ++trial) {
      // Vocabularies with ties (coarse logits) and without, of odd sizes.
      const int vocab = 97 + 131 * (trial % 7);
      std::vector<float> logits(static_cast<size_t>(vocab));
      std::normal_distribution<float> normal(0.0f, 3.0f);
      for (float& logit : logits) {
        logit = trial % 2 ? std::round(normal(rng)) : normal(rng);
      }
      std::mt19937_64 stream(static_cast<uint64_t>(trial) * 7919 + 1);
      std::mt19937_64 copy = stream;
      const int32_t token = sampler.sample(logits.data(), vocab, params, stream);
      CHECK(token == reference_sample(logits, params, copy()));
      ++num_checked;
    }
  }
  CHECK(num_checked == 9 * 40);
}

TEST(a_vanishing_temperature_is_the_greedy_limit) {
  // 1/T overflows a float below ~3e-39; down to the smallest denormal the sampled token is
  // the argmax, with and without the cutting paths (no NaN from (max - max) * inf).
  const std::vector<float> logits = {0.5f, -1.0f, 2.0f, 2.25f, 1.0f, -3.0f, 2.2f, 0.0f};
  Sampler sampler;
  for (float temperature : {1e-30f, 1e-38f, 1e-39f, 1e-40f, 1e-45f}) {
    for (int32_t top_k : {0, 3}) {
      for (float top_p : {1.0f, 0.5f}) {
        SamplingParams params;
        params.temperature = temperature;
        params.top_k = top_k;
        params.top_p = top_p;
        std::mt19937_64 rng(7);
        for (int draw = 0; draw < 8; ++draw) {
          CHECK(sampler.sample(logits.data(), static_cast<int64_t>(logits.size()), params, rng) ==
                3);
        }
      }
    }
  }
}

TEST_MAIN()
