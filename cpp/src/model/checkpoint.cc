#include "model/checkpoint.h"

#include <stdexcept>

#include "model/gguf_checkpoint.h"
#include "model/safetensors_checkpoint.h"

namespace cadence {

int64_t TensorRef::num_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_to_string(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

std::unique_ptr<Checkpoint> Checkpoint::open(const std::string& path) {
  const std::string suffix = ".gguf";
  if (path.size() >= suffix.size() &&
      path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0) {
    return std::make_unique<GgufCheckpoint>(path);
  }
  return std::make_unique<SafetensorsCheckpoint>(path);
}

const TensorRef& Checkpoint::get(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) {
    throw std::runtime_error("tensor '" + name + "' not found in " + path_);
  }
  return it->second;
}

const TensorRef& Checkpoint::get_checked(const std::string& name,
                                         const std::vector<int64_t>& expected_shape) const {
  const TensorRef& tensor = get(name);
  if (!expected_shape.empty() && tensor.shape != expected_shape) {
    throw std::runtime_error("tensor '" + name + "' in " + path_ + " has shape " +
                             shape_to_string(tensor.shape) + ", expected " +
                             shape_to_string(expected_shape));
  }
  return tensor;
}

bool Checkpoint::is_quantized(const std::string& name) const {
  return tensor_type_traits(get(name).type).to_codes != nullptr;
}

kernels::QuantizedRows Checkpoint::read_codes(const std::string& name,
                                              const std::vector<int64_t>& expected_shape) const {
  const TensorRef& tensor = get_checked(name, expected_shape);
  const TensorTypeTraits& traits = tensor_type_traits(tensor.type);
  if (traits.to_codes == nullptr || tensor.shape.size() != 2) {
    throw std::runtime_error("tensor '" + name + "' in " + path_ + " (" + traits.name + ", shape " +
                             shape_to_string(tensor.shape) + ") is not a quantized matrix");
  }
  kernels::QuantizedRows rows;
  rows.resize(tensor.shape[0], tensor.shape[1], traits.code_block);
  traits.to_codes(tensor.data, tensor.num_elements(), rows.codes.data(), rows.scales.data(),
                  rows.mins.data());
  release(tensor);
  return rows;
}

std::vector<float> Checkpoint::read_float(const std::string& name,
                                          const std::vector<int64_t>& expected_shape) const {
  const TensorRef& tensor = get_checked(name, expected_shape);
  std::vector<float> out(static_cast<size_t>(tensor.num_elements()));
  tensor_type_traits(tensor.type).to_float(tensor.data, out.data(), tensor.num_elements());
  release(tensor);
  return out;
}

void Checkpoint::release(const TensorRef& tensor) const {
  const auto num_bytes = static_cast<size_t>(tensor_bytes(tensor.type, tensor.num_elements()));
  for (const auto& file : files_) file->release(tensor.data, num_bytes);
}

void Checkpoint::add_tensor(TensorRef tensor, size_t file_size_bytes, const uint8_t* file_begin) {
  const int64_t num_bytes = tensor_bytes(tensor.type, tensor.num_elements());
  const auto offset = static_cast<size_t>(tensor.data - file_begin);
  if (tensor.data < file_begin || offset + static_cast<size_t>(num_bytes) > file_size_bytes) {
    throw std::runtime_error("tensor '" + tensor.source_name + "' in " + path_ +
                             " extends past the end of the file (truncated?)");
  }
  std::string name = tensor.name;
  tensors_[name] = std::move(tensor);
}

}  // namespace cadence
