// Every *.safetensors file of an HF model directory (or a single .safetensors file),
// memory-mapped. Supported dtypes: F32, F16, BF16.
#pragma once

#include <string>

#include "model/checkpoint.h"

namespace cadence {

class SafetensorsCheckpoint : public Checkpoint {
 public:
  // Throws std::runtime_error naming the path when nothing loadable is there.
  explicit SafetensorsCheckpoint(const std::string& path);

 private:
  void load_file(const std::string& file_path);
};

}  // namespace cadence
