// How the CPU ops size the pieces they hand to the thread pool (shared by ops_cpu.cc and
// attention_plan_cpu.cc). Sizes only: no piece changes what an output element is.
#pragma once

#include <algorithm>
#include <cstdint>

namespace cadence::kernels::cpu {

// Below these sizes waking the workers (a few microseconds) costs more than it saves.
constexpr int64_t kMinGemmFmasPerThread = 1 << 15;
constexpr int64_t kMinFloatsPerThread = 1 << 13;
constexpr int64_t kMinAttentionKeysPerThread = 1 << 11;

constexpr int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Rows per chunk so that one chunk holds at least kMinFloatsPerThread floats of work.
inline int64_t row_grain(int64_t floats_per_row) {
  return std::max<int64_t>(1, ceil_div(kMinFloatsPerThread, std::max<int64_t>(1, floats_per_row)));
}

}  // namespace cadence::kernels::cpu
