// One step's flattened batch, as the model runner hands it to a model.
//
//   rows:        [ seq0 tokens | seq1 tokens | ... ]       num_tokens rows
//   query_start: 0, len0, len0+len1, ...                     num_seqs + 1
//   logits_rows: the rows whose next-token logits are wanted (one per sampling seq)
#pragma once

#include <cstdint>
#include <vector>

namespace cadence {

struct ForwardBatch {
  std::vector<int32_t> token_ids;     // num_tokens
  std::vector<int32_t> positions;     // num_tokens, position of each token in its sequence
  std::vector<int32_t> slot_mapping;  // num_tokens, block_id * block_size + offset
  std::vector<int32_t> query_start;   // num_seqs + 1
  std::vector<int32_t> context_lens;  // num_seqs, tokens in cache after this step
  // num_seqs prompt lengths, or empty (then context_lens stands in). LongRoPE picks its
  // factors by max(prompt length, context length), so a chunked prefill of a long prompt
  // uses the same table for every chunk.
  std::vector<int32_t> prompt_lens;
  std::vector<int32_t> block_tables;  // num_seqs * max_blocks_per_seq, padded with 0
  int64_t max_blocks_per_seq = 0;
  std::vector<int32_t> logits_rows;  // rows to compute logits for, in output order

  int64_t num_tokens() const { return static_cast<int64_t>(token_ids.size()); }
  int64_t num_seqs() const { return static_cast<int64_t>(context_lens.size()); }
};

}  // namespace cadence
