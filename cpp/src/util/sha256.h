// SHA-256 (FIPS 180-4), incremental. Used for the prefix cache's block hashes, where a collision
// would hand one prompt's keys and values to another: a 256-bit cryptographic hash makes that
// infeasible even for a client choosing prompts on purpose.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace cadence {

using Sha256Digest = std::array<uint8_t, 32>;

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t num_bytes);
  // The digest of everything passed to update(). The object must not be used afterwards.
  Sha256Digest finish();

 private:
  void compress(const uint8_t* block);

  std::array<uint32_t, 8> state_;
  std::array<uint8_t, 64> buffer_{};
  size_t buffer_size_ = 0;
  uint64_t total_bytes_ = 0;
};

inline Sha256Digest sha256(const void* data, size_t num_bytes) {
  Sha256 hasher;
  hasher.update(data, num_bytes);
  return hasher.finish();
}

}  // namespace cadence
