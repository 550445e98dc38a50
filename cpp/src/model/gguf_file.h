// Parser for GGUF (v2, v3) headers: metadata key/values and tensor infos, over a
// memory-mapped file. Every read is bounds-checked; a corrupt or truncated file gives
// a std::runtime_error naming the file and what was wrong, never a crash.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "util/mapped_file.h"

namespace cadence {

struct GgufValue {
  enum class Kind { kInt, kFloat, kBool, kString, kArray };
  Kind kind = Kind::kInt;
  int64_t int_value = 0;
  double float_value = 0.0;
  std::string string_value;
  // Arrays: the element count always; numeric elements are kept (as int or float),
  // string elements are skipped (tokenizer vocabularies are read by the Python side).
  int64_t array_length = 0;
  std::vector<GgufValue> array_values;
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> dims;  // GGML order: dims[0] is the innermost (row length)
  int64_t num_elements = 0;   // product of dims (checked not to overflow)
  uint32_t type_id = 0;
  uint64_t offset = 0;  // from the start of the data section
};

class GgufFile {
 public:
  explicit GgufFile(const std::string& path);

  const std::string& path() const { return file_->path(); }
  uint32_t version() const { return version_; }
  const std::map<std::string, GgufValue>& metadata() const { return metadata_; }
  const std::vector<GgufTensorInfo>& tensor_infos() const { return tensor_infos_; }
  const uint8_t* data_section() const { return file_->data() + data_offset_; }
  uint64_t data_offset_bytes() const { return data_offset_; }  // from the start of the file
  const MappedFile& file() const { return *file_; }
  std::shared_ptr<MappedFile> shared_file() const { return file_; }

  const GgufValue* find(const std::string& key) const;
  // Typed lookups; throw std::runtime_error naming the key and file when absent/mistyped.
  int64_t get_int(const std::string& key) const;
  double get_float(const std::string& key) const;  // ints are accepted too
  std::string get_string(const std::string& key) const;

 private:
  std::shared_ptr<MappedFile> file_;
  uint32_t version_ = 0;
  std::map<std::string, GgufValue> metadata_;
  std::vector<GgufTensorInfo> tensor_infos_;
  uint64_t data_offset_ = 0;
};

}  // namespace cadence
