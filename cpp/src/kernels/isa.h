// Runtime choice of the CPU instruction-set path for the kernels.
#pragma once

namespace cadence::kernels {

enum class Isa { kScalar, kAvx2, kAvx512 };

// The best path this CPU and this build support, unless the environment variable
// CADENCE_ISA ("scalar", "avx2", "avx512") asks for a lower one (tests use it to cover
// every path the machine can run). Decided once per process.
Isa active_isa();
const char* isa_name(Isa isa);

// Whether this CPU (and OS) has AVX-512 BF16, the mark of a core with fast bfloat16 support;
// kv_cache_dtype "auto" picks a bf16 KV cache on it. The kernels themselves only widen bf16
// (any ISA path can read it). Ignores CADENCE_ISA.
bool cpu_has_avx512_bf16();

}  // namespace cadence::kernels
