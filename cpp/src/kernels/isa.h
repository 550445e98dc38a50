// Runtime choice of the CPU instruction-set path for the kernels.
#pragma once

namespace cadence::kernels {

enum class Isa { kScalar, kAvx2, kAvx512 };

// The best path this CPU and this build support, unless the environment variable
// CADENCE_ISA ("scalar", "avx2", "avx512") asks for a lower one (tests use it to cover
// every path the machine can run). Decided once per process.
Isa active_isa();
const char* isa_name(Isa isa);

}  // namespace cadence::kernels
