#include "model/gguf_file.h"

#include <cstring>
#include <stdexcept>

namespace cadence {

namespace {

// GGUF metadata value type ids.
enum GgufType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

constexpr uint64_t kMaxStringBytes = 1ull << 30;
constexpr uint64_t kMaxDims = 8;
// Bounds the element count so byte counts (at most 8 bytes per element) fit in int64.
constexpr uint64_t kMaxElements = 1ull << 56;

class Reader {
 public:
  Reader(const MappedFile& file) : file_(file) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error("corrupt GGUF file " + file_.path() + " at byte " +
                             std::to_string(pos_) + ": " + what);
  }
  void need(uint64_t n) const {
    if (n > file_.size_bytes() || pos_ > file_.size_bytes() - n) fail("unexpected end of file");
  }
  template <typename T>
  T read() {
    need(sizeof(T));
    T value;
    std::memcpy(&value, file_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }
  std::string read_string() {
    const uint64_t length = read<uint64_t>();
    if (length > kMaxStringBytes) fail("string length " + std::to_string(length));
    need(length);
    std::string out(reinterpret_cast<const char*>(file_.data() + pos_), length);
    pos_ += length;
    return out;
  }
  void skip(uint64_t n) {
    need(n);
    pos_ += n;
  }
  uint64_t pos() const { return pos_; }

  GgufValue read_value(uint32_t type, int depth) {
    GgufValue value;
    switch (type) {
      case kUint8:
        value.int_value = read<uint8_t>();
        break;
      case kInt8:
        value.int_value = read<int8_t>();
        break;
      case kUint16:
        value.int_value = read<uint16_t>();
        break;
      case kInt16:
        value.int_value = read<int16_t>();
        break;
      case kUint32:
        value.int_value = read<uint32_t>();
        break;
      case kInt32:
        value.int_value = read<int32_t>();
        break;
      case kUint64:
        value.int_value = static_cast<int64_t>(read<uint64_t>());
        break;
      case kInt64:
        value.int_value = read<int64_t>();
        break;
      case kFloat32:
        value.kind = GgufValue::Kind::kFloat;
        value.float_value = read<float>();
        break;
      case kFloat64:
        value.kind = GgufValue::Kind::kFloat;
        value.float_value = read<double>();
        break;
      case kBool:
        value.kind = GgufValue::Kind::kBool;
        value.int_value = read<uint8_t>() != 0;
        break;
      case kString:
        value.kind = GgufValue::Kind::kString;
        value.string_value = read_string();
        break;
      case kArray: {
        if (depth > 2) fail("arrays nested too deep");
        value.kind = GgufValue::Kind::kArray;
        const uint32_t element_type = read<uint32_t>();
        const uint64_t length = read<uint64_t>();
        if (length > file_.size_bytes()) fail("array length " + std::to_string(length));
        value.array_length = static_cast<int64_t>(length);
        for (uint64_t i = 0; i < length; ++i) {
          if (element_type == kString) {
            skip(read<uint64_t>());  // vocabularies: only the count is kept
          } else {
            value.array_values.push_back(read_value(element_type, depth + 1));
          }
        }
        break;
      }
      default:
        fail("unknown metadata value type " + std::to_string(type));
    }
    return value;
  }

 private:
  const MappedFile& file_;
  uint64_t pos_ = 0;
};

}  // namespace

GgufFile::GgufFile(const std::string& path) : file_(std::make_shared<MappedFile>(path)) {
  Reader reader(*file_);
  if (file_->size_bytes() < 4 || std::memcmp(file_->data(), "GGUF", 4) != 0) {
    throw std::runtime_error(path + " is not a GGUF file (bad magic)");
  }
  reader.skip(4);
  version_ = reader.read<uint32_t>();
  if (version_ != 2 && version_ != 3) {
    throw std::runtime_error(path + ": unsupported GGUF version " + std::to_string(version_) +
                             " (supported: 2, 3)");
  }
  const uint64_t num_tensors = reader.read<uint64_t>();
  const uint64_t num_metadata = reader.read<uint64_t>();
  if (num_tensors > file_->size_bytes() || num_metadata > file_->size_bytes()) {
    reader.fail("implausible tensor or metadata count");
  }
  for (uint64_t i = 0; i < num_metadata; ++i) {
    std::string key = reader.read_string();
    const uint32_t type = reader.read<uint32_t>();
    metadata_[key] = reader.read_value(type, 0);
  }
  for (uint64_t i = 0; i < num_tensors; ++i) {
    GgufTensorInfo info;
    info.name = reader.read_string();
    const uint32_t num_dims = reader.read<uint32_t>();
    if (num_dims == 0 || num_dims > kMaxDims) {
      reader.fail("tensor '" + info.name + "' has " + std::to_string(num_dims) + " dims");
    }
    info.num_elements = 1;
    for (uint32_t d = 0; d < num_dims; ++d) {
      const uint64_t dim = reader.read<uint64_t>();
      if (dim == 0 || dim > (1ull << 40)) reader.fail("tensor '" + info.name + "' bad dim");
      if (static_cast<uint64_t>(info.num_elements) > kMaxElements / dim) {
        reader.fail("tensor '" + info.name + "' has more than 2^56 elements");
      }
      info.dims.push_back(static_cast<int64_t>(dim));
      info.num_elements *= static_cast<int64_t>(dim);
    }
    info.type_id = reader.read<uint32_t>();
    info.offset = reader.read<uint64_t>();
    tensor_infos_.push_back(std::move(info));
  }
  uint64_t alignment = 32;
  if (const GgufValue* value = find("general.alignment")) {
    alignment = static_cast<uint64_t>(value->int_value);
    if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
      reader.fail("general.alignment must be a power of two");
    }
  }
  data_offset_ = (reader.pos() + alignment - 1) / alignment * alignment;
  if (data_offset_ > file_->size_bytes()) reader.fail("data section starts past end of file");
}

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = metadata_.find(key);
  return it == metadata_.end() ? nullptr : &it->second;
}

int64_t GgufFile::get_int(const std::string& key) const {
  const GgufValue* value = find(key);
  if (value == nullptr || value->kind != GgufValue::Kind::kInt) {
    throw std::runtime_error(path() + ": missing integer metadata '" + key + "'");
  }
  return value->int_value;
}

double GgufFile::get_float(const std::string& key) const {
  const GgufValue* value = find(key);
  if (value != nullptr && value->kind == GgufValue::Kind::kFloat) return value->float_value;
  if (value != nullptr && value->kind == GgufValue::Kind::kInt) {
    return static_cast<double>(value->int_value);
  }
  throw std::runtime_error(path() + ": missing numeric metadata '" + key + "'");
}

std::string GgufFile::get_string(const std::string& key) const {
  const GgufValue* value = find(key);
  if (value == nullptr || value->kind != GgufValue::Kind::kString) {
    throw std::runtime_error(path() + ": missing string metadata '" + key + "'");
  }
  return value->string_value;
}

}  // namespace cadence
