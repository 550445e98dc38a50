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
// Its qgemm_block (and quantize_rows, compiled with it) need VNNI; kAvx512NoVnniTable is the
// same with the AVX2 ones.
constexpr KernelTable kAvx512Table = {
    Isa::kAvx512,
    "avx512",
    &simd::gemm_block<Avx512Vec>,
    &qgemm_block_avx512_vnni,
    &quantize_rows_avx512_vnni,
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

constexpr KernelTable without_vnni(KernelTable table) {
  table.qgemm_block = &qgemm_block_avx2;
  table.quantize_rows = &quantize_rows_avx2;
  return table;
}
constexpr KernelTable kAvx512NoVnniTable = without_vnni(kAvx512Table);
}  // namespace

const KernelTable* avx512_kernel_table() {
  return cpu_supports_avx512_vnni() ? &kAvx512Table : &kAvx512NoVnniTable;
}
#else
const KernelTable* avx512_kernel_table() { return nullptr; }
#endif

}  // namespace cadence::kernels::cpu
