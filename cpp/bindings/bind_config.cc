// Option structs bound as classes with keyword-argument constructors and read/write fields.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "cadence/engine.h"
#include "cadence/errors.h"
#include "cadence/model_config.h"
#include "cadence/sampling_params.h"

namespace py = pybind11;
using cadence::EngineConfig;
using cadence::ModelConfig;
using cadence::RopeScaling;
using cadence::SamplingParams;

namespace {

// A constructor taking field values as keywords: built with defaults, then set field by
// field (so pybind11 converts and type-checks each). An unknown keyword is a TypeError.
template <typename Options>
auto keyword_constructor(const char* class_name) {
  return py::init([class_name](const py::kwargs& kwargs) {
    py::object options = py::cast(Options());
    for (const auto& item : kwargs) {
      const std::string name = py::str(item.first);
      if (!py::hasattr(options, name.c_str())) {
        throw py::type_error(std::string(class_name) + " has no field '" + name + "'");
      }
      options.attr(name.c_str()) = item.second;
    }
    return options.cast<Options>();
  });
}

const char* kind_name(cadence::ParamKind kind) {
  switch (kind) {
    case cadence::ParamKind::kInt:
      return "int";
    case cadence::ParamKind::kFloat:
      return "float";
    case cadence::ParamKind::kBool:
      return "bool";
  }
  return "?";
}

// A spec's number as the field's Python type (1, not 1.0, for an int field).
py::object typed(const cadence::ParamSpec& spec, double value) {
  switch (spec.kind) {
    case cadence::ParamKind::kInt:
      return py::int_(static_cast<long long>(value));
    case cadence::ParamKind::kBool:
      return py::bool_(value != 0.0);
    case cadence::ParamKind::kFloat:
      break;
  }
  return py::float_(value);
}

void bind_param_specs(py::module_& m) {
  using cadence::ParamSpec;
  py::class_<ParamSpec>(m, "ParamSpec",
                        "One option's allowed range and default (the C++ single source).")
      .def_readonly("name", &ParamSpec::name)
      .def_property_readonly("kind", [](const ParamSpec& s) { return kind_name(s.kind); })
      .def_readonly("low", &ParamSpec::low)
      .def_readonly("high", &ParamSpec::high)
      .def_readonly("low_inclusive", &ParamSpec::low_inclusive)
      .def_readonly("high_inclusive", &ParamSpec::high_inclusive)
      .def_property_readonly("default",
                             [](const ParamSpec& s) { return typed(s, s.default_value); })
      .def_property_readonly(
          "off",
          [](const ParamSpec& s) -> py::object { return s.off ? typed(s, *s.off) : py::none(); })
      .def_readonly("note", &ParamSpec::note)
      .def("contains", &ParamSpec::contains, py::arg("value"))
      .def("allowed", &ParamSpec::allowed)
      .def("check", &ParamSpec::check, py::arg("value"))
      .def("__repr__",
           [](const ParamSpec& s) { return "<ParamSpec " + s.name + " " + s.allowed() + ">"; });
  m.def("sampling_param_specs", &cadence::sampling_param_specs,
        "SamplingParams' field specs by name (plus 'logit_bias', the range of each bias).");
  m.def("beam_search_param_specs", &cadence::beam_search_param_specs,
        "BeamSearchParams' field specs by name.");
  m.attr("DEFAULT_MAX_LOGPROBS") = cadence::kDefaultMaxLogprobs;
}

// A config enum as a Python enum whose members are the config names (NormKind.rms_norm) and
// whose str() is the name ("rms_norm"), so strings and enum members read the same.
template <typename Enum>
void bind_enum(py::module_& m, const char* name) {
  py::enum_<Enum> bound(m, name);
  for (const auto& entry : cadence::EnumNames<Enum>::names())
    bound.value(entry.second, entry.first);
  bound.attr("__str__") =
      py::cpp_function([](Enum value) { return cadence::to_string(value); }, py::is_method(bound));
}

// A read/write enum field that also accepts its name as a str, parsed by the one parse
// function (a bad name is InvalidParameterError naming the field and the allowed names).
template <typename Class, typename Enum>
void def_enum_field(py::class_<Class>& bound, const char* name, Enum Class::* member) {
  bound.def_property(
      name, [member](const Class& self) { return self.*member; },
      [member](Class& self, const py::object& value) {
        self.*member = py::isinstance<py::str>(value)
                           ? cadence::parse_enum<Enum>(value.cast<std::string>())
                           : value.cast<Enum>();
      });
}

}  // namespace

void bind_config(py::module_& m) {
  bind_enum<cadence::RopeScalingType>(m, "RopeScalingType");
  bind_enum<cadence::NormKind>(m, "NormKind");
  bind_enum<cadence::Activation>(m, "Activation");
  bind_enum<cadence::PositionKind>(m, "PositionKind");
  bind_enum<cadence::WeightDtype>(m, "WeightDtype");
  bind_enum<cadence::KvCacheDtype>(m, "KvCacheDtype");
  bind_param_specs(m);

  py::class_<RopeScaling> rope_scaling(m, "RopeScaling");
  def_enum_field(rope_scaling, "type", &RopeScaling::type);
  rope_scaling.def(py::init<>())
      .def_readwrite("factor", &RopeScaling::factor)
      .def_readwrite("low_freq_factor", &RopeScaling::low_freq_factor)
      .def_readwrite("high_freq_factor", &RopeScaling::high_freq_factor)
      .def_readwrite("original_max_position_embeddings",
                     &RopeScaling::original_max_position_embeddings)
      .def_readwrite("short_factor", &RopeScaling::short_factor)
      .def_readwrite("long_factor", &RopeScaling::long_factor)
      .def_readwrite("attention_factor", &RopeScaling::attention_factor);

  py::class_<ModelConfig> model_config(m, "ModelConfig");
  def_enum_field(model_config, "norm_kind", &ModelConfig::norm_kind);
  def_enum_field(model_config, "activation", &ModelConfig::activation);
  def_enum_field(model_config, "position_kind", &ModelConfig::position_kind);
  model_config.def(py::init<>())
      .def_readwrite("architecture", &ModelConfig::architecture)
      .def_readwrite("vocab_size", &ModelConfig::vocab_size)
      .def_readwrite("hidden_size", &ModelConfig::hidden_size)
      .def_readwrite("intermediate_size", &ModelConfig::intermediate_size)
      .def_readwrite("num_layers", &ModelConfig::num_layers)
      .def_readwrite("num_heads", &ModelConfig::num_heads)
      .def_readwrite("num_kv_heads", &ModelConfig::num_kv_heads)
      .def_readwrite("head_dim", &ModelConfig::head_dim)
      .def_readwrite("rms_norm_eps", &ModelConfig::rms_norm_eps)
      .def_readwrite("rope_theta", &ModelConfig::rope_theta)
      .def_readwrite("rope_scaling", &ModelConfig::rope_scaling)
      .def_readwrite("rotary_dim", &ModelConfig::rotary_dim)
      .def_readwrite("max_position_embeddings", &ModelConfig::max_position_embeddings)
      .def_readwrite("sliding_window", &ModelConfig::sliding_window)
      .def_readwrite("full_attention_layers", &ModelConfig::full_attention_layers)
      .def_readwrite("tie_word_embeddings", &ModelConfig::tie_word_embeddings)
      .def_readwrite("attention_bias", &ModelConfig::attention_bias)
      .def_readwrite("attention_output_bias", &ModelConfig::attention_output_bias)
      .def_readwrite("mlp_bias", &ModelConfig::mlp_bias)
      .def_readwrite("layer_norm_eps", &ModelConfig::layer_norm_eps)
      .def_readwrite("is_norm_before", &ModelConfig::is_norm_before)
      .def_readwrite("qk_norm", &ModelConfig::qk_norm)
      .def_readwrite("position_offset", &ModelConfig::position_offset)
      .def_readwrite("word_embed_proj_dim", &ModelConfig::word_embed_proj_dim)
      .def_readwrite("embedding_scale", &ModelConfig::embedding_scale)
      .def_readwrite("attention_scale", &ModelConfig::attention_scale)
      .def_readwrite("attn_logit_softcapping", &ModelConfig::attn_logit_softcapping)
      .def_readwrite("final_logit_softcapping", &ModelConfig::final_logit_softcapping)
      .def_readwrite("sandwich_norm", &ModelConfig::sandwich_norm)
      .def_readwrite("norm_weight_offset", &ModelConfig::norm_weight_offset)
      .def_readwrite("eos_token_ids", &ModelConfig::eos_token_ids)
      .def("finalize", &ModelConfig::finalize)
      .def_static("supported_architectures", &ModelConfig::supported_architectures);
  py::class_<cadence::ArchitectureInfo>(m, "ArchitectureInfo",
                                        "One row of the architecture registry.")
      .def_readonly("hf_name", &cadence::ArchitectureInfo::hf_name)
      .def_property_readonly("gguf_name",
                             [](const cadence::ArchitectureInfo& info) -> py::object {
                               if (info.gguf_name.empty()) return py::none();
                               return py::str(info.gguf_name);
                             })
      .def_readonly("family", &cadence::ArchitectureInfo::family)
      .def("__repr__", [](const cadence::ArchitectureInfo& info) {
        return "<ArchitectureInfo " + info.hf_name + ">";
      });
  m.def("architecture_registry", &cadence::architecture_registry,
        "The supported architectures (HF name, GGUF name or None, loader family), in order.");
  m.def("supported_architectures", &ModelConfig::supported_architectures,
        "The registry's HF architecture names, in order.");
  m.def("load_gguf_model_config", &cadence::load_gguf_model_config, py::arg("path"),
        py::call_guard<py::gil_scoped_release>());

  py::class_<SamplingParams>(m, "SamplingParams")
      .def(keyword_constructor<SamplingParams>("SamplingParams"))
      .def_readwrite("n", &SamplingParams::n)
      .def_readwrite("presence_penalty", &SamplingParams::presence_penalty)
      .def_readwrite("frequency_penalty", &SamplingParams::frequency_penalty)
      .def_readwrite("repetition_penalty", &SamplingParams::repetition_penalty)
      .def_readwrite("temperature", &SamplingParams::temperature)
      .def_readwrite("top_p", &SamplingParams::top_p)
      .def_readwrite("top_k", &SamplingParams::top_k)
      .def_readwrite("min_p", &SamplingParams::min_p)
      .def_readwrite("seed", &SamplingParams::seed)
      .def_readwrite("max_tokens", &SamplingParams::max_tokens)
      .def_readwrite("min_tokens", &SamplingParams::min_tokens)
      .def_readwrite("ignore_eos", &SamplingParams::ignore_eos)
      .def_readwrite("stop_token_ids", &SamplingParams::stop_token_ids)
      .def_readwrite("logit_bias", &SamplingParams::logit_bias)
      .def_readwrite("allowed_token_ids", &SamplingParams::allowed_token_ids)
      .def_readwrite("bad_words_token_ids", &SamplingParams::bad_words_token_ids)
      .def_readwrite("logprobs", &SamplingParams::logprobs)
      .def_readwrite("prompt_logprobs", &SamplingParams::prompt_logprobs)
      .def("validate", &SamplingParams::validate, py::arg("vocab_size") = 0,
           py::arg("max_logprobs") = cadence::kDefaultMaxLogprobs);

  using cadence::BeamSearchParams;
  py::class_<BeamSearchParams>(m, "BeamSearchParams")
      .def(keyword_constructor<BeamSearchParams>("BeamSearchParams"))
      .def_readwrite("beam_width", &BeamSearchParams::beam_width)
      .def_readwrite("max_tokens", &BeamSearchParams::max_tokens)
      .def_readwrite("ignore_eos", &BeamSearchParams::ignore_eos)
      .def_readwrite("temperature", &BeamSearchParams::temperature)
      .def_readwrite("length_penalty", &BeamSearchParams::length_penalty)
      .def("validate", &BeamSearchParams::validate, py::arg("max_beam_width"));

  py::class_<EngineConfig> engine_config(m, "EngineConfig");
  def_enum_field(engine_config, "weight_dtype", &EngineConfig::weight_dtype);
  def_enum_field(engine_config, "kv_cache_dtype", &EngineConfig::kv_cache_dtype);
  engine_config.def(py::init<>())
      .def_readwrite("model_path", &EngineConfig::model_path)
      .def_readwrite("model_config", &EngineConfig::model_config)
      .def_readwrite("quantization", &EngineConfig::quantization)
      .def_readwrite("block_size", &EngineConfig::block_size)
      .def_readwrite("enable_prefix_caching", &EngineConfig::enable_prefix_caching)
      .def_readwrite("profile", &EngineConfig::profile)
      .def_readwrite("kv_cache_memory_bytes", &EngineConfig::kv_cache_memory_bytes)
      .def_readwrite("max_num_seqs", &EngineConfig::max_num_seqs)
      .def_readwrite("max_num_batched_tokens", &EngineConfig::max_num_batched_tokens)
      .def_readwrite("max_model_len", &EngineConfig::max_model_len)
      .def_readwrite("num_threads", &EngineConfig::num_threads)
      .def_readwrite("seed", &EngineConfig::seed)
      .def_readwrite("max_logprobs", &EngineConfig::max_logprobs);
}
