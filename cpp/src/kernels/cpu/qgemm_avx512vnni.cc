// The quantized GEMM on AVX-512 VNNI (vpdpbusd). Compiled with the AVX-512 + VNNI flags; the
// AVX-512 table uses it only where isa.cc found VNNI (cpu_supports_avx512_vnni).
#include "kernels/cpu/kernel_table.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && \
    defined(__AVX512VNNI__)
#include "kernels/cpu/qvec_avx512vnni.h"
#include "kernels/cpu/simd_qgemm.h"
#include "kernels/cpu/simd_quantize.h"

namespace cadence::kernels::cpu {

void qgemm_block_avx512_vnni(const QGemmArgs& args, int64_t m_begin, int64_t m_end,
                             int64_t panel_begin, int64_t panel_end) {
  simd::qgemm_block<Avx512VnniQVec>(args, m_begin, m_end, panel_begin, panel_end);
}

void quantize_rows_avx512_vnni(const float* a, int64_t lda, int64_t k, int64_t block_cols,
                               const QuantizedActsOut& out, int64_t row_begin, int64_t row_end) {
  simd::quantize_rows<Avx512VnniQVec>(a, lda, k, block_cols, out, row_begin, row_end);
}

}  // namespace cadence::kernels::cpu
#endif
