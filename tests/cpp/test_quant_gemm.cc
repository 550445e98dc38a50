// The quantized GEMM (PackedWeight kQ4 / kQ8 with int8 activations): the record layout, the
// activation quantizer, every ISA path (and the AVX-512 VNNI tile shapes emulated on AVX2)
// against a double-precision reference built from the same codes, bitwise agreement between the
// paths, and bitwise batch / thread invariance.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <vector>

#include "kernel_test_util.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/ops_cpu.h"
#include "kernels/cpu/quantize_acts.h"
#include "kernels/half.h"
#include "kernels/packed_weight.h"
#include "kernels/quantized_rows.h"
#include "test_harness.h"

using cadence::ThreadPool;
using cadence::kernels::PackedWeight;
using cadence::kernels::QuantizedRows;
using cadence::kernels::WeightType;
using cadence::kernels::cpu::KernelTable;
using cadence_test::Rng;
namespace cpu = cadence::kernels::cpu;
namespace kernels = cadence::kernels;

namespace {

constexpr double kEps = 1.0 / (1 << 24);  // fp32 unit roundoff

enum class Codes { kNibbles, kSixBits, kFullBytes };

// Random codes of the given range with scales exact in fp16 (f16_scales) or arbitrary fp32.
QuantizedRows random_rows(Rng& rng, int64_t rows, int64_t cols, int64_t block, Codes codes,
                          bool f16_scales) {
  QuantizedRows q;
  q.resize(rows, cols, block);
  const int max_code = codes == Codes::kNibbles ? 15 : codes == Codes::kSixBits ? 63 : 255;
  for (auto& c : q.codes) c = static_cast<uint8_t>(rng.next() % (max_code + 1));
  for (size_t i = 0; i < q.scales.size(); ++i) {
    float s = rng.uniform(0.001f, 0.05f);
    float m = rng.uniform(-1.0f, 1.0f) * s * max_code / 2;
    if (f16_scales) {
      s = kernels::f16_to_float(kernels::float_to_f16(s));
      m = kernels::f16_to_float(kernels::float_to_f16(m));
    }
    q.scales[i] = s;
    q.mins[i] = m;
  }
  return q;
}

float dequant(const QuantizedRows& q, int64_t r, int64_t k) {
  const int64_t b = r * q.blocks_per_row() + k / q.block_cols;
  return std::fma(q.scales[b], static_cast<float>(q.codes[r * q.num_cols + k]), q.mins[b]);
}

TEST(pack_quantized_layout_and_unpack) {
  Rng rng(1);
  for (Codes codes : {Codes::kNibbles, Codes::kSixBits, Codes::kFullBytes}) {
    for (int64_t block : {16, 32}) {
      for (bool f16 : {true, false}) {
        const QuantizedRows q = random_rows(rng, 21, 96, block, codes, f16);
        const PackedWeight p = PackedWeight::pack_quantized(q);
        CHECK(p.type() == (codes == Codes::kNibbles ? WeightType::kQ4 : WeightType::kQ8));
        CHECK(p.codes_fit_7_bits() == (codes != Codes::kFullBytes));
        CHECK(p.has_f16_scales() == f16);
        CHECK(p.block_cols() == block && p.num_panels() == 2);
        CHECK(reinterpret_cast<uintptr_t>(p.panel(0)) % 64 == 0);
        CHECK(p.size_bytes() == 2 * (96 / block) * p.record_bytes());
        std::vector<float> row(96);
        int num_bad = 0;
        for (int64_t r = 0; r < 21; ++r) {
          p.unpack_row(r, row.data());
          for (int64_t k = 0; k < 96; ++k) num_bad += row[k] != dequant(q, r, k);
        }
        CHECK(num_bad == 0);
      }
    }
  }
  QuantizedRows bad;
  bad.resize(2, 48, 16);
  bad.block_cols = 24;
  CHECK_THROWS(PackedWeight::pack_quantized(bad));
}

TEST(int8_weight_quantizer_and_stacking) {
  Rng rng(2);
  const std::vector<float> w = rng.uniform_vector(5 * 64);
  const QuantizedRows q = kernels::quantize_rows_int8(w.data(), 5, 64, 64);
  CHECK(q.block_cols == 32 && q.max_code() <= 255);
  for (int64_t r = 0; r < 5; ++r) {
    for (int64_t k = 0; k < 64; ++k) {
      const float scale = q.scales[r * 2 + k / 32];
      // Symmetric rounding to the nearest level: at most half a step off.
      CHECK(std::fabs(dequant(q, r, k) - w[r * 64 + k]) <= 0.5f * scale * (1 + 1e-5f));
      CHECK(kernels::f16_to_float(kernels::float_to_f16(scale)) == scale);
    }
  }
  CHECK_THROWS(kernels::quantize_rows_int8(w.data(), 5, 60, 64));
  // Stacking a 32-block part over a 16-block part repeats the 32-block scales.
  const QuantizedRows fine = random_rows(rng, 3, 64, 16, Codes::kSixBits, true);
  const QuantizedRows stacked = kernels::stack_quantized_rows({q, fine});
  CHECK(stacked.num_rows == 8 && stacked.block_cols == 16);
  int num_bad = 0;
  for (int64_t k = 0; k < 64; ++k) {
    for (int64_t r = 0; r < 5; ++r) num_bad += dequant(stacked, r, k) != dequant(q, r, k);
    for (int64_t r = 0; r < 3; ++r) num_bad += dequant(stacked, 5 + r, k) != dequant(fine, r, k);
  }
  CHECK(num_bad == 0);
}

struct Acts {
  std::vector<int8_t> codes;
  std::vector<float> scales, sums;
  cpu::QuantizedActsOut out;
};

Acts quantize(const std::vector<float>& a, int64_t m, int64_t lda, int64_t k, int64_t block) {
  Acts acts;
  acts.codes.assign(m * k, 0);
  acts.scales.assign(m * (k / block), 0.0f);
  acts.sums.assign(m * (k / block), 0.0f);
  acts.out = {acts.codes.data(), k, acts.scales.data(), acts.sums.data(), k / block};
  cpu::quantize_activation_rows(a.data(), lda, k, block, acts.out, 0, m);
  return acts;
}

TEST(activation_quantizer) {
  Rng rng(3);
  std::vector<float> a = rng.uniform_vector(2 * 64, -3.0f, 3.0f);
  a[5] = 0.0f;
  for (int64_t i = 64; i < 96; ++i) a[i] = 0.0f;  // an all-zero block: scale 0, codes 0
  const Acts q = quantize(a, 2, 64, 64, 16);
  for (int64_t r = 0; r < 2; ++r) {
    for (int64_t c = 0; c < 64; c += 32) {
      float amax = 0.0f;
      for (int64_t i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(a[r * 64 + c + i]));
      const float scale = q.scales[r * 4 + c / 16];
      CHECK(scale == amax / 127.0f && q.scales[r * 4 + c / 16 + 1] == scale);
      for (int64_t half = 0; half < 2; ++half) {
        int32_t sum = 0;
        for (int64_t i = 0; i < 16; ++i) sum += q.codes[r * 64 + c + half * 16 + i];
        CHECK(q.sums[r * 4 + c / 16 + half] == scale * static_cast<float>(sum));
      }
      for (int64_t i = 0; i < 32; ++i) {
        const int code = q.codes[r * 64 + c + i];
        CHECK(code >= -127 && code <= 127);
        // Round to nearest: within half a step (plus the rounding of x / scale).
        CHECK(std::fabs(code * scale - a[r * 64 + c + i]) <= 0.5f * scale * (1 + 1e-5f));
      }
    }
  }
  CHECK(q.codes[5] == 0 && q.scales[4] == 0.0f && q.codes[64] == 0);
  // Ties go to even: with amax 127 the scale is 1, so 2.5 -> 2 and -3.5 -> -4.
  std::vector<float> ties(32, 0.0f);
  ties[0] = 127.0f;
  ties[1] = 2.5f;
  ties[2] = -3.5f;
  ties[3] = std::numeric_limits<float>::quiet_NaN();
  const Acts t = quantize(ties, 1, 32, 32, 32);
  CHECK(t.scales[0] == 1.0f && t.codes[0] == 127 && t.codes[1] == 2 && t.codes[2] == -4);
  CHECK(t.codes[3] == -127);
}

TEST(activation_quantizer_same_bits_on_every_path) {
  // Random rows plus the edge cases: ties at every scale, NaN, +-inf, huge and subnormal values,
  // negative zero, an all-zero block.
  Rng rng(6);
  const int64_t m = 7, k = 96, lda = 101;
  std::vector<float> a = rng.uniform_vector(m * lda, -4.0f, 4.0f);
  const float specials[] = {std::numeric_limits<float>::quiet_NaN(),
                            std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(),
                            3e38f,
                            -1e-40f,
                            -0.0f,
                            0.5f,
                            -2.5f};
  for (int64_t i = 0; i < 8; ++i) a[lda + 3 * i] = specials[i];
  for (int64_t i = 0; i < 32; ++i) a[2 * lda + i] = 0.0f;
  for (int64_t i = 0; i < 32; ++i) a[3 * lda + i] = static_cast<float>(i - 16) + 0.5f;  // ties
  a[4 * lda + 5] = std::numeric_limits<float>::quiet_NaN();
  for (int64_t block : {16, 32}) {
    const Acts expected = quantize(a, m, lda, k, block);
    for (const KernelTable* t : cadence_test::all_tables()) {
      Acts got = quantize(a, m, lda, k, block);  // overwritten below
      std::fill(got.codes.begin(), got.codes.end(), int8_t{99});
      t->quantize_rows(a.data(), lda, k, block, got.out, 0, m);
      const bool same =
          got.codes == expected.codes &&
          std::memcmp(got.scales.data(), expected.scales.data(),
                      got.scales.size() * sizeof(float)) == 0 &&
          std::memcmp(got.sums.data(), expected.sums.data(), got.sums.size() * sizeof(float)) == 0;
      if (!same) std::printf("  isa=%s block=%ld differs\n", t->name, static_cast<long>(block));
      CHECK(same);
    }
  }
}

// C = dequant(A) dequant(W)^T (+ bias) in double, and the bound on the fp32 error of the
// QGemmArgs arithmetic: per block one rounding of scale * a_scale, of the scaled sum, and of
// each of the two FMAs into acc (|acc| <= the sum of all terms), so
// |error| <= (2 * blocks + 3) u * sum_b (|isum scale a_scale| + |min scaled_sum|) (+ u |bias|).
void qgemm_ref(const Acts& acts, int64_t m, const QuantizedRows& w, const float* bias,
               std::vector<double>* c, std::vector<double>* tol) {
  const int64_t n = w.num_rows, k = w.num_cols, block = w.block_cols, nb = k / block;
  c->assign(m * n, 0.0);
  tol->assign(m * n, 0.0);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0.0, mass = 0.0;
      for (int64_t b = 0; b < nb; ++b) {
        const double a_scale = acts.scales[i * nb + b];
        int64_t isum = 0, asum = 0;
        for (int64_t t = b * block; t < (b + 1) * block; ++t) {
          isum += int64_t{w.codes[j * k + t]} * acts.codes[i * k + t];
          asum += acts.codes[i * k + t];
        }
        const double term_w = isum * static_cast<double>(w.scales[j * nb + b]) * a_scale;
        const double term_m = static_cast<double>(w.mins[j * nb + b]) * a_scale * asum;
        sum += term_w + term_m;
        mass += std::fabs(term_w) + std::fabs(term_m);
      }
      const double bias_j = bias != nullptr ? bias[j] : 0.0;
      (*c)[i * n + j] = sum + bias_j;
      (*tol)[i * n + j] = (2 * nb + 3) * kEps * mass + kEps * std::fabs(bias_j) + 1e-30;
    }
  }
}

TEST(qgemm_matches_reference_all_isas_and_paths_agree_bitwise) {
  Rng rng(4);
  ThreadPool pool1(1), pool2(2);
  const std::vector<const KernelTable*> tables = cadence_test::all_tables();
  int num_cases = 0;
  for (Codes codes : {Codes::kNibbles, Codes::kSixBits, Codes::kFullBytes}) {
    for (int64_t block : {16, 32}) {
      for (bool f16 : {true, false}) {
        for (int64_t m : {1, 3, 6, 13}) {
          for (int64_t n : {1, 17, 70}) {
            for (int64_t k : {32, 96}) {
              const bool has_bias = (m + n) % 2 == 1;
              const int64_t lda = k + 5, ldc = n + 3;
              const std::vector<float> a = rng.uniform_vector(m * lda, -2.0f, 2.0f);
              const std::vector<float> bias = rng.uniform_vector(n);
              const float* b = has_bias ? bias.data() : nullptr;
              const QuantizedRows q = random_rows(rng, n, k, block, codes, f16);
              const PackedWeight packed = PackedWeight::pack_quantized(q);
              const Acts acts = quantize(a, m, lda, k, block);
              std::vector<double> ref, tol;
              qgemm_ref(acts, m, q, b, &ref, &tol);
              std::vector<float> first;
              for (const KernelTable* t : tables) {
                for (ThreadPool* pool : {&pool1, &pool2}) {
                  std::vector<float> c(m * ldc, 7.0f);
                  cpu::gemm(*t, *pool, a.data(), m, lda, packed, b, c.data(), ldc);
                  int num_bad = 0;
                  for (int64_t i = 0; i < m; ++i) {
                    for (int64_t j = 0; j < ldc; ++j) {
                      const float got = c[i * ldc + j];
                      if (j >= n) {
                        num_bad += got != 7.0f;  // padding must survive
                      } else {
                        num_bad += !(std::fabs(got - ref[i * n + j]) <= tol[i * n + j]);
                      }
                    }
                  }
                  if (first.empty()) first = c;
                  const bool same = std::equal(c.begin(), c.end(), first.begin());
                  if (num_bad != 0 || !same) {
                    std::printf(
                        "  isa=%s codes=%d block=%ld f16=%d m=%ld n=%ld k=%ld threads=%d:"
                        " %d bad, bitwise same as the first path: %d\n",
                        t->name, static_cast<int>(codes), static_cast<long>(block), f16,
                        static_cast<long>(m), static_cast<long>(n), static_cast<long>(k),
                        pool->num_threads(), num_bad, same);
                  }
                  CHECK(num_bad == 0);
                  CHECK(same);
                  ++num_cases;
                }
              }
            }
          }
        }
      }
    }
  }
  CHECK(num_cases > 0);
}

TEST(qgemm_is_batch_invariant_bitwise) {
  // Each row of a 29-row GEMM (split over rows and panels by 2 threads) equals the same row run
  // alone, bit for bit, on every path.
  Rng rng(5);
  ThreadPool pool(2);
  const int64_t m = 29, n = 200, k = 160;
  const std::vector<float> a = rng.uniform_vector(m * k, -2.0f, 2.0f);
  for (Codes codes : {Codes::kNibbles, Codes::kFullBytes}) {
    const PackedWeight w = PackedWeight::pack_quantized(random_rows(rng, n, k, 32, codes, true));
    for (const KernelTable* t : cadence_test::all_tables()) {
      std::vector<float> batch(m * n);
      cpu::gemm(*t, pool, a.data(), m, k, w, nullptr, batch.data(), n);
      int num_bad = 0;
      for (int64_t i = 0; i < m; ++i) {
        std::vector<float> alone(n);
        cpu::gemm(*t, pool, a.data() + i * k, 1, k, w, nullptr, alone.data(), n);
        num_bad += !std::equal(alone.begin(), alone.end(), batch.begin() + i * n);
      }
      if (num_bad != 0) std::printf("  isa=%s: %d rows differ\n", t->name, num_bad);
      CHECK(num_bad == 0);
    }
  }
}

}  // namespace

TEST_MAIN()
