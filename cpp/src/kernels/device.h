// Where memory lives and kernels run: the host CPU, or one CUDA GPU.
#pragma once

#include <string>

namespace cadence::kernels {

enum class DeviceType { kCpu, kCuda };

struct Device {
  DeviceType type = DeviceType::kCpu;
  int index = 0;  // which GPU (kCuda); 0 for the CPU

  bool operator==(const Device& other) const { return type == other.type && index == other.index; }
  bool operator!=(const Device& other) const { return !(*this == other); }
};

constexpr Device kCpuDevice{DeviceType::kCpu, 0};

// "cpu", "cuda:0", ...
inline std::string device_name(const Device& device) {
  return device.type == DeviceType::kCpu ? "cpu" : "cuda:" + std::to_string(device.index);
}

}  // namespace cadence::kernels
