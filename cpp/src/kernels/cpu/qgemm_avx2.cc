// The quantized GEMM on AVX2 (maddubs dot products); also the AVX-512 table's qgemm_block on
// CPUs without VNNI. Compiled with the AVX2 flags; runs only after isa.cc checked the CPU.
#include "kernels/cpu/kernel_table.h"

#if defined(__AVX2__) && defined(__FMA__)
#include "kernels/cpu/qvec_avx2.h"
#include "kernels/cpu/simd_qgemm.h"
#include "kernels/cpu/simd_quantize.h"

namespace cadence::kernels::cpu {

void qgemm_block_avx2(const QGemmArgs& args, int64_t m_begin, int64_t m_end, int64_t panel_begin,
                      int64_t panel_end) {
  simd::qgemm_block<Avx2QVec>(args, m_begin, m_end, panel_begin, panel_end);
}

void quantize_rows_avx2(const float* a, int64_t lda, int64_t k, int64_t block_cols,
                        const QuantizedActsOut& out, int64_t row_begin, int64_t row_end) {
  simd::quantize_rows<Avx2QVec>(a, lda, k, block_cols, out, row_begin, row_end);
}

}  // namespace cadence::kernels::cpu
#endif
