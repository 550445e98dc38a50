// A fixed pool of worker threads for data-parallel loops inside one engine step.
//
// Contract: parallel_for(n, fn) splits [0, n) into at most num_threads() contiguous
// chunks and calls fn(begin, end) once per non-empty chunk; the calling thread runs
// chunk 0 and the call returns after every chunk is done. Calls must not be nested
// and only one thread may call parallel_for at a time (the engine thread).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace cadence {

class ThreadPool {
 public:
  // num_threads <= 0 means "all hardware threads".
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }

  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn);

  // Like parallel_for, but chunk boundaries are multiples of `grain` (except the last).
  void parallel_for_grain(int64_t n, int64_t grain,
                          const std::function<void(int64_t, int64_t)>& fn);

 private:
  void worker_loop(int worker_index);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable work_ready_;
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  std::vector<std::pair<int64_t, int64_t>> chunks_;  // chunk i+1 belongs to worker i
  std::atomic<uint64_t> generation_{0};  // (sequence << 16) | num_chunks, see thread_pool.cc
  std::atomic<int> num_pending_{0};      // worker chunks of this call still running
  std::atomic<bool> stopping_{false};
};

}  // namespace cadence
