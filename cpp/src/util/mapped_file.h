// A read-only memory map of a whole file. Throws std::runtime_error naming the path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace cadence {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size_bytes() const { return size_bytes_; }
  const std::string& path() const { return path_; }
  // Lets the OS drop the resident pages that lie wholly inside [begin, begin + num_bytes) (a
  // range of this mapping); reading them again faults them back in from the file. The loaders
  // call it after converting a tensor, so the file's pages do not add to the peak memory.
  void release(const uint8_t* begin, size_t num_bytes) const;

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_bytes_ = 0;
};

}  // namespace cadence
