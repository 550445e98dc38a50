#include "kernels/cpu/quantize_acts.h"

#include <cmath>

namespace cadence::kernels::cpu {
namespace {

constexpr int64_t kActBlock = 32;

// round half to even for |x| < 2^22 (adding and removing 1.5 * 2^23 leaves the integer part,
// rounded in the current (nearest-even) mode), then clamped to [-127, 127]; NaN -> -127.
// Written branch-free (compare-selects the compiler turns into minps / maxps) so that the
// loops vectorize with the baseline flags.
inline int8_t to_code(float x) {
  const float magic = 12582912.0f;
  float r = (x + magic) - magic;
  r = r >= -127.0f ? r : -127.0f;
  r = r <= 127.0f ? r : 127.0f;
  return static_cast<int8_t>(static_cast<int32_t>(r));
}

}  // namespace

void quantize_activation_rows(const float* a, int64_t lda, int64_t k, int64_t block_cols,
                              const QuantizedActsOut& out, int64_t row_begin, int64_t row_end) {
  const int64_t per_act_block = kActBlock / block_cols;  // weight blocks per activation block
  for (int64_t row = row_begin; row < row_end; ++row) {
    const float* x = a + row * lda;
    int8_t* codes = out.codes + row * out.ld_codes;
    float* scales = out.scales + row * out.ld_blocks;
    float* sums = out.scaled_sums + row * out.ld_blocks;
    for (int64_t c = 0; c < k; c += kActBlock) {
      // max |x| in 8 independent lanes (max is exact, so the order does not matter; NaNs
      // are skipped, the comparison being false), which the compiler vectorizes.
      float lanes[8] = {};
      for (int64_t i = 0; i < kActBlock; i += 8) {
        for (int j = 0; j < 8; ++j) {
          const float v = std::fabs(x[c + i + j]);
          lanes[j] = v > lanes[j] ? v : lanes[j];
        }
      }
      float amax = 0.0f;
      for (float v : lanes) amax = v > amax ? v : amax;
      const float scale = amax / 127.0f;
      const float inverse = scale > 0.0f ? 1.0f / scale : 0.0f;
      for (int64_t i = 0; i < kActBlock; ++i) {
        const float scaled = x[c + i] * inverse;
        codes[c + i] = to_code(scaled);
      }
      for (int64_t j = 0; j < per_act_block; ++j) {
        const int64_t b = c / block_cols + j;
        int32_t sum = 0;
        for (int64_t i = 0; i < block_cols; ++i) sum += codes[b * block_cols + i];
        scales[b] = scale;
        sums[b] = scale * static_cast<float>(sum);
      }
    }
  }
}

}  // namespace cadence::kernels::cpu
