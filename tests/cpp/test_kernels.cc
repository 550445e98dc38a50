// Kernel tests: every op against a naive double-precision reference on odd shapes, for every
// ISA path this machine can run (called through its KernelTable, not CADENCE_ISA, because
// active_isa() is fixed per process), plus the bitwise batch / thread invariance contracts.
// Attention has its own file (test_attention_kernel.cc).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "kernel_test_util.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/ops_cpu.h"
#include "kernels/isa.h"
#include "kernels/ops.h"
#include "test_harness.h"

using cadence::ThreadPool;
using cadence::kernels::Isa;
using cadence::kernels::PackedWeight;
using cadence::kernels::cpu::KernelTable;
using cadence_test::Rng;
namespace cpu = cadence::kernels::cpu;

namespace {

constexpr double kEps = 1.0 / (1 << 24);  // fp32 unit roundoff

// C = A W^T (+ bias) in double.
std::vector<double> gemm_ref(const std::vector<float>& a, int64_t m, int64_t lda,
                             const std::vector<float>& w, int64_t n, int64_t k, const float* bias,
                             std::vector<double>* abs_sum) {
  std::vector<double> c(m * n);
  abs_sum->assign(m * n, 0.0);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double s = 0.0, s_abs = 0.0;
      for (int64_t t = 0; t < k; ++t) {
        s += static_cast<double>(a[i * lda + t]) * w[j * k + t];
        s_abs += std::fabs(static_cast<double>(a[i * lda + t]) * w[j * k + t]);
      }
      c[i * n + j] = s + (bias != nullptr ? bias[j] : 0.0);
      (*abs_sum)[i * n + j] = s_abs + (bias != nullptr ? std::fabs(bias[j]) : 0.0);
    }
  }
  return c;
}

// Runs the GEMM with table `t` into a C with row stride ldc (padding poisoned with 7s, which
// must survive: the kernel may write only the n columns of each row).
std::vector<float> run_gemm(const KernelTable& t, ThreadPool& pool, const std::vector<float>& a,
                            int64_t m, int64_t lda, const PackedWeight& w, const float* bias,
                            int64_t ldc) {
  std::vector<float> c(m * ldc, 7.0f);
  cpu::gemm(t, pool, a.data(), m, lda, w, bias, c.data(), ldc);
  return c;
}

TEST(packed_weight_layout) {
  Rng rng(1);
  const int64_t rows = 19, cols = 5, ld = 8;
  std::vector<float> w = rng.uniform_vector(rows * ld);
  const PackedWeight p = PackedWeight::pack(w.data(), rows, cols, ld);
  CHECK(p.num_rows() == rows && p.num_cols() == cols && p.num_panels() == 2);
  CHECK(reinterpret_cast<uintptr_t>(p.panel(0)) % 64 == 0);
  for (int64_t r = 0; r < 2 * PackedWeight::kPanelRows; ++r) {
    for (int64_t k = 0; k < cols; ++k) {
      const float expected = r < rows ? w[r * ld + k] : 0.0f;
      CHECK(static_cast<const float*>(p.panel(r / 16))[k * 16 + r % 16] == expected);
    }
  }
  CHECK_THROWS(PackedWeight::pack(w.data(), 2, 9, 8));
  CHECK_THROWS(PackedWeight::pack(w.data(), -1, 4, 8));
  CHECK(PackedWeight::pack(nullptr, 0, 0, 0).empty());
}

TEST(gemm_matches_reference_all_isas) {
  Rng rng(2);
  ThreadPool pool1(1), pool2(2);
  for (const KernelTable* t : cadence_test::runnable_tables()) {
    for (int64_t m : {1, 5, 37}) {
      for (int64_t n : {1, 17, 33, 200}) {
        for (int64_t k : {1, 7, 64, 129}) {
          for (bool has_bias : {false, true}) {
            const int64_t lda = k + 3, ldc = n + 5;
            const std::vector<float> a = rng.uniform_vector(m * lda);
            const std::vector<float> w = rng.uniform_vector(n * k);
            const std::vector<float> bias = rng.uniform_vector(n);
            const float* b = has_bias ? bias.data() : nullptr;
            const PackedWeight packed = PackedWeight::pack(w.data(), n, k, k);
            std::vector<double> abs_sum;
            const std::vector<double> ref = gemm_ref(a, m, lda, w, n, k, b, &abs_sum);
            for (ThreadPool* pool : {&pool1, &pool2}) {
              const std::vector<float> c = run_gemm(*t, *pool, a, m, lda, packed, b, ldc);
              int num_bad = 0;
              for (int64_t i = 0; i < m; ++i) {
                for (int64_t j = 0; j < ldc; ++j) {
                  const float got = c[i * ldc + j];
                  if (j >= n) {
                    num_bad += got != 7.0f;
                    continue;
                  }
                  // A chain of k fp32 FMAs plus the bias add: |error| <= (k + 1) u sum|terms|.
                  const double tol = (k + 2) * kEps * abs_sum[i * n + j] + 1e-30;
                  num_bad += !(std::fabs(got - ref[i * n + j]) <= tol);
                }
              }
              if (num_bad != 0) {
                std::printf("  isa=%s m=%ld n=%ld k=%ld bias=%d threads=%d: %d bad\n", t->name,
                            static_cast<long>(m), static_cast<long>(n), static_cast<long>(k),
                            has_bias, pool->num_threads(), num_bad);
              }
              CHECK(num_bad == 0);
            }
          }
        }
      }
    }
  }
}

// Each C element is one FMA chain over ascending k (then + bias): the bits must not depend on
// the number of rows, the tile a row lands in, K blocking, the thread count, or the ISA.
TEST(gemm_batch_thread_and_isa_invariance_bitwise) {
  Rng rng(3);
  ThreadPool pool1(1), pool2(2), pool3(3);
  struct Shape {
    int64_t m, n, k;
  };
  // k = 1536 exercises K blocking (partial chains parked in C); n = 17 with m = 100 makes the
  // threads split M as well as N.
  for (const Shape s :
       {Shape{37, 200, 129}, Shape{37, 99, 1536}, Shape{100, 17, 64}, Shape{13, 576, 576}}) {
    const std::vector<float> a = rng.uniform_vector(s.m * s.k);
    const std::vector<float> w = rng.uniform_vector(s.n * s.k);
    const std::vector<float> bias = rng.uniform_vector(s.n);
    const PackedWeight packed = PackedWeight::pack(w.data(), s.n, s.k, s.k);
    const KernelTable* scalar = cpu::kernel_table(Isa::kScalar);
    const std::vector<float> expected =
        run_gemm(*scalar, pool1, a, s.m, s.k, packed, bias.data(), s.n);
    for (const KernelTable* t : cadence_test::runnable_tables()) {
      for (ThreadPool* pool : {&pool1, &pool2, &pool3}) {
        const std::vector<float> batched =
            run_gemm(*t, *pool, a, s.m, s.k, packed, bias.data(), s.n);
        CHECK(std::memcmp(batched.data(), expected.data(), batched.size() * 4) == 0);
        // Every row alone (M = 1), and rows 3.. as a batch of their own (other tiling).
        for (int64_t i = 0; i < s.m; ++i) {
          const std::vector<float> row(a.begin() + i * s.k, a.begin() + (i + 1) * s.k);
          const std::vector<float> single =
              run_gemm(*t, *pool, row, 1, s.k, packed, bias.data(), s.n);
          CHECK(std::memcmp(single.data(), &expected[i * s.n], s.n * 4) == 0);
        }
        const std::vector<float> tail(a.begin() + 3 * s.k, a.end());
        const std::vector<float> shifted =
            run_gemm(*t, *pool, tail, s.m - 3, s.k, packed, bias.data(), s.n);
        CHECK(std::memcmp(shifted.data(), &expected[3 * s.n], shifted.size() * 4) == 0);
      }
    }
  }
}

TEST(gemm_k_zero_gives_bias) {
  ThreadPool pool(2);
  const std::vector<float> bias = {1.5f, -2.0f, 3.0f};
  const PackedWeight w = PackedWeight::pack(nullptr, 3, 0, 0);
  for (const KernelTable* t : cadence_test::runnable_tables()) {
    std::vector<float> c(6, 9.0f);
    cpu::gemm(*t, pool, nullptr, 2, 0, w, bias.data(), c.data(), 3);
    for (int i = 0; i < 6; ++i) CHECK(c[i] == bias[i % 3]);
    cpu::gemm(*t, pool, nullptr, 2, 0, w, nullptr, c.data(), 3);
    for (int i = 0; i < 6; ++i) CHECK(c[i] == 0.0f);
  }
}

TEST(rms_norm_matches_reference_and_is_row_invariant) {
  Rng rng(4);
  ThreadPool pool(2);
  for (const KernelTable* t : cadence_test::runnable_tables()) {
    for (int64_t rows : {1, 5, 37}) {
      for (int64_t dim : {1, 7, 64, 129, 576}) {
        const int64_t ld = dim + 3;
        std::vector<float> x = rng.uniform_vector(rows * ld);
        const std::vector<float> weight = rng.uniform_vector(dim);
        const float eps = 1e-5f;
        std::vector<float> out(rows * ld, 7.0f);
        cpu::rms_norm(*t, pool, x.data(), rows, dim, ld, weight.data(), eps, out.data(), ld);
        for (int64_t r = 0; r < rows; ++r) {
          double ss = 0.0;
          for (int64_t i = 0; i < dim; ++i) ss += double(x[r * ld + i]) * x[r * ld + i];
          const double inv = 1.0 / std::sqrt(ss / dim + eps);
          for (int64_t i = 0; i < dim; ++i) {
            const double ref = x[r * ld + i] * inv * weight[i];
            // fp32 sum of dim squares (relative error <= dim u) feeds a rsqrt: relative error
            // ~ (dim / 2 + 4) u of the output.
            CHECK_NEAR(out[r * ld + i], ref, (dim / 2.0 + 4) * kEps * std::fabs(ref) + 1e-30);
          }
          for (int64_t i = dim; i < ld; ++i) CHECK(out[r * ld + i] == 7.0f);
          // The same row alone gives the same bits.
          std::vector<float> single(dim);
          cpu::rms_norm(*t, pool, &x[r * ld], 1, dim, ld, weight.data(), eps, single.data(), dim);
          CHECK(std::memcmp(single.data(), &out[r * ld], dim * 4) == 0);
        }
        // In place (out aliases x) gives the same result.
        cpu::rms_norm(*t, pool, x.data(), rows, dim, ld, weight.data(), eps, x.data(), ld);
        for (int64_t r = 0; r < rows; ++r) {
          CHECK(std::memcmp(&x[r * ld], &out[r * ld], dim * 4) == 0);
        }
      }
    }
  }
}

TEST(add_inplace_is_exact) {
  Rng rng(5);
  ThreadPool pool(2);
  for (const KernelTable* t : cadence_test::runnable_tables()) {
    for (int64_t n : {1, 7, 33, 100000}) {
      std::vector<float> x = rng.uniform_vector(n), y = rng.uniform_vector(n);
      const std::vector<float> x0 = x;
      cpu::add_inplace(*t, pool, x.data(), y.data(), n);
      int num_bad = 0;
      for (int64_t i = 0; i < n; ++i) num_bad += x[i] != x0[i] + y[i];  // one rounding
      CHECK(num_bad == 0);
    }
  }
}

TEST(silu_mul_matches_reference) {
  Rng rng(6);
  ThreadPool pool(2);
  for (const KernelTable* t : cadence_test::runnable_tables()) {
    // A sweep of gate values over the whole useful range (also covers the vector exp:
    // silu's relative error is bounded by exp's), plus odd shapes.
    for (int64_t rows : {1, 5, 37}) {
      for (int64_t inter : {1, 7, 17, 200, 1536}) {
        const int64_t ld = 2 * inter + 1;
        std::vector<float> gu(rows * ld);
        for (int64_t i = 0; i < rows * ld; ++i) gu[i] = rng.uniform(-1.0f, 1.0f);
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t j = 0; j < inter; ++j) {
            // gates in [-110, 110], dense near 0
            const float u = rng.uniform(-1.0f, 1.0f);
            gu[r * ld + j] = (j % 3 == 0) ? 110.0f * u : 8.0f * u;
          }
        }
        std::vector<float> out(rows * inter);
        cpu::silu_mul(*t, pool, gu.data(), rows, inter, ld, out.data(), inter);
        int num_bad = 0;
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t j = 0; j < inter; ++j) {
            const double g = gu[r * ld + j], up = gu[r * ld + inter + j];
            const double ref = g / (1.0 + std::exp(-g)) * up;
            // exp (<= 3 ulp), add, divide, multiply: a few ulp; 1e-6 relative is the target.
            // Below 1e-35 the fp32 result is (correctly) denormal or zero.
            num_bad += !(std::fabs(out[r * inter + j] - ref) <= 1e-6 * std::fabs(ref) + 1e-35);
          }
        }
        CHECK(num_bad == 0);
      }
    }
    // Specials: +inf gate, NaN propagation, zero, and gates past exp's overflow point.
    std::vector<float> gu = {INFINITY, NAN, 0.0f, -88.9f, 2.0f, 2.0f, 2.0f, 2.0f};
    std::vector<float> out(4);
    cpu::silu_mul(*t, pool, gu.data(), 1, 4, 8, out.data(), 4);
    CHECK(std::isinf(out[0]) && out[0] > 0);
    CHECK(std::isnan(out[1]));
    CHECK(out[2] == 0.0f);
    CHECK(std::fabs(out[3]) < 1e-36f);
  }
}

TEST(gelu_tanh_mul_matches_reference_and_is_row_invariant) {
  Rng rng(16);
  ThreadPool pool(2);
  for (const KernelTable* t : cadence_test::runnable_tables()) {
    for (int64_t rows : {1, 5, 37}) {
      for (int64_t inter : {1, 7, 17, 200}) {
        const int64_t ld = 2 * inter + 3;
        std::vector<float> gu(rows * ld);
        for (int64_t i = 0; i < rows * ld; ++i) gu[i] = rng.uniform(-6.0f, 6.0f);
        std::vector<float> out(rows * inter);
        cpu::gelu_tanh_mul(*t, pool, gu.data(), rows, inter, ld, out.data(), inter);
        int num_bad = 0;
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t j = 0; j < inter; ++j) {
            const double g = gu[r * ld + j], up = gu[r * ld + inter + j];
            const double two_u = 2 * 0.7978845608028654 * (g + 0.044715 * g * g * g);
            const double ref = g / (1.0 + std::exp(-two_u)) * up;
            // gelu_tanh's bound (above) and one more rounding for the product.
            const double tol = (2e-6 + 4 * std::fabs(two_u) * kEps) * std::fabs(ref) + 1e-35;
            num_bad += !(std::fabs(out[r * inter + j] - ref) <= tol);
          }
        }
        CHECK(num_bad == 0);
        // A row alone gives the same bits as inside the batch.
        std::vector<float> last(inter);
        cpu::gelu_tanh_mul(*t, pool, &gu[(rows - 1) * ld], 1, inter, ld, last.data(), inter);
        CHECK(std::memcmp(last.data(), &out[(rows - 1) * inter], inter * 4) == 0);
      }
    }
  }
}

TEST(layer_norm_matches_reference_and_is_row_invariant) {
  Rng rng(11);
  ThreadPool pool(2);
  for (const KernelTable* t : cadence_test::runnable_tables()) {
    for (int64_t rows : {1, 5, 37}) {
      for (int64_t dim : {1, 7, 64, 129, 768}) {
        const int64_t ld = dim + 3;
        // An offset mean (+3) so that the mean subtraction matters.
        std::vector<float> x = rng.uniform_vector(rows * ld, 2.0f, 4.0f);
        const std::vector<float> weight = rng.uniform_vector(dim, 0.5f, 1.5f);
        const std::vector<float> bias = rng.uniform_vector(dim);
        const float eps = 1e-5f;
        std::vector<float> out(rows * ld, 7.0f);
        cpu::layer_norm(*t, pool, x.data(), rows, dim, ld, weight.data(), bias.data(), eps,
                        out.data(), ld);
        int num_bad = 0;
        for (int64_t r = 0; r < rows; ++r) {
          const float* xr = &x[r * ld];
          double mean = 0.0, var = 0.0;
          for (int64_t i = 0; i < dim; ++i) mean += xr[i];
          mean /= dim;
          for (int64_t i = 0; i < dim; ++i) var += (xr[i] - mean) * (xr[i] - mean);
          const double inv = 1.0 / std::sqrt(var / dim + eps);
          for (int64_t i = 0; i < dim; ++i) {
            const double normed = (xr[i] - mean) * inv;
            const double ref = normed * weight[i] + bias[i];
            // fp32 mean and variance sums (relative error ~ dim u each) feed x - mean, whose
            // error is relative to |x| (<= 4) and scaled by inv; then a multiply and an add.
            const double tol = ((dim + 8) * 4.0 * inv + 4 * std::fabs(normed)) * kEps * 1.5 +
                               2 * kEps * std::fabs(bias[i]) + 1e-30;
            num_bad += !(std::fabs(out[r * ld + i] - ref) <= tol);
          }
          for (int64_t i = dim; i < ld; ++i) num_bad += out[r * ld + i] != 7.0f;
          std::vector<float> single(dim);
          cpu::layer_norm(*t, pool, xr, 1, dim, ld, weight.data(), bias.data(), eps, single.data(),
                          dim);
          num_bad += std::memcmp(single.data(), &out[r * ld], dim * 4) != 0;
        }
        CHECK(num_bad == 0);
        cpu::layer_norm(*t, pool, x.data(), rows, dim, ld, weight.data(), bias.data(), eps,
                        x.data(), ld);
        for (int64_t r = 0; r < rows; ++r) {
          CHECK(std::memcmp(&x[r * ld], &out[r * ld], dim * 4) == 0);
        }
      }
    }
    // A constant row: variance 0, the output is the bias (eps keeps it finite).
    std::vector<float> x(9, 2.5f), w(9, 1.0f), b(9, 0.25f), out(9);
    cpu::layer_norm(*t, pool, x.data(), 1, 9, 9, w.data(), b.data(), 1e-5f, out.data(), 9);
    for (float v : out) CHECK(v == 0.25f);
  }
}

TEST(gelu_tanh_matches_reference_and_is_position_invariant) {
  Rng rng(12);
  ThreadPool pool(2);
  for (const KernelTable* t : cadence_test::runnable_tables()) {
    for (int64_t n : {1, 7, 17, 200, 40000}) {
      std::vector<float> x(n);
      for (int64_t i = 0; i < n; ++i) {
        const float u = rng.uniform(-1.0f, 1.0f);
        x[i] = (i % 3 == 0) ? 60.0f * u : 6.0f * u;  // dense near 0, tails past saturation
      }
      std::vector<float> out(n);
      cpu::gelu_tanh(*t, pool, x.data(), n, out.data());
      int num_bad = 0;
      for (int64_t i = 0; i < n; ++i) {
        const double v = x[i];
        // 0.5 v (1 + tanh(u)) as the equal v / (1 + exp(-2u)): 1 + tanh(u) cancels for
        // u << 0 and would cost even double all its digits in the negative tail.
        const double two_u = 2 * 0.7978845608028654 * (v + 0.044715 * v * v * v);
        const double ref = v / (1.0 + std::exp(-two_u));
        // exp (<= 3 ulp) and a few roundings give ~1e-6 relative, plus the fp32 rounding of
        // exp's argument 2u, a relative error of ~|2u| ulp of the result (large only in the
        // negative tail, where gelu(x) is tiny). 1e-35: results that underflow.
        const double tol = (1e-6 + 4 * std::fabs(two_u) * kEps) * std::fabs(ref) + 1e-35;
        if (!(std::fabs(out[i] - ref) <= tol) && num_bad < 3) {
          std::printf("  gelu(%.9g) = %.9g, ref %.9g\n", x[i], out[i], ref);
        }
        num_bad += !(std::fabs(out[i] - ref) <= tol);
      }
      CHECK(num_bad == 0);
      // Each element is computed the same wherever it sits: shifted inputs, one by one.
      for (int64_t i = 0; i < std::min<int64_t>(n, 40); ++i) {
        float single = 0.0f;
        cpu::gelu_tanh(*t, pool, &x[i], 1, &single);
        CHECK(std::memcmp(&single, &out[i], 4) == 0);
      }
      cpu::gelu_tanh(*t, pool, x.data(), n, x.data());  // in place
      CHECK(std::memcmp(x.data(), out.data(), n * 4) == 0);
    }
    std::vector<float> specials = {INFINITY, NAN, 0.0f, -INFINITY};
    std::vector<float> out(4);
    cpu::gelu_tanh(*t, pool, specials.data(), 4, out.data());
    CHECK(std::isinf(out[0]) && out[0] > 0);
    CHECK(std::isnan(out[1]));
    CHECK(out[2] == 0.0f);
  }
}

TEST(relu_is_exact) {
  Rng rng(13);
  ThreadPool pool(2);
  for (const KernelTable* t : cadence_test::runnable_tables()) {
    for (int64_t n : {1, 7, 33, 100000}) {
      std::vector<float> x = rng.uniform_vector(n);
      if (n > 2) x[1] = NAN;
      std::vector<float> out(n);
      cpu::relu(*t, pool, x.data(), n, out.data());
      int num_bad = 0;
      for (int64_t i = 0; i < n; ++i) {
        num_bad += std::isnan(x[i]) ? !std::isnan(out[i]) : out[i] != (x[i] > 0.0f ? x[i] : 0.0f);
      }
      CHECK(num_bad == 0);
    }
  }
}

TEST(rope_neox_matches_reference) {
  Rng rng(7);
  ThreadPool pool(2);
  struct Shape {
    int64_t num_heads, head_dim, rot_dim;
  };
  for (const KernelTable* t : cadence_test::runnable_tables()) {
    for (const Shape s : {Shape{9, 64, 64}, Shape{3, 10, 6}, Shape{2, 40, 34}, Shape{1, 2, 2}}) {
      for (int64_t tokens : {1, 5, 37}) {
        const int64_t ld = s.num_heads * s.head_dim + 3;
        const int64_t max_pos = 100;
        std::vector<float> cos_sin(max_pos * s.rot_dim);
        const int64_t half = s.rot_dim / 2;
        for (int64_t p = 0; p < max_pos; ++p) {
          for (int64_t i = 0; i < half; ++i) {
            const double angle = p * std::pow(10000.0, -2.0 * i / s.rot_dim);
            cos_sin[p * s.rot_dim + i] = static_cast<float>(std::cos(angle));
            cos_sin[p * s.rot_dim + half + i] = static_cast<float>(std::sin(angle));
          }
        }
        std::vector<int32_t> positions(tokens);
        for (auto& p : positions) p = static_cast<int32_t>(rng.next() % max_pos);
        std::vector<float> x = rng.uniform_vector(tokens * ld);
        const std::vector<float> x0 = x;
        cpu::rope_neox(*t, pool, x.data(), tokens, s.num_heads, s.head_dim, s.rot_dim, ld,
                       positions.data(), cos_sin.data());
        int num_bad = 0;
        for (int64_t r = 0; r < tokens; ++r) {
          const float* cs = &cos_sin[positions[r] * s.rot_dim];
          for (int64_t h = 0; h < s.num_heads; ++h) {
            const int64_t base = r * ld + h * s.head_dim;
            for (int64_t i = 0; i < s.head_dim; ++i) {
              if (i >= s.rot_dim) {  // untouched
                num_bad += x[base + i] != x0[base + i];
                continue;
              }
              const int64_t ii = i % half;
              const double x1 = x0[base + ii], x2 = x0[base + half + ii];
              const double c = cs[ii], sn = cs[half + ii];
              const double ref = i < half ? x1 * c - x2 * sn : x2 * c + x1 * sn;
              // two rounded products and one rounded sum
              const double tol = i < half
                                     ? 3 * kEps * (std::fabs(x1 * c) + std::fabs(x2 * sn)) + 1e-30
                                     : 3 * kEps * (std::fabs(x2 * c) + std::fabs(x1 * sn)) + 1e-30;
              num_bad += !(std::fabs(x[base + i] - ref) <= tol);
            }
            for (int64_t i = s.num_heads * s.head_dim; i < ld; ++i) {
              num_bad += x[r * ld + i] != x0[r * ld + i];
            }
          }
        }
        CHECK(num_bad == 0);
      }
    }
  }
}

TEST(write_kv_cache_copies_rows_and_skips_padding) {
  Rng rng(8);
  ThreadPool pool(2);
  cadence::kernels::PagedKvCache cache;
  cache.num_blocks = 4;
  cache.block_size = 5;
  cache.num_kv_heads = 3;
  cache.head_dim = 7;
  const int64_t cache_floats = 4 * 5 * 3 * 7;
  std::vector<float> kc(cache_floats, -1.0f), vc(cache_floats, -1.0f);
  cache.k_cache = kc.data();
  cache.v_cache = vc.data();
  const int64_t ld = 3 * 7 + 2;
  const std::vector<int32_t> slots = {17, 3, -1, 0, 19};
  const std::vector<float> k = rng.uniform_vector(5 * ld), v = rng.uniform_vector(5 * ld);
  cadence::kernels::cpu::write_kv_cache(pool, k.data(), v.data(), 5, ld, slots.data(), cache);
  int64_t num_written = 0;
  for (int64_t t = 0; t < 5; ++t) {
    if (slots[t] < 0) continue;
    const int64_t block = slots[t] / 5, offset = slots[t] % 5;
    for (int64_t h = 0; h < 3; ++h) {
      for (int64_t d = 0; d < 7; ++d) {
        const int64_t idx = ((block * 3 + h) * 5 + offset) * 7 + d;
        CHECK(kc[idx] == k[t * ld + h * 7 + d]);
        CHECK(vc[idx] == v[t * ld + h * 7 + d]);
        ++num_written;
      }
    }
  }
  int64_t num_changed = 0;
  for (int64_t i = 0; i < cache_floats; ++i) num_changed += kc[i] != -1.0f;
  CHECK(num_changed == num_written);
}

TEST(isa_selection) {
  const Isa active = cadence::kernels::active_isa();
  std::printf("  active ISA: %s; runnable:", cadence::kernels::isa_name(active));
  for (const KernelTable* t : cadence_test::runnable_tables()) {
    std::printf(" %s", t->name);
  }
  std::printf("\n");
  CHECK(cpu::kernel_table(active) != nullptr);
  CHECK(&cpu::active_kernel_table() == cpu::kernel_table(active));
  CHECK(cpu::kernel_table(Isa::kScalar) != nullptr);
  CHECK(std::strcmp(cadence::kernels::isa_name(Isa::kAvx512), "avx512") == 0);
}

}  // namespace

TEST_MAIN()
