// ThreadPool tests: the chunking contract, hand-off after workers went to sleep, many quick
// calls (the decode pattern), more threads than cores, exceptions, and the per-call overhead.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "test_harness.h"
#include "util/thread_pool.h"

using cadence::ThreadPool;

namespace {

struct Chunk {
  int64_t begin, end;
  std::thread::id thread;
};

std::vector<Chunk> record_chunks(ThreadPool& pool, int64_t n, int64_t grain) {
  std::mutex mutex;
  std::vector<Chunk> chunks;
  pool.parallel_for_grain(n, grain, [&](int64_t b, int64_t e) {
    std::lock_guard<std::mutex> lock(mutex);
    chunks.push_back({b, e, std::this_thread::get_id()});
  });
  std::sort(chunks.begin(), chunks.end(),
            [](const Chunk& x, const Chunk& y) { return x.begin < y.begin; });
  return chunks;
}

TEST(chunks_cover_range_contiguously) {
  for (int num_threads : {1, 2, 3, 5}) {
    ThreadPool pool(num_threads);
    CHECK(pool.num_threads() == num_threads);
    for (int64_t n : {1, 2, 3, 7, 64, 1000}) {
      for (int64_t grain : {1, 4, 16}) {
        const std::vector<Chunk> chunks = record_chunks(pool, n, grain);
        CHECK(!chunks.empty() && static_cast<int>(chunks.size()) <= num_threads);
        CHECK(chunks.front().begin == 0 && chunks.back().end == n);
        for (size_t i = 0; i < chunks.size(); ++i) {
          CHECK(chunks[i].begin < chunks[i].end);
          if (i + 1 < chunks.size()) {
            CHECK(chunks[i].end == chunks[i + 1].begin);
            CHECK(chunks[i].end % grain == 0);
          }
        }
        // The caller runs chunk 0.
        CHECK(chunks.front().thread == std::this_thread::get_id());
      }
    }
    int calls = 0;
    pool.parallel_for(0, [&](int64_t, int64_t) { ++calls; });
    CHECK(calls == 0);
  }
}

TEST(many_quick_calls_and_oversubscription) {
  for (int num_threads : {2, 4}) {  // 4 > cores on small machines: exercises yield / sleep
    ThreadPool pool(num_threads);
    std::vector<int64_t> data(64, 0);
    for (int call = 0; call < 20000; ++call) {
      const int64_t n = 1 + call % 64;
      pool.parallel_for(n, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) data[i] += 1;
      });
    }
    int64_t total = 0;
    for (int64_t v : data) total += v;
    int64_t expected = 0;
    for (int call = 0; call < 20000; ++call) expected += 1 + call % 64;
    CHECK(total == expected);
  }
}

TEST(wakes_sleeping_workers) {
  ThreadPool pool(3);
  for (int round = 0; round < 5; ++round) {
    // Longer than the workers' spin, so they are asleep on the condition variable.
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
    std::atomic<int64_t> sum{0};
    pool.parallel_for(300, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) sum += i;
    });
    CHECK(sum == 300 * 299 / 2);
  }
}

TEST(exception_in_caller_chunk_propagates_after_workers_finish) {
  ThreadPool pool(2);
  std::atomic<int> num_done{0};
  bool caught = false;
  try {
    pool.parallel_for(2, [&](int64_t b, int64_t) {
      if (b == 0) throw std::runtime_error("chunk 0");
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      ++num_done;
    });
  } catch (const std::runtime_error&) {
    caught = true;
  }
  CHECK(caught);
  CHECK(num_done == 1);
  // The pool still works afterwards.
  std::atomic<int> num_chunks{0};
  pool.parallel_for(2, [&](int64_t, int64_t) { ++num_chunks; });
  CHECK(num_chunks == 2);
}

TEST(per_call_overhead_is_small) {
  ThreadPool pool(2);
  std::vector<int64_t> sink(2, 0);
  const std::function<void(int64_t, int64_t)> fn = [&](int64_t b, int64_t) { sink[b] += 1; };
  for (int i = 0; i < 1000; ++i) pool.parallel_for(2, fn);  // warm up
  // Best of several batches, so that other jobs on a shared machine only blur the result.
  const int num_batches = 20, calls_per_batch = 500;
  double best_us = 1e30;
  for (int batch = 0; batch < num_batches; ++batch) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < calls_per_batch; ++i) pool.parallel_for(2, fn);
    const double us =
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start)
            .count() /
        calls_per_batch;
    best_us = std::min(best_us, us);
  }
  std::printf("  parallel_for overhead, 2 threads: %.2f us per call (best batch)\n", best_us);
  const int64_t expected_calls = 1000 + num_batches * calls_per_batch;
  CHECK(sink[0] == expected_calls && sink[1] == expected_calls);
  // ~1-3 us on an idle machine (the number to watch). With other jobs competing for the cores
  // it can reach ~100 us whatever the hand-off does, so the check only catches pathologies
  // (a lost wake-up rescued by a timeout, a sleep per call).
  CHECK(best_us < 2000.0);
}

}  // namespace

TEST_MAIN()
