// GEMM over prepacked weight panels, written once against a SIMD traits type V (Avx2Vec,
// Avx512Vec) and instantiated in the matching *_avx2.cc / *_avx512.cc file.
//
// Numerics contract (batch invariance): every C[i][n] is ONE fused-multiply-add chain
//   acc = 0; for k = 0 .. K-1 ascending: acc = fma(A[i][k], W[n][k], acc);  C = acc (+ bias[n])
// whatever tile, thread or K block computed it. K blocking is allowed because a partial chain
// is parked in C as an fp32 value and reloaded bit for bit; bias is added once at the end.
// The scalar path computes the same chain with std::fma, so all ISA paths agree bitwise.
// W stored as bf16 / fp16 (WeightType) is widened to fp32 in registers, exactly, before the
// FMA: the result is bit for bit that of the fp32 GEMM over W rounded to that type.
//
// Blocking (cache sizes of a typical x86 core: 32 KiB L1d, >= 512 KiB L2):
//
//   for each block of panels (W block = panels x kc x 16 elements, sized to stay in L2)
//     for each K block [k0, k0 + kc)
//       for each tile of up to kGemmMaxRows rows of A (A tile: rows x kc, stays in L1)
//         for each group of panels_per_tile(rows) panels: micro-kernel over the K block
//
// With a single row tile (decode, M <= kGemmMaxRows) W is used once, so there is no
// blocking and W streams straight from memory (the hardware prefetchers follow the panel
// streams; software prefetch measured no better, up to 20% worse).
#pragma once

#include <cstdint>

#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/simd_common.h"
#include "kernels/packed_weight.h"

namespace cadence::kernels::cpu::simd {

constexpr int64_t kPanel = PackedWeight::kPanelRows;
// Largest K block; keeps an A tile (kGemmMaxRows x kc floats) well inside L1.
constexpr int64_t kGemmMaxKc = 640;
// Bytes of W kept hot in L2 while the row tiles of A sweep over them.
constexpr int64_t kGemmWBlockBytes = 160 * 1024;

// The stored element of a weight type: float, or the bit pattern of a bf16 / fp16.
template <WeightType T>
struct WeightElem {
  using Type = uint16_t;
};
template <>
struct WeightElem<WeightType::kF32> {
  using Type = float;
};

// One panel's kPanel weights at one k fill kPanel / V::kWidth registers; register `part`
// holds V::kWidth of them, widened to fp32 (exact). Its lanes are rows part * kWidth + [0,
// kWidth), except where V widens bf16 in another lane order (V::kBf16Interleaved, see
// Avx2Vec): the accumulators of such a tile keep that order (each lane is still one row's
// chain), and load_lanes / store_lanes move the C and bias elements in and out of it.
template <class V, WeightType T>
constexpr bool kInterleaved = T == WeightType::kBF16 && V::kBf16Interleaved;

template <class V, WeightType T>
typename V::Reg load_weights(const typename WeightElem<T>::Type* panel, int part) {
  if constexpr (T == WeightType::kF32) {
    return V::load(panel + part * V::kWidth);
  } else if constexpr (T == WeightType::kF16) {
    return V::load_f16(panel + part * V::kWidth);
  } else if constexpr (kInterleaved<V, T>) {
    return V::load_bf16_interleaved(panel, part);
  } else {
    return V::load_bf16(panel + part * V::kWidth);
  }
}

// The kPanel floats of C (or bias) of one panel, `panel`, to / from register `part`.
template <class V, WeightType T>
typename V::Reg load_lanes(const float* panel, int part) {
  if constexpr (kInterleaved<V, T>) {
    return V::load_interleaved(panel, part);
  } else {
    return V::load(panel + part * V::kWidth);
  }
}
template <class V, WeightType T>
void store_lanes(float* panel, int part, typename V::Reg v) {
  if constexpr (kInterleaved<V, T>) {
    V::store_interleaved(panel, part, v);
  } else {
    V::store(panel + part * V::kWidth, v);
  }
}

// Panels per micro-tile for a tile of `rows` rows: enough accumulators (rows x panels x
// registers per panel) to hide FMA latency, at most V::kGemmMaxAcc of them.
template <class V>
constexpr int panels_per_tile(int rows) {
  const int per_panel = static_cast<int>(kPanel) / V::kWidth;
  const int np = V::kGemmMaxAcc / (rows * per_panel);
  return np < 1 ? 1 : (np > V::kGemmMaxPanels ? V::kGemmMaxPanels : np);
}

// The micro-kernel: C tile (H rows x NP panels) over K block [0, k_len).
//   a: first A element of the tile (row stride lda), already offset to the K block start.
//   w: panel data of the first panel at the K block start; panel j starts at w + j * stride
//      (in elements of type T).
//   num_cols: columns of C the tile covers (< NP * 16 only for the matrix's last panel).
//   accumulate: continue the chains parked in C (K blocks after the first).
//   bias: non-null only on the last K block.
template <class V, WeightType T, int H, int NP>
void gemm_tile(const float* a, int64_t lda, const typename WeightElem<T>::Type* w,
               int64_t panel_stride, int64_t k_len, float* c, int64_t ldc, int64_t num_cols,
               bool accumulate, const float* bias) {
  using Reg = typename V::Reg;
  constexpr int kW = V::kWidth;
  constexpr int kVpp = static_cast<int>(kPanel) / kW;  // registers per panel
  constexpr int kNv = NP * kVpp;                       // registers per tile row
  constexpr int kCols = kNv * kW;
  // The accumulators must live in registers: every access below uses indices that are
  // compile-time constants after full unrolling (a run-time index would force the array into
  // memory and add a store per FMA). A partial last panel goes through padded local copies.
  Reg acc[H][kNv];
  const bool is_full = num_cols == kCols;
  alignas(64) float c_pad[H][kCols];
  alignas(64) float bias_pad[kCols];
  if (!is_full) {
    for (int64_t j = 0; j < kCols; ++j)
      bias_pad[j] = bias != nullptr && j < num_cols ? bias[j] : 0.0f;
    if (accumulate) {
      for (int i = 0; i < H; ++i)
        for (int64_t j = 0; j < kCols; ++j) c_pad[i][j] = j < num_cols ? c[i * ldc + j] : 0.0f;
    }
  }
  const float* c_in = is_full ? c : &c_pad[0][0];
  const int64_t ld_in = is_full ? ldc : kCols;
  const float* bias_in = is_full || bias == nullptr ? bias : bias_pad;

  if (accumulate) {
    CADENCE_UNROLL for (int i = 0; i < H; ++i) {
      CADENCE_UNROLL for (int x = 0; x < kNv; ++x) {
        acc[i][x] = load_lanes<V, T>(c_in + i * ld_in + (x / kVpp) * kPanel, x % kVpp);
      }
    }
  } else {
    CADENCE_UNROLL for (int i = 0; i < H; ++i) {
      CADENCE_UNROLL for (int x = 0; x < kNv; ++x) acc[i][x] = V::zero();
    }
  }

  const float* a_row[H];
  CADENCE_UNROLL for (int i = 0; i < H; ++i) a_row[i] = a + i * lda;
  if constexpr (H > kNv) {
    // Tall tile: the tile's W vectors for one k sit in registers, A is broadcast row by row.
    for (int64_t k = 0; k < k_len; ++k) {
      const auto* wk = w + k * kPanel;
      Reg wv[kNv];
      CADENCE_UNROLL for (int x = 0; x < kNv; ++x) {
        wv[x] = load_weights<V, T>(wk + (x / kVpp) * panel_stride, x % kVpp);
      }
      CADENCE_UNROLL for (int i = 0; i < H; ++i) {
        const Reg av = V::broadcast(a_row[i] + k);
        CADENCE_UNROLL for (int x = 0; x < kNv; ++x) acc[i][x] = V::fmadd(av, wv[x], acc[i][x]);
      }
    }
  } else {
    // Wide tile: the broadcasts of A sit in registers, W vectors stream through one at a time.
    for (int64_t k = 0; k < k_len; ++k) {
      const auto* wk = w + k * kPanel;
      Reg av[H];
      CADENCE_UNROLL for (int i = 0; i < H; ++i) av[i] = V::broadcast(a_row[i] + k);
      CADENCE_UNROLL for (int x = 0; x < kNv; ++x) {
        const Reg wv = load_weights<V, T>(wk + (x / kVpp) * panel_stride, x % kVpp);
        CADENCE_UNROLL for (int i = 0; i < H; ++i) acc[i][x] = V::fmadd(av[i], wv, acc[i][x]);
      }
    }
  }

  // The chain ends before the bias: C = chain + bias (adding a zero bias would turn -0 into +0).
  float* c_out = is_full ? c : &c_pad[0][0];
  const int64_t ld_out = is_full ? ldc : kCols;
  CADENCE_UNROLL for (int x = 0; x < kNv; ++x) {
    const int64_t col = (x / kVpp) * kPanel;
    const Reg b = bias_in != nullptr ? load_lanes<V, T>(bias_in + col, x % kVpp) : V::zero();
    CADENCE_UNROLL for (int i = 0; i < H; ++i) {
      store_lanes<V, T>(c_out + i * ld_out + col, x % kVpp,
                        bias_in != nullptr ? V::add(acc[i][x], b) : acc[i][x]);
    }
  }
  if (!is_full) {
    for (int i = 0; i < H; ++i)
      for (int64_t j = 0; j < num_cols; ++j) c[i * ldc + j] = c_pad[i][j];
  }
}

// One row tile of H rows over panels [p_begin, p_end) and K block [k0, k0 + k_len).
template <class V, WeightType T, int H>
void gemm_rows(const GemmArgs& g, int64_t m0, int64_t k0, int64_t k_len, int64_t p_begin,
               int64_t p_end, bool accumulate, bool is_last_k_block) {
  using Elem = typename WeightElem<T>::Type;
  constexpr int kNp = panels_per_tile<V>(H);
  const int64_t panel_stride = g.k * kPanel;
  const Elem* w_panels = static_cast<const Elem*>(g.w_panels);
  const float* a = g.a + m0 * g.lda + k0;
  float* c_rows = g.c + m0 * g.ldc;
  const float* bias = is_last_k_block ? g.bias : nullptr;
  int64_t p = p_begin;
  for (; p + kNp <= p_end; p += kNp) {
    const Elem* w = w_panels + p * panel_stride + k0 * kPanel;
    const int64_t num_cols = g.n - p * kPanel < kNp * kPanel ? g.n - p * kPanel : kNp * kPanel;
    const float* b = bias != nullptr ? bias + p * kPanel : nullptr;
    gemm_tile<V, T, H, kNp>(a, g.lda, w, panel_stride, k_len, c_rows + p * kPanel, g.ldc, num_cols,
                            accumulate, b);
  }
  for (; p < p_end; ++p) {
    const Elem* w = w_panels + p * panel_stride + k0 * kPanel;
    const int64_t num_cols = g.n - p * kPanel < kPanel ? g.n - p * kPanel : kPanel;
    const float* b = bias != nullptr ? bias + p * kPanel : nullptr;
    gemm_tile<V, T, H, 1>(a, g.lda, w, panel_stride, k_len, c_rows + p * kPanel, g.ldc, num_cols,
                          accumulate, b);
  }
}

// Calls gemm_rows<V, T, h> for a run-time h in [1, H].
template <class V, WeightType T, int H>
void gemm_rows_dispatch(int h, const GemmArgs& g, int64_t m0, int64_t k0, int64_t k_len,
                        int64_t p_begin, int64_t p_end, bool accumulate, bool is_last_k_block) {
  if constexpr (H >= 1) {
    if (h == H) {
      gemm_rows<V, T, H>(g, m0, k0, k_len, p_begin, p_end, accumulate, is_last_k_block);
      return;
    }
    gemm_rows_dispatch<V, T, H - 1>(h, g, m0, k0, k_len, p_begin, p_end, accumulate,
                                    is_last_k_block);
  }
}

// gemm_block for weights stored as T.
template <class V, WeightType T>
void gemm_block_typed(const GemmArgs& g, int64_t m_begin, int64_t m_end, int64_t p_begin,
                      int64_t p_end) {
  constexpr int kMr = V::kGemmMaxRows;
  int64_t kc = g.k;
  int64_t panels_per_block = p_end - p_begin;
  const bool is_single_tile = m_end - m_begin <= kMr;
  if (!is_single_tile) {
    const int64_t num_k_blocks = (g.k + kGemmMaxKc - 1) / kGemmMaxKc;
    kc = (g.k + num_k_blocks - 1) / num_k_blocks;
    panels_per_block = kGemmWBlockBytes / (kc * kPanel * weight_type_bytes(T));
    if (panels_per_block < 1) panels_per_block = 1;
  }
  for (int64_t n0 = p_begin; n0 < p_end; n0 += panels_per_block) {
    const int64_t n1 = n0 + panels_per_block < p_end ? n0 + panels_per_block : p_end;
    for (int64_t k0 = 0; k0 < g.k; k0 += kc) {
      const int64_t k_len = kc < g.k - k0 ? kc : g.k - k0;
      const bool is_last_k_block = k0 + k_len == g.k;
      for (int64_t m0 = m_begin; m0 < m_end; m0 += kMr) {
        const int h = static_cast<int>(m_end - m0 < kMr ? m_end - m0 : kMr);
        gemm_rows_dispatch<V, T, kMr>(h, g, m0, k0, k_len, n0, n1, k0 > 0, is_last_k_block);
      }
    }
  }
}

// KernelTable::gemm_block: rows [m_begin, m_end) x panels [p_begin, p_end), all of K.
template <class V>
void gemm_block(const GemmArgs& g, int64_t m_begin, int64_t m_end, int64_t p_begin, int64_t p_end) {
  switch (g.w_type) {
    case WeightType::kF32:
      gemm_block_typed<V, WeightType::kF32>(g, m_begin, m_end, p_begin, p_end);
      return;
    case WeightType::kBF16:
      gemm_block_typed<V, WeightType::kBF16>(g, m_begin, m_end, p_begin, p_end);
      return;
    case WeightType::kF16:
      gemm_block_typed<V, WeightType::kF16>(g, m_begin, m_end, p_begin, p_end);
      return;
    case WeightType::kQ4:
    case WeightType::kQ8:
      return;  // quantized weights go through qgemm_block (simd_qgemm.h)
  }
}

}  // namespace cadence::kernels::cpu::simd
