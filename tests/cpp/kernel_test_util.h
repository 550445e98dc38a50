// Helpers shared by the kernel tests: a deterministic RNG and the ISA paths to cover.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/cpu/kernel_table.h"
#include "kernels/isa.h"

namespace cadence_test {

// xorshift64*: fast, deterministic across platforms and standard libraries.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t next() {
    state_ ^= state_ >> 12;
    state_ ^= state_ << 25;
    state_ ^= state_ >> 27;
    return state_ * 0x2545F4914F6CDD1Dull;
  }
  // Uniform in [lo, hi).
  float uniform(float lo, float hi) {
    return lo + (hi - lo) * static_cast<float>((next() >> 40) * (1.0 / (1ull << 24)));
  }
  std::vector<float> uniform_vector(int64_t n, float lo = -1.0f, float hi = 1.0f) {
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = uniform(lo, hi);
    return v;
  }

 private:
  uint64_t state_;
};

// Every ISA path this build contains and this CPU can run, plus the AVX-512 algorithm
// emulated on AVX2 when the real one cannot run here.
inline std::vector<const cadence::kernels::cpu::KernelTable*> runnable_tables() {
  using cadence::kernels::Isa;
  namespace cpu = cadence::kernels::cpu;
  std::vector<const cpu::KernelTable*> tables;
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    if (const auto* t = cpu::kernel_table(isa)) tables.push_back(t);
  }
  if (cpu::kernel_table(Isa::kAvx512) == nullptr && cpu::kernel_table(Isa::kAvx2) != nullptr &&
      cpu::emulated_avx512_kernel_table() != nullptr) {
    tables.push_back(cpu::emulated_avx512_kernel_table());
  }
  return tables;
}

// runnable_tables() plus the AVX-512 algorithm emulated on AVX2 even where the real AVX-512
// path runs (once), so that all four paths are covered on AVX-512 machines too.
inline std::vector<const cadence::kernels::cpu::KernelTable*> all_tables() {
  namespace cpu = cadence::kernels::cpu;
  std::vector<const cpu::KernelTable*> tables = runnable_tables();
  const cpu::KernelTable* emulated = cpu::emulated_avx512_kernel_table();
  if (emulated != nullptr && cpu::kernel_table(cadence::kernels::Isa::kAvx2) != nullptr &&
      std::find(tables.begin(), tables.end(), emulated) == tables.end()) {
    tables.push_back(emulated);
  }
  return tables;
}

}  // namespace cadence_test
