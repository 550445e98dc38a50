// ThreadPool: a decode step makes ~200 parallel_for calls of tens of microseconds each, so
// the hand-off must cost about a microsecond, not a condition-variable round trip (~10-50 us).
//
// Protocol (generation_, num_pending_ and stopping_ are atomics; chunks_ and job_ are plain
// and published by the release store of generation_):
// - generation_ packs (sequence << 16) | num_chunks. The caller writes chunks_ and job_, sets
//   num_pending_ = num_chunks - 1, then publishes a new generation with a release store.
// - Worker i owns chunk i + 1. It polls generation_ for up to kWorkerSpin (with pause, then
//   yielding its core so that oversubscribed threads holding chunks can run), then sleeps on
//   work_ready_. A worker without a chunk in a generation reads nothing but the word itself,
//   so it can never see chunks_ half-rewritten for a later call.
// - A worker runs its chunk and decrements num_pending_ (release); the caller, after running
//   chunk 0, spins (then yields) until num_pending_ is 0 (acquire), so all writes made by the
//   chunks are visible when parallel_for returns.
// - Lost wake-ups: a sleeping worker re-checks generation_ under mutex_; the caller locks and
//   unlocks mutex_ after publishing and before notify_all, so a worker is either already
//   waiting (and is notified) or checks after the publish (and sees it).
#include "util/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <exception>

namespace cadence {
namespace {

constexpr uint64_t kChunkBits = 16;
constexpr uint64_t kChunkMask = (uint64_t{1} << kChunkBits) - 1;
// How long an idle worker spins before sleeping: covers the gaps between the kernels of one
// step and short host work between steps, without burning a core when the engine is idle.
constexpr auto kWorkerSpin = std::chrono::microseconds(250);
// How long an idle worker spins with pause before it yields its core between polls.
constexpr auto kWorkerPauseSpin = std::chrono::microseconds(50);
// How long the caller spins on stragglers before yielding its core to them.
constexpr auto kCallerSpin = std::chrono::microseconds(50);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

}  // namespace

ThreadPool::ThreadPool(int num_threads) {
  if (num_threads <= 0) {
    num_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }
  num_threads = std::min<int>(num_threads, static_cast<int>(kChunkMask));
  chunks_.assign(static_cast<size_t>(num_threads), {0, 0});
  for (int i = 0; i + 1 < num_threads; ++i) {
    workers_.emplace_back([this, i] { worker_loop(i); });
  }
}

ThreadPool::~ThreadPool() {
  stopping_.store(true, std::memory_order_release);
  {
    std::lock_guard<std::mutex> lock(mutex_);
  }
  work_ready_.notify_all();
  for (auto& worker : workers_) worker.join();
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  parallel_for_grain(n, 1, fn);
}

void ThreadPool::parallel_for_grain(int64_t n, int64_t grain,
                                    const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int64_t num_grains = (n + grain - 1) / grain;
  const int64_t num_chunks = std::min<int64_t>(num_threads(), num_grains);
  if (num_chunks == 1) {
    fn(0, n);
    return;
  }
  // Chunk c covers grains [num_grains * c / num_chunks, num_grains * (c + 1) / num_chunks).
  for (int64_t c = 0; c < num_chunks; ++c) {
    const int64_t begin = std::min(n, (num_grains * c / num_chunks) * grain);
    const int64_t end = std::min(n, (num_grains * (c + 1) / num_chunks) * grain);
    chunks_[static_cast<size_t>(c)] = {begin, end};
  }
  job_ = &fn;
  num_pending_.store(static_cast<int>(num_chunks - 1), std::memory_order_relaxed);
  const uint64_t sequence = (generation_.load(std::memory_order_relaxed) >> kChunkBits) + 1;
  generation_.store((sequence << kChunkBits) | static_cast<uint64_t>(num_chunks),
                    std::memory_order_release);
  {
    std::lock_guard<std::mutex> lock(mutex_);
  }
  work_ready_.notify_all();

  // The workers hold a pointer to fn: even if chunk 0 throws, wait for them before unwinding.
  std::exception_ptr error;
  try {
    fn(chunks_[0].first, chunks_[0].second);
  } catch (...) {
    error = std::current_exception();
  }

  if (num_pending_.load(std::memory_order_acquire) != 0) {
    const auto spin_until = std::chrono::steady_clock::now() + kCallerSpin;
    for (int spins = 0; num_pending_.load(std::memory_order_acquire) != 0; ++spins) {
      if (spins < 256 || std::chrono::steady_clock::now() < spin_until) {
        cpu_relax();
      } else {
        std::this_thread::yield();
      }
    }
  }
  job_ = nullptr;
  if (error) std::rethrow_exception(error);
}

void ThreadPool::worker_loop(int worker_index) {
  // generation_ is 0 until the first parallel_for, which may publish before this thread
  // first runs, so start from 0 rather than from the current value.
  uint64_t seen = 0;
  const uint64_t my_chunk = static_cast<uint64_t>(worker_index) + 1;
  for (;;) {
    // Wait for a new generation: spin first, then sleep.
    uint64_t generation = generation_.load(std::memory_order_acquire);
    if (generation == seen) {
      // Spin with pause first (fastest hand-off), then spin with yield so that, when there
      // are more runnable threads than cores, the threads holding chunks get the CPU.
      const auto start = std::chrono::steady_clock::now();
      bool is_yielding = false;
      for (int spins = 1;; ++spins) {
        if (!is_yielding) {
          cpu_relax();
        } else {
          std::this_thread::yield();
        }
        generation = generation_.load(std::memory_order_acquire);
        if (generation != seen || stopping_.load(std::memory_order_acquire)) break;
        if ((spins & 63) != 0) continue;
        const auto spun = std::chrono::steady_clock::now() - start;
        is_yielding = spun >= kWorkerPauseSpin;
        if (spun >= kWorkerSpin) {
          std::unique_lock<std::mutex> lock(mutex_);
          work_ready_.wait(lock, [&] {
            generation = generation_.load(std::memory_order_acquire);
            return generation != seen || stopping_.load(std::memory_order_acquire);
          });
          break;
        }
      }
    }
    if (stopping_.load(std::memory_order_acquire)) return;
    seen = generation;
    if (my_chunk >= (generation & kChunkMask)) continue;  // no chunk for this worker
    const std::pair<int64_t, int64_t> chunk = chunks_[my_chunk];
    (*job_)(chunk.first, chunk.second);
    num_pending_.fetch_sub(1, std::memory_order_release);
  }
}

}  // namespace cadence
