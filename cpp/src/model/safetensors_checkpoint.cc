#include "model/safetensors_checkpoint.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "util/json.h"

namespace cadence {

namespace {

TensorType parse_dtype(const std::string& dtype, const std::string& tensor,
                       const std::string& file) {
  if (dtype == "F32") return TensorType::kF32;
  if (dtype == "F16") return TensorType::kF16;
  if (dtype == "BF16") return TensorType::kBF16;
  throw std::runtime_error("tensor '" + tensor + "' in " + file + " has dtype " + dtype +
                           "; supported: F32, F16, BF16");
}

}  // namespace

SafetensorsCheckpoint::SafetensorsCheckpoint(const std::string& path) : Checkpoint(path) {
  namespace fs = std::filesystem;
  std::vector<std::string> files;
  if (fs::is_directory(path)) {
    for (const auto& entry : fs::directory_iterator(path)) {
      if (entry.path().extension() == ".safetensors") files.push_back(entry.path().string());
    }
    std::sort(files.begin(), files.end());
  } else if (fs::is_regular_file(path)) {
    files.push_back(path);
  }
  if (files.empty()) {
    throw std::runtime_error("no .safetensors files found at " + path);
  }
  for (const auto& file : files) load_file(file);
}

void SafetensorsCheckpoint::load_file(const std::string& file_path) {
  files_.push_back(std::make_shared<MappedFile>(file_path));
  const MappedFile& file = *files_.back();
  if (file.size_bytes() < 8) throw std::runtime_error(file_path + " is too short for safetensors");
  uint64_t header_bytes = 0;
  std::memcpy(&header_bytes, file.data(), 8);
  if (header_bytes > file.size_bytes() - 8) {
    throw std::runtime_error(file_path + ": safetensors header length " +
                             std::to_string(header_bytes) + " exceeds the file size");
  }
  const json::Value header =
      json::parse(std::string_view(reinterpret_cast<const char*>(file.data()) + 8, header_bytes));
  if (!header.is_object()) throw std::runtime_error(file_path + ": header is not a JSON object");
  const uint8_t* data_begin = file.data() + 8 + header_bytes;
  const size_t data_bytes = file.size_bytes() - 8 - header_bytes;
  for (const auto& [name, info] : header.object) {
    if (name == "__metadata__") continue;
    const json::Value* dtype = info.find("dtype");
    const json::Value* shape = info.find("shape");
    const json::Value* offsets = info.find("data_offsets");
    if (dtype == nullptr || shape == nullptr || offsets == nullptr || !dtype->is_string() ||
        !shape->is_array() || !offsets->is_array() || offsets->array.size() != 2) {
      throw std::runtime_error(file_path + ": malformed header entry for '" + name + "'");
    }
    TensorRef tensor;
    tensor.name = name;
    tensor.source_name = name;
    tensor.type = parse_dtype(dtype->string, name, file_path);
    for (const auto& dim : shape->array) tensor.shape.push_back(static_cast<int64_t>(dim.number));
    const auto begin = static_cast<size_t>(offsets->array[0].number);
    const auto end = static_cast<size_t>(offsets->array[1].number);
    if (end < begin || end > data_bytes ||
        static_cast<int64_t>(end - begin) != tensor_bytes(tensor.type, tensor.num_elements())) {
      throw std::runtime_error(file_path + ": data_offsets of '" + name +
                               "' do not match its shape or the file size");
    }
    tensor.data = data_begin + begin;
    add_tensor(std::move(tensor), file.size_bytes(), file.data());
  }
}

}  // namespace cadence
