// Time per kernel family, for the step-time breakdown (EngineConfig::profile). An op call is
// bracketed by a KernelTimer; with no profile in the context (the default) the timer is one
// null check, so profiling costs nothing when off. Host ops are synchronous, so the wall time
// around a call is the op's time; a device backend would time with events instead.
#pragma once

#include <chrono>
#include <cstdint>

namespace cadence::kernels {

enum class KernelFamily : int32_t {
  kEmbedding,   // token / position embedding lookups, embedding scale
  kGemm,        // the layers' projections (qkv, out, up/gate, down, project_in/out)
  kLmHead,      // the LM head GEMM over the sampled rows (and logit soft-capping)
  kAttention,   // the attention plan, writing the KV cache, paged attention
  kNorm,        // RMSNorm / LayerNorm (and q/k norms)
  kRope,        // rotary embeddings
  kActivation,  // SiLU*up, GELU(*up), ReLU
  kResidual,    // residual adds, gathering the rows that need logits
  kCount,
};

inline const char* kernel_family_name(KernelFamily family) {
  static const char* const kNames[] = {"embedding", "gemm", "lm_head",    "attention",
                                       "norm",      "rope", "activation", "residual"};
  return kNames[static_cast<int32_t>(family)];
}

// Seconds per family, accumulated by KernelTimer.
struct KernelProfile {
  double seconds[static_cast<int32_t>(KernelFamily::kCount)] = {};
};

class KernelTimer {
 public:
  KernelTimer(KernelProfile* profile, KernelFamily family) : profile_(profile), family_(family) {
    if (profile_ != nullptr) start_ = std::chrono::steady_clock::now();
  }
  ~KernelTimer() { stop(); }
  // Adds the time since construction (once; later calls and the destructor add nothing).
  void stop() {
    if (profile_ == nullptr) return;
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start_;
    profile_->seconds[static_cast<int32_t>(family_)] += elapsed.count();
    profile_ = nullptr;
  }
  KernelTimer(const KernelTimer&) = delete;
  KernelTimer& operator=(const KernelTimer&) = delete;

 private:
  KernelProfile* profile_;
  KernelFamily family_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace cadence::kernels
