// The AVX2 + FMA path: the shared SIMD templates instantiated with Avx2Vec. Compiled with
// -mavx2 -mfma -mf16c; nothing here runs before isa.cc has checked the CPU, except
// avx2_kernel_table(), which only returns an address.
#include "kernels/cpu/kernel_table.h"

#if defined(__AVX2__) && defined(__FMA__)
#include "kernels/cpu/simd_attention.h"
#include "kernels/cpu/simd_elementwise.h"
#include "kernels/cpu/simd_gemm.h"
#include "kernels/cpu/vec_avx2.h"
#endif

namespace cadence::kernels::cpu {

#if defined(__AVX2__) && defined(__FMA__)
namespace {
// Constant-initialized (function addresses only), so no AVX2 code runs at load time.
constexpr KernelTable kAvx2Table = {
    Isa::kAvx2,
    "avx2",
    &simd::gemm_block<Avx2Vec>,
    &qgemm_block_avx2,
    &quantize_rows_avx2,
    &simd::rms_norm_rows<Avx2Vec>,
    &simd::layer_norm_rows<Avx2Vec>,
    &simd::add<Avx2Vec>,
    &simd::silu_mul_rows<Avx2Vec>,
    &simd::gelu_tanh_mul_rows<Avx2Vec>,
    &simd::gelu_tanh<Avx2Vec>,
    &simd::relu<Avx2Vec>,
    &simd::rope_rows<Avx2Vec>,
    &simd::attention_item<Avx2Vec>,
    &simd::attention_merge<Avx2Vec>,
};
}  // namespace

const KernelTable* avx2_kernel_table() { return &kAvx2Table; }
#else
const KernelTable* avx2_kernel_table() { return nullptr; }
#endif

}  // namespace cadence::kernels::cpu
