// GEMM over quantized weight records (PackedWeight kQ4 / kQ8) and int8-quantized activations,
// written once against an integer SIMD traits type Q (qvec_avx2.h, qvec_avx512vnni.h) whose
// registers hold one 16-row panel: F = 16 floats, I = 16 int32 lanes (64 bytes of codes).
//
// Numerics: QGemmArgs' contract (kernel_table.h). Per weight block, each lane of an int32
// accumulator collects one row's exact dot product of codes (Q::dot4: four u8 x s8 products
// per lane and step); the block's fp32 epilogue is the same two FMAs in every path.
//
// Tiles: H rows of A x NP panels, all of K, accumulators in registers. With H = 1 (decode) W
// streams once from memory through NP independent panel streams; larger H reuse each loaded
// W register H times (prefill).
#pragma once

#include <cstdint>

#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/simd_common.h"
#include "kernels/packed_weight.h"

namespace cadence::kernels::cpu::simd {

// Panels per tile for H rows: int accumulators (H x NP) at most Q::kMaxAcc.
template <class Q>
constexpr int qgemm_panels_per_tile(int rows) {
  const int np = Q::kMaxAcc / rows;
  return np < 1 ? 1 : (np > Q::kMaxPanels ? Q::kMaxPanels : np);
}

// One tile: rows [m0, m0 + H) x panels [p0, p0 + NP); num_cols valid columns (< NP * 16 only at
// the matrix's last panel).
// kBlock: the weight's block_cols (16 or 32), a template argument so that the loads of one
// record unroll completely (a run-time trip count made the compiler shuffle the accumulators
// between registers every iteration).
template <class Q, WeightType T, bool kF16Scales, bool kFull, int64_t kBlock, int H, int NP>
void qgemm_tile(const QGemmArgs& g, int64_t m0, int64_t p0, int64_t num_cols) {
  using F = typename Q::F;
  using I = typename Q::I;
  constexpr int64_t kPanel = PackedWeight::kPanelRows;
  constexpr int64_t kScaleBytes = kF16Scales ? 2 : 4;
  constexpr int64_t block = kBlock;
  constexpr int64_t code_bytes = T == WeightType::kQ4 ? block * 8 : block * 16;
  constexpr int64_t num_loads = code_bytes / 64;  // 64-byte code loads per record
  const int64_t num_blocks = g.k / block;

  F acc[H][NP];
  CADENCE_UNROLL for (int i = 0; i < H; ++i) {
    CADENCE_UNROLL for (int j = 0; j < NP; ++j) acc[i][j] = Q::fzero();
  }
  const unsigned char* w_panel[NP];
  CADENCE_UNROLL for (int j = 0; j < NP; ++j) w_panel[j] = g.w_panels + (p0 + j) * g.panel_bytes;
  const int8_t* a_row[H];
  const float* a_scale[H];
  const float* a_sum[H];
  CADENCE_UNROLL for (int i = 0; i < H; ++i) {
    a_row[i] = g.a.codes + (m0 + i) * g.a.ld_codes;
    a_scale[i] = g.a.scales + (m0 + i) * g.a.ld_blocks;
    a_sum[i] = g.a.scaled_sums + (m0 + i) * g.a.ld_blocks;
  }

  for (int64_t b = 0; b < num_blocks; ++b) {
    I isum[H][NP];
    CADENCE_UNROLL for (int i = 0; i < H; ++i) {
      CADENCE_UNROLL for (int j = 0; j < NP; ++j) isum[i][j] = Q::izero();
    }
    const int64_t rec = b * g.record_bytes;
    const int64_t a_col = b * block;
    CADENCE_UNROLL for (int64_t l = 0; l < num_loads; ++l) {
      if constexpr (T == WeightType::kQ4) {
        // One load: codes of k = 8l .. 8l+3 (low nibbles) and 8l+4 .. 8l+7 (high nibbles).
        I lo[NP], hi[NP];
        CADENCE_UNROLL for (int j = 0; j < NP; ++j) {
          const I v = Q::load_codes(w_panel[j] + rec + l * 64);
          lo[j] = Q::low_nibbles(v);
          hi[j] = Q::high_nibbles(v);
        }
        CADENCE_UNROLL for (int i = 0; i < H; ++i) {
          const I a_lo = Q::bcast4(a_row[i] + a_col + 8 * l);
          const I a_hi = Q::bcast4(a_row[i] + a_col + 8 * l + 4);
          CADENCE_UNROLL for (int j = 0; j < NP; ++j) {
            isum[i][j] = Q::template dot4<false>(isum[i][j], lo[j], a_lo);
            isum[i][j] = Q::template dot4<false>(isum[i][j], hi[j], a_hi);
          }
        }
      } else {
        I w[NP];
        CADENCE_UNROLL for (int j = 0; j < NP; ++j) w[j] = Q::load_codes(w_panel[j] + rec + l * 64);
        CADENCE_UNROLL for (int i = 0; i < H; ++i) {
          const I a = Q::bcast4(a_row[i] + a_col + 4 * l);
          CADENCE_UNROLL for (int j = 0; j < NP; ++j) {
            isum[i][j] = Q::template dot4<kFull>(isum[i][j], w[j], a);
          }
        }
      }
    }
    CADENCE_UNROLL for (int j = 0; j < NP; ++j) {
      const unsigned char* sc = w_panel[j] + rec + code_bytes;
      const F scale = Q::template load_scales<kF16Scales>(sc);
      const F min = Q::template load_scales<kF16Scales>(sc + kPanel * kScaleBytes);
      CADENCE_UNROLL for (int i = 0; i < H; ++i) {
        const F t = Q::fmul(scale, Q::fset1(a_scale[i][b]));
        acc[i][j] = Q::fmadd(Q::to_float(isum[i][j]), t, acc[i][j]);
        acc[i][j] = Q::fmadd(min, Q::fset1(a_sum[i][b]), acc[i][j]);
      }
    }
  }

  // C = acc (+ bias); a partial last panel goes through a padded copy.
  const bool is_full = num_cols == NP * kPanel;
  alignas(64) float pad[kPanel * NP];
  CADENCE_UNROLL for (int i = 0; i < H; ++i) {
    float* c_row = g.c + (m0 + i) * g.ldc + p0 * kPanel;
    float* out = is_full ? c_row : pad;
    CADENCE_UNROLL for (int j = 0; j < NP; ++j) {
      F v = acc[i][j];
      if (g.bias != nullptr) {
        if (is_full) {
          v = Q::fadd(v, Q::fload(g.bias + (p0 + j) * kPanel));
        } else {
          alignas(64) float bias_pad[kPanel];
          for (int64_t r = 0; r < kPanel; ++r) {
            const int64_t col = j * kPanel + r;
            bias_pad[r] = col < num_cols ? g.bias[p0 * kPanel + col] : 0.0f;
          }
          v = Q::fadd(v, Q::fload(bias_pad));
        }
      }
      Q::fstore(out + j * kPanel, v);
    }
    if (!is_full) {
      for (int64_t col = 0; col < num_cols; ++col) c_row[col] = pad[col];
    }
  }
}

// Rows [m0, m0 + H) over panels [p_begin, p_end): full tiles of NP panels, then single panels.
template <class Q, WeightType T, bool kF16Scales, bool kFull, int64_t kBlock, int H>
void qgemm_rows(const QGemmArgs& g, int64_t m0, int64_t p_begin, int64_t p_end) {
  constexpr int kNp = qgemm_panels_per_tile<Q>(H);
  constexpr int64_t kPanel = PackedWeight::kPanelRows;
  int64_t p = p_begin;
  for (; p + kNp <= p_end; p += kNp) {
    const int64_t cols = g.n - p * kPanel < kNp * kPanel ? g.n - p * kPanel : kNp * kPanel;
    qgemm_tile<Q, T, kF16Scales, kFull, kBlock, H, kNp>(g, m0, p, cols);
  }
  for (; p < p_end; ++p) {
    const int64_t cols = g.n - p * kPanel < kPanel ? g.n - p * kPanel : kPanel;
    qgemm_tile<Q, T, kF16Scales, kFull, kBlock, H, 1>(g, m0, p, cols);
  }
}

template <class Q, WeightType T, bool kF16Scales, bool kFull, int64_t kBlock, int H>
void qgemm_rows_dispatch(int h, const QGemmArgs& g, int64_t m0, int64_t p_begin, int64_t p_end) {
  if constexpr (H >= 1) {
    if (h == H) {
      qgemm_rows<Q, T, kF16Scales, kFull, kBlock, H>(g, m0, p_begin, p_end);
      return;
    }
    qgemm_rows_dispatch<Q, T, kF16Scales, kFull, kBlock, H - 1>(h, g, m0, p_begin, p_end);
  }
}

template <class Q, WeightType T, bool kF16Scales, bool kFull, int64_t kBlock>
void qgemm_block_sized(const QGemmArgs& g, int64_t m_begin, int64_t m_end, int64_t p_begin,
                       int64_t p_end) {
  constexpr int kMr = Q::kMaxRows;
  // Panels in groups that stay in L2 while the row tiles sweep them (prefill); with one tile
  // of rows the group is all of them and W streams once.
  const int64_t group = m_end - m_begin <= kMr ? p_end - p_begin : 8;
  for (int64_t n0 = p_begin; n0 < p_end; n0 += group) {
    const int64_t n1 = n0 + group < p_end ? n0 + group : p_end;
    for (int64_t m0 = m_begin; m0 < m_end; m0 += kMr) {
      const int h = static_cast<int>(m_end - m0 < kMr ? m_end - m0 : kMr);
      qgemm_rows_dispatch<Q, T, kF16Scales, kFull, kBlock, kMr>(h, g, m0, n0, n1);
    }
  }
}

template <class Q, WeightType T, bool kF16Scales, bool kFull>
void qgemm_block_typed(const QGemmArgs& g, int64_t m_begin, int64_t m_end, int64_t p_begin,
                       int64_t p_end) {
  if (g.block_cols == 16) {
    qgemm_block_sized<Q, T, kF16Scales, kFull, 16>(g, m_begin, m_end, p_begin, p_end);
  } else {
    qgemm_block_sized<Q, T, kF16Scales, kFull, 32>(g, m_begin, m_end, p_begin, p_end);
  }
}

// KernelTable::qgemm_block: rows [m_begin, m_end) x panels [p_begin, p_end).
template <class Q>
void qgemm_block(const QGemmArgs& g, int64_t m_begin, int64_t m_end, int64_t p_begin,
                 int64_t p_end) {
  if (g.w_type == WeightType::kQ4) {
    if (g.has_f16_scales) {
      qgemm_block_typed<Q, WeightType::kQ4, true, false>(g, m_begin, m_end, p_begin, p_end);
    } else {
      qgemm_block_typed<Q, WeightType::kQ4, false, false>(g, m_begin, m_end, p_begin, p_end);
    }
    return;
  }
  if (g.has_f16_scales) {
    if (g.codes_fit_7_bits) {
      qgemm_block_typed<Q, WeightType::kQ8, true, false>(g, m_begin, m_end, p_begin, p_end);
    } else {
      qgemm_block_typed<Q, WeightType::kQ8, true, true>(g, m_begin, m_end, p_begin, p_end);
    }
  } else if (g.codes_fit_7_bits) {
    qgemm_block_typed<Q, WeightType::kQ8, false, false>(g, m_begin, m_end, p_begin, p_end);
  } else {
    qgemm_block_typed<Q, WeightType::kQ8, false, true>(g, m_begin, m_end, p_begin, p_end);
  }
}

}  // namespace cadence::kernels::cpu::simd
