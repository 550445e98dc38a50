// Where and how an op runs: the execution context every op of ops.h takes first.
//
//   device      where the op's views live and where it computes
//   pool        kCpu: the engine's threads the op splits its work over
//   stream      kCuda: the cudaStream_t the op is enqueued on (ops return before it finishes)
//   allocator   the device's memory: what runners grow their arenas from
//   profile     when set, runners add each op's time to it by family (kernels/profile.h)
//
// A context is made once by the engine (cpu_context) and passed by const reference; it owns
// nothing. Ops read only the members of their device's kind.
#pragma once

#include "kernels/allocator.h"
#include "kernels/device.h"
#include "kernels/profile.h"
#include "util/thread_pool.h"

namespace cadence::kernels {

struct ExecutionContext {
  Device device = kCpuDevice;
  ThreadPool* pool = nullptr;        // kCpu only
  void* stream = nullptr;            // kCuda only (a cudaStream_t)
  Allocator* allocator = nullptr;    // never null in a context made by a factory below
  KernelProfile* profile = nullptr;  // null: no timing (the default)

  bool is_cpu() const { return device.type == DeviceType::kCpu; }
  ThreadPool& threads() const { return *pool; }
};

// The host context over `pool` (which must outlive it), with host_allocator().
inline ExecutionContext cpu_context(ThreadPool& pool) {
  ExecutionContext context;
  context.pool = &pool;
  context.allocator = &host_allocator();
  return context;
}

}  // namespace cadence::kernels
