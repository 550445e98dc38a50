// Test support: the AVX-512 algorithm (16-float registers, the AVX-512 tile shapes) emulated
// with pairs of AVX2 registers. The real AVX-512 path instantiates the same templates with
// Avx512Vec; this instantiation lets machines without AVX-512 test everything that differs
// from AVX2 except the intrinsics in vec_avx512.h (one register per panel, 12-row tiles,
// 6-pair attention tiles, 16-wide tails). Not used by the engine; compiled with the AVX2 flags.
#include "kernels/cpu/kernel_table.h"

#if defined(__AVX2__) && defined(__FMA__)
#include "kernels/cpu/qvec_avx2.h"
#include "kernels/cpu/simd_attention.h"
#include "kernels/cpu/simd_elementwise.h"
#include "kernels/cpu/simd_gemm.h"
#include "kernels/cpu/simd_qgemm.h"
#include "kernels/cpu/simd_quantize.h"
#include "kernels/cpu/vec_avx2.h"
#endif

namespace cadence::kernels::cpu {

#if defined(__AVX2__) && defined(__FMA__)
namespace {

struct Emu512Vec {
  struct Reg {
    __m256 lo, hi;
  };
  using H = Avx2Vec;
  static constexpr Isa kIsa = Isa::kAvx2;
  static constexpr int kWidth = 16;
  // Same as Avx512Vec (not included here: its intrinsics need the AVX-512 flags).
  static constexpr int kGemmMaxRows = 12;
  static constexpr int kGemmMaxAcc = 24;
  static constexpr int kGemmMaxPanels = 8;

  static Reg zero() { return {H::zero(), H::zero()}; }
  static Reg set1(float x) { return {H::set1(x), H::set1(x)}; }
  static Reg broadcast(const float* p) { return {H::broadcast(p), H::broadcast(p)}; }
  static Reg load(const float* p) { return {H::load(p), H::load(p + 8)}; }
  static constexpr bool kBf16Interleaved = false;  // as Avx512Vec
  static Reg load_bf16(const uint16_t* p) { return {H::load_bf16(p), H::load_bf16(p + 8)}; }
  static Reg load_f16(const uint16_t* p) { return {H::load_f16(p), H::load_f16(p + 8)}; }
  static void store(float* p, Reg v) {
    H::store(p, v.lo);
    H::store(p + 8, v.hi);
  }
  static Reg add(Reg a, Reg b) { return {H::add(a.lo, b.lo), H::add(a.hi, b.hi)}; }
  static Reg sub(Reg a, Reg b) { return {H::sub(a.lo, b.lo), H::sub(a.hi, b.hi)}; }
  static Reg mul(Reg a, Reg b) { return {H::mul(a.lo, b.lo), H::mul(a.hi, b.hi)}; }
  static Reg div(Reg a, Reg b) { return {H::div(a.lo, b.lo), H::div(a.hi, b.hi)}; }
  static Reg fmadd(Reg a, Reg b, Reg c) {
    return {H::fmadd(a.lo, b.lo, c.lo), H::fmadd(a.hi, b.hi, c.hi)};
  }
  static Reg max(Reg a, Reg b) { return {H::max(a.lo, b.lo), H::max(a.hi, b.hi)}; }
  static Reg min(Reg a, Reg b) { return {H::min(a.lo, b.lo), H::min(a.hi, b.hi)}; }
  static Reg round_nearest(Reg x) { return {H::round_nearest(x.lo), H::round_nearest(x.hi)}; }
  static Reg ldexp(Reg p, Reg n) { return {H::ldexp(p.lo, n.lo), H::ldexp(p.hi, n.hi)}; }
  // Avx512Vec::reduce_add's tree (halves, then quarters, ...), so that reductions, and with
  // them attention, give the real AVX-512 path's bits.
  static float reduce_add(Reg v) {
    const __m256 h = _mm256_add_ps(v.lo, v.hi);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
  }
  static void reduce_add4(Reg a, Reg b, Reg c, Reg d, float* out) {
    out[0] = reduce_add(a);
    out[1] = reduce_add(b);
    out[2] = reduce_add(c);
    out[3] = reduce_add(d);
  }
  static float reduce_max(Reg v) { return H::reduce_max(H::max(v.lo, v.hi)); }
  static Reg select_lt(Reg x, Reg limit, Reg if_less, Reg otherwise) {
    return {H::select_lt(x.lo, limit.lo, if_less.lo, otherwise.lo),
            H::select_lt(x.hi, limit.hi, if_less.hi, otherwise.hi)};
  }
  static Reg select_gt(Reg x, Reg limit, Reg if_greater, Reg otherwise) {
    return {H::select_gt(x.lo, limit.lo, if_greater.lo, otherwise.lo),
            H::select_gt(x.hi, limit.hi, if_greater.hi, otherwise.hi)};
  }
};

// The AVX-512 VNNI quantized GEMM's tile shapes (Avx512VnniQVec) on AVX2 registers; its exact
// dot4 stands in for vpdpbusd.
struct Emu512QVec : Avx2QVec {
  static constexpr int kMaxRows = 6;
  static constexpr int kMaxAcc = 12;
  static constexpr int kMaxPanels = 4;
};

constexpr KernelTable kEmu512Table = {
    Isa::kAvx2,
    "avx512-emulated",
    &simd::gemm_block<Emu512Vec>,
    &simd::qgemm_block<Emu512QVec>,
    &simd::quantize_rows<Emu512QVec>,
    &simd::rms_norm_rows<Emu512Vec>,
    &simd::layer_norm_rows<Emu512Vec>,
    &simd::add<Emu512Vec>,
    &simd::silu_mul_rows<Emu512Vec>,
    &simd::gelu_tanh_mul_rows<Emu512Vec>,
    &simd::gelu_tanh<Emu512Vec>,
    &simd::relu<Emu512Vec>,
    &simd::rope_rows<Emu512Vec>,
    &simd::attention_item<Emu512Vec>,
    &simd::attention_merge<Emu512Vec>,
};

}  // namespace

const KernelTable* emulated_avx512_kernel_table() { return &kEmu512Table; }
#else
const KernelTable* emulated_avx512_kernel_table() { return nullptr; }
#endif

}  // namespace cadence::kernels::cpu
