#include "kv/block_hash.h"

#include <algorithm>

#include "util/sha256.h"

namespace cadence {

namespace {

void update_u64(Sha256& hasher, uint64_t value) {
  uint8_t bytes[8];
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<uint8_t>(value >> (8 * i));
  hasher.update(bytes, sizeof(bytes));
}

}  // namespace

BlockHash hash_block(const BlockHash* parent, const int32_t* tokens, int64_t num_tokens,
                     std::string_view extra_key) {
  // Every field is length-prefixed or fixed-size, so no two inputs serialize alike.
  static constexpr char kDomain[] = "cadence.kv.v1";
  Sha256 hasher;
  hasher.update(kDomain, sizeof(kDomain) - 1);
  const uint8_t has_parent = parent != nullptr ? 1 : 0;
  hasher.update(&has_parent, 1);
  if (parent != nullptr) hasher.update(parent->bytes.data(), parent->bytes.size());
  update_u64(hasher, static_cast<uint64_t>(num_tokens));
  uint8_t chunk[256];  // token ids as little-endian uint32, 64 at a time
  for (int64_t begin = 0; begin < num_tokens; begin += 64) {
    const int64_t end = std::min<int64_t>(num_tokens, begin + 64);
    for (int64_t i = begin; i < end; ++i) {
      const auto token = static_cast<uint32_t>(tokens[i]);
      uint8_t* out = chunk + 4 * (i - begin);
      out[0] = static_cast<uint8_t>(token);
      out[1] = static_cast<uint8_t>(token >> 8);
      out[2] = static_cast<uint8_t>(token >> 16);
      out[3] = static_cast<uint8_t>(token >> 24);
    }
    hasher.update(chunk, static_cast<size_t>(4 * (end - begin)));
  }
  update_u64(hasher, extra_key.size());
  hasher.update(extra_key.data(), extra_key.size());
  BlockHash hash;
  hash.bytes = hasher.finish();
  return hash;
}

}  // namespace cadence
