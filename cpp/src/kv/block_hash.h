// Identity of a full KV block for the prefix cache.
//
// A block's keys and values depend on every token before it, so its identity is a chain:
//
//   hash(block i) = SHA-256("cadence.kv.v1", hash(block i-1) or nothing for i = 0,
//                           the block's block_size token ids, extra key)
//
// Two blocks with equal hashes hold equal token prefixes (SHA-256 is collision resistant:
// finding two prompts whose block hashes collide costs ~2^128 work), so a hit can reuse the
// cached keys and values as they are. The extra key carries what besides the tokens changes
// the keys and values or must separate tenants: the request's cache_salt enters the first block
// only (it then reaches every block through the chain), so requests with different salts never
// share a block.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace cadence {

struct BlockHash {
  std::array<uint8_t, 32> bytes{};
  bool operator==(const BlockHash& other) const { return bytes == other.bytes; }
  bool operator!=(const BlockHash& other) const { return !(*this == other); }
};

// For hash maps: the digest is uniformly distributed, so its first bytes are a fine bucket key.
struct BlockHashHasher {
  size_t operator()(const BlockHash& hash) const {
    size_t value;
    std::memcpy(&value, hash.bytes.data(), sizeof(value));
    return value;
  }
};

// The hash of a full block of `num_tokens` token ids following `parent` (nullptr for the first
// block of a sequence); `extra_key` is mixed in with its length, so "" and no key agree.
BlockHash hash_block(const BlockHash* parent, const int32_t* tokens, int64_t num_tokens,
                     std::string_view extra_key);

}  // namespace cadence
