// Shared by the SIMD templates (simd_*.h).
#pragma once

// Fully unrolls a loop with a compile-time trip count over an array of registers. Needed for
// correctness of the performance model, not of the results: if any access to a register
// array keeps a run-time index, the compiler keeps the whole array in memory and adds a
// store per FMA (measured: 2x slower GEMM, 3x slower attention dots).
#if defined(__clang__)
#define CADENCE_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define CADENCE_UNROLL _Pragma("GCC unroll 32")
#else
#define CADENCE_UNROLL
#endif
