// bf16 / fp16 weight storage: the scalar conversions of kernels/half.h against bit patterns
// produced by torch, the packed layout, and the GEMM on 16-bit panels, which must be bit for
// bit the fp32 GEMM over the matrix rounded to that type, on every ISA path this machine can
// run (the AVX-512 algorithm emulated on AVX2 included) and for any thread count.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "kernel_test_util.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/ops_cpu.h"
#include "kernels/half.h"
#include "kernels/isa.h"
#include "kernels/packed_weight.h"
#include "test_harness.h"

using cadence::ThreadPool;
using cadence::kernels::bf16_to_float;
using cadence::kernels::f16_to_float;
using cadence::kernels::float_to_bf16;
using cadence::kernels::float_to_f16;
using cadence::kernels::Isa;
using cadence::kernels::PackedWeight;
using cadence::kernels::WeightType;
using cadence::kernels::cpu::KernelTable;
using cadence_test::Rng;
namespace cpu = cadence::kernels::cpu;

namespace {

uint32_t bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  return u;
}
float from_bits(uint32_t u) {
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}

// What a weight becomes once stored as `type` and widened again.
float round_to(WeightType type, float x) {
  switch (type) {
    case WeightType::kF32:
      return x;
    case WeightType::kBF16:
      return bf16_to_float(float_to_bf16(x));
    case WeightType::kF16:
      return f16_to_float(float_to_f16(x));
    case WeightType::kQ4:
    case WeightType::kQ8:
      break;  // not float storage (test_quant_gemm.cc)
  }
  return x;
}

std::vector<float> run_gemm(const KernelTable& t, ThreadPool& pool, const std::vector<float>& a,
                            int64_t m, int64_t lda, const PackedWeight& w, const float* bias,
                            int64_t ldc) {
  std::vector<float> c(m * ldc, 7.0f);
  cpu::gemm(t, pool, a.data(), m, lda, w, bias, c.data(), ldc);
  return c;
}

// Expected values: torch 2.13 on x86, x.to(torch.bfloat16) / x.to(torch.float16) of a tensor
// large enough to take the vectorized path (as a model's weights do), bits read back through
// .view(torch.int16).
TEST(float_to_16_bit_matches_torch) {
  struct Case {
    uint32_t f32, bf16, f16;
  };
  const Case cases[] = {
      {0x3F800000u, 0x3F80, 0x3C00},  // 1
      {0x80000000u, 0x8000, 0x8000},  // -0 keeps its sign
      {0x00000000u, 0x0000, 0x0000},  // 0
      {0x7F800000u, 0x7F80, 0x7C00},  // inf
      {0xFF800000u, 0xFF80, 0xFC00},  // -inf
      {0x7FC00000u, 0xFFFF, 0x7E00},  // NaN
      {0xFFC00000u, 0xFFFF, 0xFE00},  // -NaN
      {0x7FA12345u, 0xFFFF, 0x7F09},  // NaN with a payload (fp16: top payload bits, made quiet)
      {0x7F800001u, 0xFFFF, 0x7E00},  // signaling NaN
      // bf16 rounding: ties to even, both ways; just above / below a tie.
      {0x3F808000u, 0x3F80, 0x3C04},
      {0x3F818000u, 0x3F82, 0x3C0C},
      {0x3F808001u, 0x3F81, 0x3C04},
      {0x3F807FFFu, 0x3F80, 0x3C04},
      {0xBF818000u, 0xBF82, 0xBC0C},
      // bf16 overflow: the largest floats round up to inf; fp16 saturates much earlier.
      {0x7F7FFFFFu, 0x7F80, 0x7C00},
      {0x7F7F7FFFu, 0x7F7F, 0x7C00},
      {0x7F7F8000u, 0x7F80, 0x7C00},
      {0xFF7F8000u, 0xFF80, 0xFC00},
      // fp16 overflow: 65504 is the largest finite, 65520 (the tie above it) goes to inf.
      {0x477FE000u, 0x4780, 0x7BFF},
      {0x477FEFFFu, 0x4780, 0x7BFF},
      {0x477FF000u, 0x4780, 0x7C00},
      {0x49742400u, 0x4974, 0x7C00},  // 1e6
      {0xC9742400u, 0xC974, 0xFC00},  // -1e6
      // fp16 rounding: ties to even, both ways; just above a tie.
      {0x3F801000u, 0x3F80, 0x3C00},
      {0x3F803000u, 0x3F80, 0x3C02},
      {0x3F801001u, 0x3F80, 0x3C01},
      // fp16 subnormals: 2^-24 is the smallest; 2^-25 is a tie and goes to 0; 3 * 2^-25 is a
      // tie and goes to 2; just below 2^-14 rounds up to the smallest normal (0x0400).
      {0x33800000u, 0x3380, 0x0001},
      {0x33000000u, 0x3300, 0x0000},
      {0x33000001u, 0x3300, 0x0001},
      {0x33C00000u, 0x33C0, 0x0002},
      {0x387FE000u, 0x3880, 0x0400},
      {0x387FC000u, 0x3880, 0x03FF},
      {0xB3800000u, 0xB380, 0x8001},
      {0x322BCC77u, 0x322C, 0x0000},  // 1e-8: underflows to 0 in fp16
      {0xB22BCC77u, 0xB22C, 0x8000},  // -1e-8: to -0
      // fp32 subnormals: bf16 keeps (and rounds) them, fp16 flushes them to a signed zero.
      {0x00000001u, 0x0000, 0x0000},
      {0x00018000u, 0x0002, 0x0000},
      {0x80400000u, 0x8040, 0x8000},
      {0x3EAAAAABu, 0x3EAB, 0x3555},  // 1/3
      {0x40490FDBu, 0x4049, 0x4248},  // pi
  };
  for (const Case& c : cases) {
    const uint16_t b = float_to_bf16(from_bits(c.f32)), h = float_to_f16(from_bits(c.f32));
    if (b != c.bf16 || h != c.f16) {
      std::printf("  %08x: bf16 %04x (want %04x), f16 %04x (want %04x)\n", c.f32, b, c.bf16, h,
                  c.f16);
    }
    CHECK(b == c.bf16);
    CHECK(h == c.f16);
  }
}

// Expected values: torch, .view(torch.float16 / torch.bfloat16).float() of a large tensor.
TEST(widening_to_fp32_matches_torch) {
  struct Case {
    uint16_t h;
    uint32_t from_f16, from_bf16;
  };
  const Case cases[] = {
      {0x0001, 0x33800000u, 0x00010000u},  // smallest fp16 subnormal 2^-24
      {0x03FF, 0x387FC000u, 0x03FF0000u},  // largest fp16 subnormal
      {0x0400, 0x38800000u, 0x04000000u},  // smallest fp16 normal 2^-14
      {0x7BFF, 0x477FE000u, 0x7BFF0000u},  // 65504
      {0x7C00, 0x7F800000u, 0x7C000000u},  // fp16 inf
      {0xFC00, 0xFF800000u, 0xFC000000u},  // fp16 -inf
      {0x7C01, 0x7FC02000u, 0x7C010000u},  // fp16 signaling NaN: made quiet
      {0xFE00, 0xFFC00000u, 0xFE000000u},  // fp16 -NaN
      {0x8001, 0xB3800000u, 0x80010000u}, {0x3555, 0x3EAAA000u, 0x35550000u},
      {0x8000, 0x80000000u, 0x80000000u},  // -0
  };
  for (const Case& c : cases) {
    CHECK(bits(f16_to_float(c.h)) == c.from_f16);
    CHECK(bits(bf16_to_float(c.h)) == c.from_bf16);
  }
  // Every non-NaN pattern survives the round trip; every NaN stays a NaN.
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const auto p = static_cast<uint16_t>(h);
    const float f = f16_to_float(p), b = bf16_to_float(p);
    CHECK(std::isnan(f) || float_to_f16(f) == p);
    CHECK(std::isnan(b) || float_to_bf16(b) == p);
    CHECK(!std::isnan(f) || std::isnan(f16_to_float(float_to_f16(f))));
    CHECK(!std::isnan(b) || std::isnan(bf16_to_float(float_to_bf16(b))));
  }
}

TEST(packed_16_bit_layout_and_size) {
  Rng rng(11);
  const int64_t rows = 19, cols = 5, ld = 8;
  std::vector<float> w = rng.uniform_vector(rows * ld);
  w[0] = 1e5f;   // fp16 overflow: stored as inf
  w[1] = 3e-6f;  // an fp16 subnormal
  const PackedWeight f32 = PackedWeight::pack(w.data(), rows, cols, ld);
  CHECK(f32.type() == WeightType::kF32);
  CHECK(f32.size_bytes() == 2 * 16 * cols * 4);
  for (WeightType type : {WeightType::kBF16, WeightType::kF16}) {
    const PackedWeight p = PackedWeight::pack(w.data(), rows, cols, ld, type);
    CHECK(p.type() == type);
    CHECK(p.num_rows() == rows && p.num_cols() == cols && p.num_panels() == 2);
    CHECK(p.size_bytes() * 2 == f32.size_bytes());
    CHECK(reinterpret_cast<uintptr_t>(p.panel(0)) % 64 == 0);
    CHECK(static_cast<const uint16_t*>(p.panel(1)) ==
          static_cast<const uint16_t*>(p.panel(0)) + 16 * cols);
    for (int64_t r = 0; r < 2 * PackedWeight::kPanelRows; ++r) {
      for (int64_t k = 0; k < cols; ++k) {
        const float x = r < rows ? w[r * ld + k] : 0.0f;
        const uint16_t expected = type == WeightType::kBF16 ? float_to_bf16(x) : float_to_f16(x);
        CHECK(static_cast<const uint16_t*>(p.panel(r / 16))[k * 16 + r % 16] == expected);
      }
    }
  }
  CHECK(std::isinf(f16_to_float(float_to_f16(w[0]))));
  CHECK(PackedWeight::pack(nullptr, 0, 0, 0, WeightType::kBF16).empty());
  CHECK(PackedWeight::pack(nullptr, 0, 0, 0, WeightType::kBF16).size_bytes() == 0);
  CHECK_THROWS(PackedWeight::pack(w.data(), 2, 9, 8, WeightType::kF16));
  CHECK_THROWS(PackedWeight::pack(w.data(), 2, 4, 8, static_cast<WeightType>(7)));
}

// unpack_row returns each row's stored values widened to fp32 (the token embedding's rows).
TEST(unpack_row_returns_the_stored_row) {
  Rng rng(12);
  const int64_t rows = 37, cols = 23;
  const std::vector<float> w = rng.uniform_vector(rows * cols);
  for (WeightType type : {WeightType::kF32, WeightType::kBF16, WeightType::kF16}) {
    const PackedWeight p = PackedWeight::pack(w.data(), rows, cols, cols, type);
    std::vector<float> row(cols);
    for (int64_t r = 0; r < rows; ++r) {
      p.unpack_row(r, row.data());
      for (int64_t k = 0; k < cols; ++k) {
        const float x = w[r * cols + k];
        const float expected = type == WeightType::kF32    ? x
                               : type == WeightType::kBF16 ? bf16_to_float(float_to_bf16(x))
                                                           : f16_to_float(float_to_f16(x));
        CHECK(std::memcmp(&row[k], &expected, 4) == 0);
      }
    }
  }
}

// The numerics contract: C over 16-bit W == C over the fp32 matrix of the rounded values, bit
// for bit, whatever the table, tile, K blocking or thread count; and all tables agree.
TEST(gemm_16_bit_equals_fp32_gemm_on_rounded_weights_bitwise) {
  Rng rng(12);
  ThreadPool pool1(1), pool2(2), pool3(3);
  struct Shape {
    int64_t m, n, k;
  };
  // m = 1: decode (one tile, no blocking); 37 and 130: several row tiles, so K blocks and
  // panel blocks (130 x 200 x 1301: three K blocks of 434 / 434 / 433, and 13 panels in blocks
  // of 11 for 16-bit weights, of 5 for fp32); n = 17 with m = 130 makes the threads split M
  // too. n is not a multiple of 16 except in the SmolLM2 shape.
  const Shape shapes[] = {{1, 1536, 576}, {1, 33, 1301}, {1, 200, 7},      {5, 17, 129},
                          {37, 200, 129}, {37, 99, 700}, {130, 200, 1301}, {130, 17, 64}};
  const KernelTable* scalar = cpu::kernel_table(Isa::kScalar);
  for (const Shape s : shapes) {
    const int64_t lda = s.k + 3, ldc = s.n + 5;
    const std::vector<float> a = rng.uniform_vector(s.m * lda);
    std::vector<float> w = rng.uniform_vector(s.n * s.k);
    // A few values in the 16-bit formats' awkward ranges: fp16 subnormals, fp32 subnormals
    // (bf16 keeps them), fp16 underflow to zero, exact ties.
    const float specials[] = {3e-6f, -4e-7f, 1e-39f, -2e-40f, 1e-9f, 1.00390625f, 1.00048828125f};
    for (int64_t i = 0; i < 7 && i < s.n * s.k; ++i) w[(i * 7919) % (s.n * s.k)] = specials[i];
    const std::vector<float> bias = rng.uniform_vector(s.n);
    for (WeightType type : {WeightType::kBF16, WeightType::kF16}) {
      std::vector<float> rounded(w.size());
      for (size_t i = 0; i < w.size(); ++i) rounded[i] = round_to(type, w[i]);
      const PackedWeight packed = PackedWeight::pack(w.data(), s.n, s.k, s.k, type);
      const PackedWeight packed_f32 = PackedWeight::pack(rounded.data(), s.n, s.k, s.k);
      for (const float* b : {static_cast<const float*>(nullptr), bias.data()}) {
        const std::vector<float> expected =
            run_gemm(*scalar, pool1, a, s.m, lda, packed_f32, b, ldc);
        for (const KernelTable* t : cadence_test::runnable_tables()) {
          for (ThreadPool* pool : {&pool1, &pool2, &pool3}) {
            const std::vector<float> got = run_gemm(*t, *pool, a, s.m, lda, packed, b, ldc);
            const bool same = std::memcmp(got.data(), expected.data(), got.size() * 4) == 0;
            if (!same) {
              std::printf("  isa=%s type=%s m=%ld n=%ld k=%ld bias=%d threads=%d differ\n", t->name,
                          cadence::kernels::weight_type_name(type), static_cast<long>(s.m),
                          static_cast<long>(s.n), static_cast<long>(s.k), b != nullptr,
                          pool->num_threads());
            }
            CHECK(same);
          }
        }
      }
    }
  }
}

// Each path's widening (shift for bf16, F16C for fp16 on the SIMD paths) against half.h for
// every pattern: W is one column holding all finite 16-bit values, A = [1], so C = W exactly
// (except -0, which the chain starting at +0 turns into +0).
TEST(gemm_widens_every_16_bit_pattern_exactly) {
  ThreadPool pool(2);
  for (WeightType type : {WeightType::kBF16, WeightType::kF16}) {
    std::vector<float> w;
    for (uint32_t h = 0; h < 0x10000; ++h) {
      const auto p = static_cast<uint16_t>(h);
      const float x = type == WeightType::kBF16 ? bf16_to_float(p) : f16_to_float(p);
      if (std::isfinite(x)) w.push_back(x);
    }
    const auto n = static_cast<int64_t>(w.size());
    const PackedWeight packed = PackedWeight::pack(w.data(), n, 1, 1, type);
    const std::vector<float> one = {1.0f};
    for (const KernelTable* t : cadence_test::runnable_tables()) {
      const std::vector<float> c = run_gemm(*t, pool, one, 1, 1, packed, nullptr, n);
      int64_t num_bad = 0;
      for (int64_t j = 0; j < n; ++j) num_bad += bits(c[j]) != bits(w[j] + 0.0f);
      if (num_bad != 0) {
        std::printf("  isa=%s type=%s: %ld patterns widened wrongly\n", t->name,
                    cadence::kernels::weight_type_name(type), static_cast<long>(num_bad));
      }
      CHECK(num_bad == 0);
    }
  }
}

}  // namespace

TEST_MAIN()
