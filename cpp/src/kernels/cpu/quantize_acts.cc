#include "kernels/cpu/quantize_acts.h"

#include <cmath>

namespace cadence::kernels::cpu {
namespace {

constexpr int64_t kActBlock = 32;

// round half to even for |x| < 2^22 (adding and removing 1.5 * 2^23 leaves the integer part,
// rounded in the current (nearest-even) mode), then clamped to [-127, 127]; NaN -> -127.
inline int8_t to_code(float x) {
  const float magic = 12582912.0f;
  float r = (x + magic) - magic;
  if (!(r >= -127.0f)) r = -127.0f;
  if (r > 127.0f) r = 127.0f;
  return static_cast<int8_t>(r);
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
      float amax = 0.0f;
      for (int64_t i = 0; i < kActBlock; ++i) amax = std::fmax(amax, std::fabs(x[c + i]));
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
