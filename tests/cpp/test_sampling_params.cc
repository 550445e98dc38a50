// SamplingParams / BeamSearchParams validation: the spec table is what validate() checks,
// its defaults are the structs' defaults, and every rejection names its parameter.
#include <cmath>
#include <limits>
#include <string>

#include "cadence/errors.h"
#include "cadence/sampling_params.h"
#include "test_harness.h"

using cadence::InvalidParameter;
using cadence::SamplingParams;

namespace {

// The param() of the InvalidParameter that validate() throws, "" when it accepts.
template <typename Params, typename... Args>
std::string rejected_param(const Params& params, Args... args) {
  try {
    params.validate(args...);
  } catch (const InvalidParameter& error) {
    return error.param();
  }
  return "";
}

std::string message_of(const SamplingParams& params) {
  try {
    params.validate();
  } catch (const InvalidParameter& error) {
    return error.what();
  }
  return "";
}

}  // namespace

TEST(invalid_parameter_is_an_invalid_argument_with_its_param) {
  const InvalidParameter error("top_p", "top_p must be in (0, 1], got 0");
  const std::invalid_argument& base = error;
  CHECK(error.param() == "top_p");
  CHECK(std::string(base.what()) == "top_p must be in (0, 1], got 0");
}

TEST(messages_keep_their_wording) {
  SamplingParams params;
  params.temperature = 3.0f;
  CHECK(message_of(params) == "temperature must be in [0, 2], got 3");
  params = SamplingParams();
  params.top_p = 0.0f;
  CHECK(message_of(params) == "top_p must be in (0, 1], got 0");
  params = SamplingParams();
  params.repetition_penalty = -0.5f;
  CHECK(message_of(params) == "repetition_penalty must be in (0, inf) (1 = off), got -0.5");
  params = SamplingParams();
  params.logprobs = 21;
  CHECK(message_of(params) == "logprobs must be -1 (off) or in [0, 20], got 21");
}

TEST(every_spec_bound_is_what_validate_checks) {
  // Each float/int spec: the bound itself is accepted iff inclusive, just outside is
  // rejected naming the field. Fields are set through a copy of the defaults.
  for (const auto& entry : cadence::sampling_param_specs()) {
    const std::string& name = entry.first;  // not a structured binding: lambdas capture it
    const cadence::ParamSpec& spec = entry.second;
    if (spec.kind == cadence::ParamKind::kBool || name == "logit_bias") continue;
    for (const double bound : {spec.low, spec.high}) {
      if (!std::isfinite(bound) || bound >= std::numeric_limits<int32_t>::max()) continue;
      const bool inclusive = bound == spec.low ? spec.low_inclusive : spec.high_inclusive;
      const double outside = bound == spec.low ? bound - 1 : bound + 1;
      for (const double value : {bound, outside}) {
        SamplingParams params;
        params.max_tokens = 1 << 20;  // so min_tokens' own range is what is tested
        const auto set = [&](double v) {
          if (name == "n") params.n = static_cast<int32_t>(v);
          if (name == "presence_penalty") params.presence_penalty = static_cast<float>(v);
          if (name == "frequency_penalty") params.frequency_penalty = static_cast<float>(v);
          if (name == "repetition_penalty") params.repetition_penalty = static_cast<float>(v);
          if (name == "temperature") params.temperature = static_cast<float>(v);
          if (name == "top_p") params.top_p = static_cast<float>(v);
          if (name == "top_k") params.top_k = static_cast<int32_t>(v);
          if (name == "min_p") params.min_p = static_cast<float>(v);
          if (name == "max_tokens") params.max_tokens = static_cast<int32_t>(v);
          if (name == "min_tokens") params.min_tokens = static_cast<int32_t>(v);
          if (name == "logprobs") params.logprobs = static_cast<int32_t>(v);
          if (name == "prompt_logprobs") params.prompt_logprobs = static_cast<int32_t>(v);
        };
        set(value);
        const bool accepted = value == bound ? inclusive : false;
        const bool off = spec.off.has_value() && value == *spec.off;
        const std::string param = rejected_param(params, int64_t{0}, int32_t{1000});
        CHECK(param == (accepted || off ? "" : name));
        CHECK(spec.contains(value) == accepted);
      }
    }
  }
}

TEST(defaults_are_the_structs) {
  const SamplingParams defaults;
  const auto& specs = cadence::sampling_param_specs();
  CHECK(specs.at("temperature").default_value == defaults.temperature);
  CHECK(specs.at("max_tokens").default_value == defaults.max_tokens);
  CHECK(specs.at("logprobs").default_value == defaults.logprobs);
  CHECK(rejected_param(defaults).empty());
  CHECK(rejected_param(cadence::BeamSearchParams(), int64_t{1}).empty());
}

TEST(token_ids_and_cross_field_checks_name_the_field) {
  SamplingParams params;
  params.stop_token_ids = {3, 10};
  CHECK(rejected_param(params, int64_t{10}) == "stop_token_ids");
  params = SamplingParams();
  params.logit_bias = {{1, 101.0f}};
  CHECK(rejected_param(params, int64_t{10}) == "logit_bias");
  params = SamplingParams();
  params.n = 2;
  params.temperature = 0.0f;
  CHECK(rejected_param(params) == "n");
  params = SamplingParams();
  params.min_tokens = params.max_tokens + 1;
  CHECK(rejected_param(params) == "min_tokens");
  cadence::BeamSearchParams beam;
  beam.beam_width = 3;
  CHECK(rejected_param(beam, int64_t{2}) == "beam_width");
  beam.beam_width = 1;
  beam.length_penalty = std::numeric_limits<float>::infinity();
  CHECK(rejected_param(beam, int64_t{2}) == "length_penalty");
}

TEST_MAIN()
