// The one table of names per config enum (cadence/config_enums.h).
#include "cadence/config_enums.h"

namespace cadence {

const std::vector<std::pair<RopeScalingType, const char*>>& EnumNames<RopeScalingType>::names() {
  static const std::vector<std::pair<RopeScalingType, const char*>> kNames = {
      {RopeScalingType::kDefault, "default"},
      {RopeScalingType::kLinear, "linear"},
      {RopeScalingType::kLlama3, "llama3"},
      {RopeScalingType::kLongrope, "longrope"},
  };
  return kNames;
}

const std::vector<std::pair<NormKind, const char*>>& EnumNames<NormKind>::names() {
  static const std::vector<std::pair<NormKind, const char*>> kNames = {
      {NormKind::kRmsNorm, "rms_norm"},
      {NormKind::kLayerNorm, "layer_norm"},
  };
  return kNames;
}

const std::vector<std::pair<Activation, const char*>>& EnumNames<Activation>::names() {
  static const std::vector<std::pair<Activation, const char*>> kNames = {
      {Activation::kSilu, "silu"},
      {Activation::kGeluTanhGated, "gelu_tanh_gated"},
      {Activation::kGeluTanh, "gelu_tanh"},
      {Activation::kRelu, "relu"},
  };
  return kNames;
}

const std::vector<std::pair<PositionKind, const char*>>& EnumNames<PositionKind>::names() {
  static const std::vector<std::pair<PositionKind, const char*>> kNames = {
      {PositionKind::kRope, "rope"},
      {PositionKind::kLearned, "learned"},
  };
  return kNames;
}

const std::vector<std::pair<WeightDtype, const char*>>& EnumNames<WeightDtype>::names() {
  static const std::vector<std::pair<WeightDtype, const char*>> kNames = {
      {WeightDtype::kFloat32, "float32"},
      {WeightDtype::kBfloat16, "bfloat16"},
      {WeightDtype::kFloat16, "float16"},
      {WeightDtype::kNative, "native"},
  };
  return kNames;
}

const std::vector<std::pair<KvCacheDtype, const char*>>& EnumNames<KvCacheDtype>::names() {
  static const std::vector<std::pair<KvCacheDtype, const char*>> kNames = {
      {KvCacheDtype::kAuto, "auto"},
      {KvCacheDtype::kFloat32, "float32"},
      {KvCacheDtype::kBfloat16, "bfloat16"},
      {KvCacheDtype::kFloat16, "float16"},
  };
  return kNames;
}

}  // namespace cadence
