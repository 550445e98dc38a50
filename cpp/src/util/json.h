// A small JSON reader for file headers (safetensors). Parses the full grammar into a
// tree; numbers are kept as double. Throws std::runtime_error with the byte offset on
// malformed input. Not meant for large documents.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace cadence::json {

struct Value {
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };
  Kind kind = Kind::kNull;
  bool boolean = false;
  double number = 0.0;
  std::string string;
  std::vector<Value> array;
  std::map<std::string, Value> object;

  bool is_object() const { return kind == Kind::kObject; }
  bool is_array() const { return kind == Kind::kArray; }
  bool is_string() const { return kind == Kind::kString; }
  bool is_number() const { return kind == Kind::kNumber; }
  // nullptr when absent or not an object.
  const Value* find(const std::string& key) const;
};

Value parse(std::string_view text);

}  // namespace cadence::json
