// The string-valued options of ModelConfig and EngineConfig as enums, each with one table of
// names (config_enums.cc): the names config.json, GGUF metadata and Python use. parse_enum
// and to_string read that table; nothing else spells the names.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "cadence/errors.h"

namespace cadence {

// RoPE frequency scaling: HF rope_scaling's rope_type ("default", "linear", "llama3",
// "longrope").
enum class RopeScalingType { kDefault, kLinear, kLlama3, kLongrope };
// "rms_norm" | "layer_norm" (LayerNorm with bias).
enum class NormKind { kRmsNorm, kLayerNorm };
// "silu": gated SwiGLU MLP (gate and up, silu(gate) * up, down); "gelu_tanh_gated": the same
// with gelu_tanh(gate) (GeGLU, Gemma); "gelu_tanh" | "relu": plain MLP (fc1, activation, fc2).
enum class Activation { kSilu, kGeluTanhGated, kGeluTanh, kRelu };
// "rope": rotary q/k; "learned": a position table added to the token embeddings.
enum class PositionKind { kRope, kLearned };
// How the weights are stored: "float32", "bfloat16", "float16" or "native" (as the
// checkpoint stores each tensor). See EngineConfig::weight_dtype.
enum class WeightDtype { kFloat32, kBfloat16, kFloat16, kNative };
// How the KV cache stores keys and values: "auto", "float32", "bfloat16", "float16". See
// EngineConfig::kv_cache_dtype.
enum class KvCacheDtype { kAuto, kFloat32, kBfloat16, kFloat16 };

// Per enum: the option's name in errors (kField) and its values' names, in order.
template <typename Enum>
struct EnumNames;

#define CADENCE_ENUM_NAMES(Enum, field)                              \
  template <>                                                        \
  struct EnumNames<Enum> {                                           \
    static constexpr const char* kField = field;                     \
    static const std::vector<std::pair<Enum, const char*>>& names(); \
  }
CADENCE_ENUM_NAMES(RopeScalingType, "rope_scaling.type");
CADENCE_ENUM_NAMES(NormKind, "norm_kind");
CADENCE_ENUM_NAMES(Activation, "activation");
CADENCE_ENUM_NAMES(PositionKind, "position_kind");
CADENCE_ENUM_NAMES(WeightDtype, "weight_dtype");
CADENCE_ENUM_NAMES(KvCacheDtype, "kv_cache_dtype");
#undef CADENCE_ENUM_NAMES

// "a, b, c": the allowed names, as errors list them.
template <typename Enum>
std::string enum_allowed_names() {
  std::string allowed;
  for (const auto& entry : EnumNames<Enum>::names()) {
    allowed += (allowed.empty() ? "" : ", ") + std::string(entry.second);
  }
  return allowed;
}

// The value called `name`. Throws InvalidParameter naming the field and the allowed names:
// "kv_cache_dtype must be one of auto, float32, bfloat16, float16, got 'fp8'".
template <typename Enum>
Enum parse_enum(const std::string& name) {
  for (const auto& entry : EnumNames<Enum>::names()) {
    if (name == entry.second) return entry.first;
  }
  const std::string field = EnumNames<Enum>::kField;
  throw InvalidParameter(
      field, field + " must be one of " + enum_allowed_names<Enum>() + ", got '" + name + "'");
}

template <typename Enum>
const char* to_string(Enum value) {
  for (const auto& entry : EnumNames<Enum>::names()) {
    if (value == entry.first) return entry.second;
  }
  return "?";  // unreachable for a value of the enum
}

}  // namespace cadence
