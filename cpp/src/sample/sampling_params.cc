#include "cadence/sampling_params.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

#include "cadence/errors.h"

namespace cadence {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kInt32Max = std::numeric_limits<int32_t>::max();

// "3" for integral values, else the shortest %g form ("0.5", "1e-09", "inf", "nan").
std::string format_number(double value) {
  if (std::isfinite(value) && value == std::floor(value) && std::fabs(value) < 1e15) {
    return std::to_string(static_cast<long long>(value));
  }
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%g", value);
  return buffer;
}

ParamSpec spec(const char* name, ParamKind kind, double default_value, double low, double high,
               bool low_inclusive = true, bool high_inclusive = true) {
  ParamSpec result;
  result.name = name;
  result.kind = kind;
  result.default_value = default_value;
  result.low = low;
  result.high = high;
  result.low_inclusive = low_inclusive;
  result.high_inclusive = high_inclusive;
  return result;
}

ParamSpec with_note(ParamSpec base, const char* note) {
  base.note = note;
  return base;
}

// The ranges shared by SamplingParams and BeamSearchParams (their defaults differ).
ParamSpec temperature_spec(double default_value) {
  return spec("temperature", ParamKind::kFloat, default_value, 0.0, 2.0);
}
ParamSpec max_tokens_spec(double default_value) {
  return spec("max_tokens", ParamKind::kInt, default_value, 1.0, kInt32Max);
}
ParamSpec bool_spec(const char* name, bool default_value) {
  return spec(name, ParamKind::kBool, default_value ? 1.0 : 0.0, 0.0, 1.0);
}

ParamSpec logprobs_spec(const char* name, double default_value) {
  ParamSpec result = spec(name, ParamKind::kInt, default_value, 0.0, kInt32Max);
  result.off = -1.0;
  return result;
}

std::map<std::string, ParamSpec> by_name(const std::vector<ParamSpec>& specs) {
  std::map<std::string, ParamSpec> result;
  for (const ParamSpec& each : specs) result.emplace(each.name, each);
  return result;
}

[[noreturn]] void reject(const std::string& field, const std::string& range, double value) {
  throw InvalidParameter(field, field + " must be " + range + ", got " + format_number(value));
}

void check_token_id(const std::string& field, int32_t id, int64_t vocab_size) {
  if (id < 0 || (vocab_size > 0 && id >= vocab_size)) {
    reject(field, "token ids in [0, " + std::to_string(vocab_size) + ")", id);
  }
}

const ParamSpec& sampling_spec(const char* name) { return sampling_param_specs().at(name); }

// The spec with its upper bound set by the engine (max_logprobs).
ParamSpec sampling_spec_up_to(const char* name, double high) {
  ParamSpec bounded = sampling_spec(name);
  bounded.high = high;
  return bounded;
}

}  // namespace

bool ParamSpec::contains(double value) const {
  if (std::isnan(value)) return false;
  if (kind == ParamKind::kInt && value != std::floor(value)) return false;
  const bool low_ok = low_inclusive ? value >= low : value > low;
  const bool high_ok = high_inclusive ? value <= high : value < high;
  return low_ok && high_ok;
}

std::string ParamSpec::allowed() const {
  std::string range;
  if (kind == ParamKind::kBool) {
    range = "true or false";
  } else if (std::isinf(low) && std::isinf(high)) {
    range = "a finite number";
  } else if (kind == ParamKind::kInt && high >= kInt32Max) {
    range = (low_inclusive ? ">= " : "> ") + format_number(low);
  } else {
    range = std::string("in ") + (low_inclusive ? "[" : "(") + format_number(low) + ", " +
            format_number(high) + (high_inclusive ? "]" : ")");
  }
  if (!note.empty()) range += " (" + note + ")";
  return range;
}

void ParamSpec::check(double value) const {
  if (off.has_value() && value == *off) return;
  if (contains(value)) return;
  reject(name, off.has_value() ? format_number(*off) + " (off) or " + allowed() : allowed(), value);
}

const std::map<std::string, ParamSpec>& sampling_param_specs() {
  static const std::map<std::string, ParamSpec> specs = [] {
    const SamplingParams d;  // the defaults
    return by_name({
        spec("n", ParamKind::kInt, d.n, 1.0, kInt32Max),
        spec("presence_penalty", ParamKind::kFloat, d.presence_penalty, -2.0, 2.0),
        spec("frequency_penalty", ParamKind::kFloat, d.frequency_penalty, -2.0, 2.0),
        with_note(spec("repetition_penalty", ParamKind::kFloat, d.repetition_penalty, 0.0, kInf,
                       false, false),
                  "1 = off"),
        temperature_spec(d.temperature),
        spec("top_p", ParamKind::kFloat, d.top_p, 0.0, 1.0, false, true),
        with_note(spec("top_k", ParamKind::kInt, d.top_k, -1.0, kInt32Max), "-1 or 0 = off"),
        spec("min_p", ParamKind::kFloat, d.min_p, 0.0, 1.0),
        max_tokens_spec(d.max_tokens),
        spec("min_tokens", ParamKind::kInt, d.min_tokens, 0.0, kInt32Max),
        bool_spec("ignore_eos", d.ignore_eos),
        logprobs_spec("logprobs", d.logprobs),
        logprobs_spec("prompt_logprobs", d.prompt_logprobs),
        spec("logit_bias", ParamKind::kFloat, 0.0, -100.0, 100.0),
    });
  }();
  return specs;
}

const std::map<std::string, ParamSpec>& beam_search_param_specs() {
  static const std::map<std::string, ParamSpec> specs = [] {
    const BeamSearchParams d;
    return by_name({
        spec("beam_width", ParamKind::kInt, d.beam_width, 1.0, kInt32Max),
        max_tokens_spec(d.max_tokens),
        bool_spec("ignore_eos", d.ignore_eos),
        temperature_spec(d.temperature),
        spec("length_penalty", ParamKind::kFloat, d.length_penalty, -kInf, kInf, false, false),
    });
  }();
  return specs;
}

void SamplingParams::validate(int64_t vocab_size, int32_t max_logprobs) const {
  sampling_spec("n").check(n);
  if (n > 1 && is_greedy()) {
    throw InvalidParameter("n",
                           "n > 1 needs temperature > 0 (greedy sequences would be identical)");
  }
  sampling_spec("presence_penalty").check(presence_penalty);
  sampling_spec("frequency_penalty").check(frequency_penalty);
  sampling_spec("repetition_penalty").check(repetition_penalty);
  sampling_spec("temperature").check(temperature);
  sampling_spec("top_p").check(top_p);
  sampling_spec("top_k").check(top_k);
  sampling_spec("min_p").check(min_p);
  sampling_spec("max_tokens").check(max_tokens);
  sampling_spec("min_tokens").check(min_tokens);
  if (min_tokens > max_tokens) {
    reject("min_tokens", "<= max_tokens=" + std::to_string(max_tokens), min_tokens);
  }
  sampling_spec_up_to("logprobs", max_logprobs).check(logprobs);
  sampling_spec_up_to("prompt_logprobs", max_logprobs).check(prompt_logprobs);
  for (int32_t id : stop_token_ids) check_token_id("stop_token_ids", id, vocab_size);
  for (int32_t id : allowed_token_ids) check_token_id("allowed_token_ids", id, vocab_size);
  const ParamSpec& bias_spec = sampling_spec("logit_bias");
  for (const auto& [id, bias] : logit_bias) {
    check_token_id("logit_bias", id, vocab_size);
    bias_spec.check(bias);
  }
  for (const auto& word : bad_words_token_ids) {
    if (word.empty()) throw InvalidParameter("bad_words", "bad_words entries must not be empty");
    for (int32_t id : word) check_token_id("bad_words", id, vocab_size);
  }
}

void BeamSearchParams::validate(int64_t max_beam_width) const {
  const auto& specs = beam_search_param_specs();
  ParamSpec beam_width_spec = specs.at("beam_width");
  beam_width_spec.high = static_cast<double>(max_beam_width);  // the engine's bound
  beam_width_spec.check(beam_width);
  specs.at("max_tokens").check(max_tokens);
  specs.at("temperature").check(temperature);
  specs.at("length_penalty").check(length_penalty);
}

}  // namespace cadence
