// Read access to a checkpoint's tensors under their HF names, whatever the file format.
//
//   Checkpoint::open("model.gguf")        GGUF v2/v3: names translated to HF names,
//                                         llama.cpp's q/k row permutation undone
//   Checkpoint::open("dir/")              *.safetensors (mmap), HF names as stored
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kernels/quantized_rows.h"
#include "model/tensor_types.h"
#include "util/mapped_file.h"

namespace cadence {

struct TensorRef {
  std::string name;         // HF name
  std::string source_name;  // name inside the file
  TensorType type = TensorType::kF32;
  std::vector<int64_t> shape;  // row-major, outermost first (HF order)
  const uint8_t* data = nullptr;
  int64_t num_elements() const;
};

class Checkpoint {
 public:
  static std::unique_ptr<Checkpoint> open(const std::string& path);
  virtual ~Checkpoint() = default;

  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  // Throws std::runtime_error naming the tensor (and the file) when absent.
  const TensorRef& get(const std::string& name) const;
  // Dequantizes/converts the tensor to fp32. expected_shape is checked when non-empty
  // (the error names the tensor and both shapes).
  virtual std::vector<float> read_float(const std::string& name,
                                        const std::vector<int64_t>& expected_shape) const;
  // Whether the tensor is stored in a quantized block type (tensor_types.h to_codes).
  bool is_quantized(const std::string& name) const;
  // A quantized 2-D tensor [rows, cols] as codes, scales and mins, rows in HF order (the same
  // rows read_float gives). Throws std::runtime_error naming the tensor when it is not quantized
  // or its shape differs from expected_shape ([rows, cols]).
  virtual kernels::QuantizedRows read_codes(const std::string& name,
                                            const std::vector<int64_t>& expected_shape) const;
  const std::string& path() const { return path_; }
  const std::map<std::string, TensorRef>& tensors() const { return tensors_; }

 protected:
  explicit Checkpoint(std::string path) : path_(std::move(path)) {}
  void add_tensor(TensorRef tensor, size_t file_size_bytes, const uint8_t* file_begin);
  const TensorRef& get_checked(const std::string& name,
                               const std::vector<int64_t>& expected_shape) const;
  // Drops the tensor's file pages from memory once it has been converted (MappedFile::release).
  void release(const TensorRef& tensor) const;

  std::string path_;
  std::map<std::string, TensorRef> tensors_;
  std::vector<std::shared_ptr<MappedFile>> files_;  // keeps the mapped data alive
};

std::string shape_to_string(const std::vector<int64_t>& shape);

}  // namespace cadence
