// The AVX-512 path (F, BW, VL): the shared SIMD templates instantiated with Avx512Vec. Compiled
// with the AVX-512 flags; nothing here runs before isa.cc has checked the CPU, except
// avx512_kernel_table(), which only returns an address.
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
// First, so that its warning suppression covers the first inclusion of <immintrin.h>.
#include "kernels/cpu/vec_avx512.h"
#endif

#include "kernels/cpu/kernel_table.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#include "kernels/cpu/simd_attention.h"
#include "kernels/cpu/simd_elementwise.h"
#include "kernels/cpu/simd_gemm.h"
#endif

namespace cadence::kernels::cpu {

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
namespace {
// Constant-initialized (function addresses only), so no AVX-512 code runs at load time.
constexpr KernelTable kAvx512Table = {
    Isa::kAvx512,
    "avx512",
    &simd::gemm_block<Avx512Vec>,
    &simd::rms_norm_rows<Avx512Vec>,
    &simd::layer_norm_rows<Avx512Vec>,
    &simd::add<Avx512Vec>,
    &simd::silu_mul_rows<Avx512Vec>,
    &simd::gelu_tanh_mul_rows<Avx512Vec>,
    &simd::gelu_tanh<Avx512Vec>,
    &simd::relu<Avx512Vec>,
    &simd::rope_rows<Avx512Vec>,
    &simd::attention_item<Avx512Vec>,
    &simd::attention_merge<Avx512Vec>,
};
}  // namespace

const KernelTable* avx512_kernel_table() { return &kAvx512Table; }
#else
const KernelTable* avx512_kernel_table() { return nullptr; }
#endif

}  // namespace cadence::kernels::cpu
