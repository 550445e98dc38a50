// Runtime ISA detection and the CADENCE_ISA override (see isa.h).
#include "kernels/isa.h"

#include <cstdlib>
#include <cstring>

#include "kernels/cpu/kernel_table.h"

namespace cadence::kernels {
namespace cpu {

bool cpu_supports(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return true;
#if defined(__x86_64__) || defined(__i386__)
    // __builtin_cpu_supports also checks (via XGETBV) that the OS saves the wide registers.
    // The AVX2 files are compiled with -mavx2 -mfma -mf16c, so all three are required.
    case Isa::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             __builtin_cpu_supports("f16c");
    case Isa::kAvx512:
      return cpu_supports(Isa::kAvx2) && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
#endif
    default:
      return false;
  }
}

bool cpu_supports_avx512_vnni() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool has_vnni = cpu_supports(Isa::kAvx512) && __builtin_cpu_supports("avx512vnni");
  return has_vnni;
#else
  return false;
#endif
}

}  // namespace cpu

namespace {

// The best path that is both compiled into this build and runnable on this CPU.
Isa best_isa() {
  for (Isa isa : {Isa::kAvx512, Isa::kAvx2}) {
    if (cpu::kernel_table(isa) != nullptr) return isa;
  }
  return Isa::kScalar;
}

Isa decide_isa() {
  const Isa best = best_isa();
  const char* requested = std::getenv("CADENCE_ISA");
  if (requested == nullptr || requested[0] == '\0') return best;
  Isa wanted = best;
  if (std::strcmp(requested, "scalar") == 0) {
    wanted = Isa::kScalar;
  } else if (std::strcmp(requested, "avx2") == 0) {
    wanted = Isa::kAvx2;
  } else if (std::strcmp(requested, "avx512") == 0) {
    wanted = Isa::kAvx512;
  }
  // The variable may only lower the choice; an unknown or unsupported request keeps the best.
  if (static_cast<int>(wanted) > static_cast<int>(best)) return best;
  return cpu::kernel_table(wanted) != nullptr ? wanted : best;
}

}  // namespace

Isa active_isa() {
  static const Isa isa = decide_isa();
  return isa;
}

bool cpu_has_avx512_bf16() {
#if defined(__x86_64__) || defined(__i386__)
  return cpu::cpu_supports(Isa::kAvx512) && __builtin_cpu_supports("avx512bf16");
#else
  return false;
#endif
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
  }
  return "unknown";
}

}  // namespace cadence::kernels
