// paged_attention tests: GQA over a paged cache with shuffled (non-contiguous) block tables,
// several sequences mixing decode, full prefill and chunked prefill, block sizes 16, 5 and 80
// (> the 64-key chunk), head_dim not a multiple of the SIMD width, heads per kv head above
// the per-item pair limit, and contexts of several 256-key partitions (merged in one item, or
// split over threads and merged afterwards). Every runnable ISA path is checked against a
// double-precision reference, and the bitwise invariance contracts are checked: a row's output must
// not depend on the thread count, on the other sequences in the batch, or on how many of its
// sequence's query rows are in the batch (chunked prefill). Sliding-window cases (HF's mask: a
// row at position p sees keys (p - W, p]) poison every key older than all of a sequence's
// query windows with NaN and point the table entries of blocks wholly before them at a NaN
// block (as if freed and reused): reading any of them would poison the output.
//
// KV cache types: every case runs over an fp32, a bf16 and an fp16 cache. The fixture rounds
// its random K/V to the type (kernels/half.h) and keeps the rounded values as fp32 too, so
// the reference is computed on exactly what the kernel reads, and a 2-byte cache must give
// bit for bit the output of an fp32 cache holding the rounded values (the widening is exact
// and the rest is the fp32 code). write_kv_cache's rounding and the widening of every 16-bit
// pattern are checked exactly against half.h. The emulated AVX-512 table must match the real
// one bit for bit where both run.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <vector>

#include "kernel_test_util.h"
#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/ops_cpu.h"
#include "kernels/half.h"
#include "kernels/ops.h"
#include "test_harness.h"

using cadence::ThreadPool;
using cadence::kernels::AttentionBatch;
using cadence::kernels::KvCacheType;
using cadence::kernels::PagedKvCache;
using cadence::kernels::cpu::KernelTable;
using cadence_test::Rng;
namespace cpu = cadence::kernels::cpu;

namespace {

constexpr double kEps = 1.0 / (1 << 24);

constexpr KvCacheType kKvTypes[] = {KvCacheType::kF32, KvCacheType::kBF16, KvCacheType::kF16};

// x stored in a cache of type `type`: its bits (2-byte types) and the fp32 value read back.
uint16_t to_bits(float x, KvCacheType type) {
  return type == KvCacheType::kBF16 ? cadence::kernels::float_to_bf16(x)
                                    : cadence::kernels::float_to_f16(x);
}
float from_bits(uint16_t h, KvCacheType type) {
  return type == KvCacheType::kBF16 ? cadence::kernels::bf16_to_float(h)
                                    : cadence::kernels::f16_to_float(h);
}

struct SeqSpec {
  int32_t context_len;
  int32_t num_queries;  // the newest tokens of the sequence
};

struct AttnCase {
  int64_t num_heads, num_kv_heads, head_dim, block_size;
  std::vector<SeqSpec> seqs;
  int64_t window = 0;    // AttentionBatch::sliding_window
  float softcap = 0.0f;  // AttentionBatch::softcap
};

// The first key a row at `pos` sees.
int64_t first_key(int64_t pos, int64_t window) {
  return window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0;
}

// A filled cache plus the queries of every sequence (rows in sequence order).
struct AttnFixture {
  AttnCase spec;
  KvCacheType type;
  // The cache's values as fp32 (already rounded to `type`): the reference's input, and the
  // storage of fp32_cache.
  std::vector<float> k_cache, v_cache;
  std::vector<uint16_t> k_bits, v_bits;  // the 2-byte storage of `cache` (bf16 / fp16)
  PagedKvCache cache;                    // of `type`
  PagedKvCache fp32_cache;               // the same values in an fp32 cache
  std::vector<int32_t> block_tables;     // [num_seqs][max_blocks_per_seq], -1 padded
  int64_t max_blocks_per_seq = 0;
  std::vector<float> q;  // rows of num_heads * head_dim, stride ld_q
  int64_t ld_q = 0;
  std::vector<int32_t> seq_row_begin;  // first q row of each sequence

  AttnFixture(const AttnCase& c, uint64_t seed, KvCacheType kv_type = KvCacheType::kF32)
      : spec(c), type(kv_type) {
    Rng rng(seed);
    int64_t num_used_blocks = 0;
    for (const SeqSpec& s : c.seqs) {
      max_blocks_per_seq =
          std::max<int64_t>(max_blocks_per_seq, (s.context_len + c.block_size - 1) / c.block_size);
      num_used_blocks += (s.context_len + c.block_size - 1) / c.block_size;
    }
    max_blocks_per_seq += 2;
    const int64_t num_blocks = num_used_blocks + 3;
    // Shuffled block ids: tables are non-contiguous and interleaved between sequences.
    std::vector<int32_t> ids(num_blocks);
    std::iota(ids.begin(), ids.end(), 0);
    for (int64_t i = num_blocks - 1; i > 0; --i) std::swap(ids[i], ids[rng.next() % (i + 1)]);
    const int64_t block_floats = c.num_kv_heads * c.block_size * c.head_dim;
    // Everything not holding a token is NaN: reading it would poison the output.
    k_cache.assign(num_blocks * block_floats, NAN);
    v_cache.assign(num_blocks * block_floats, NAN);
    block_tables.assign(c.seqs.size() * max_blocks_per_seq, -1);
    int64_t next_id = 0, num_rows = 0;
    for (size_t s = 0; s < c.seqs.size(); ++s) {
      for (int64_t t = 0; t < c.seqs[s].context_len; ++t) {
        if (t % c.block_size == 0)
          block_tables[s * max_blocks_per_seq + t / c.block_size] = ids[next_id++];
        const int64_t block = block_tables[s * max_blocks_per_seq + t / c.block_size];
        for (int64_t h = 0; h < c.num_kv_heads; ++h) {
          const int64_t base =
              ((block * c.num_kv_heads + h) * c.block_size + t % c.block_size) * c.head_dim;
          for (int64_t d = 0; d < c.head_dim; ++d) {
            k_cache[base + d] = rng.uniform(-1.0f, 1.0f);
            v_cache[base + d] = rng.uniform(-1.0f, 1.0f);
            // Now and then a tiny value: fp16 subnormals (below 2^-14) must widen exactly too.
            if (rng.next() % 32 == 0) k_cache[base + d] *= 0x1p-17f;
            if (rng.next() % 32 == 0) v_cache[base + d] *= 0x1p-17f;
          }
        }
      }
      seq_row_begin.push_back(static_cast<int32_t>(num_rows));
      num_rows += c.seqs[s].num_queries;
      poison_before_windows(s, ids[num_blocks - 1]);
    }
    fp32_cache.k_cache = k_cache.data();
    fp32_cache.v_cache = v_cache.data();
    fp32_cache.type = KvCacheType::kF32;
    fp32_cache.num_blocks = num_blocks;
    fp32_cache.block_size = c.block_size;
    fp32_cache.num_kv_heads = c.num_kv_heads;
    fp32_cache.head_dim = c.head_dim;
    cache = fp32_cache;
    if (type != KvCacheType::kF32) {
      // Round to the type (NaN poison stays NaN); the fp32 copies keep the rounded values.
      k_bits.resize(k_cache.size());
      v_bits.resize(v_cache.size());
      for (size_t i = 0; i < k_cache.size(); ++i) {
        k_bits[i] = to_bits(k_cache[i], type);
        v_bits[i] = to_bits(v_cache[i], type);
        k_cache[i] = from_bits(k_bits[i], type);
        v_cache[i] = from_bits(v_bits[i], type);
      }
      cache.k_cache = k_bits.data();
      cache.v_cache = v_bits.data();
      cache.type = type;
    }
    ld_q = c.num_heads * c.head_dim + 5;
    q = rng.uniform_vector(num_rows * ld_q);
  }

  int64_t row_width() const { return spec.num_heads * spec.head_dim; }

  // Keys of sequence s older than its first query row's window become NaN; blocks wholly
  // before it are replaced by `nan_block` (never assigned to a token, all NaN).
  void poison_before_windows(size_t s, int32_t nan_block) {
    const SeqSpec& seq = spec.seqs[s];
    const int64_t lo = first_key(seq.context_len - seq.num_queries, spec.window);
    for (int64_t t = 0; t < lo; ++t) {
      int32_t& entry = block_tables[s * max_blocks_per_seq + t / spec.block_size];
      for (int64_t h = 0; h < spec.num_kv_heads; ++h) {
        const int64_t base =
            ((entry * spec.num_kv_heads + h) * spec.block_size + t % spec.block_size) *
            spec.head_dim;
        std::fill_n(&k_cache[base], spec.head_dim, NAN);
        std::fill_n(&v_cache[base], spec.head_dim, NAN);
      }
      if ((t / spec.block_size + 1) * spec.block_size <= lo) entry = nan_block;
    }
  }

  // Runs attention for sequences `which`, each with only its last `tail[i]` query rows, over
  // `cache` (or fp32_cache when use_fp32_cache); returns their output rows packed (stride
  // row_width()).
  std::vector<float> run(const KernelTable& t, ThreadPool& pool, const std::vector<int>& which,
                         const std::vector<int32_t>& tail, bool use_fp32_cache = false) const {
    std::vector<int32_t> query_start = {0}, context_lens, tables;
    std::vector<float> q_sub;
    for (size_t i = 0; i < which.size(); ++i) {
      const int s = which[i];
      const int32_t first = seq_row_begin[s] + spec.seqs[s].num_queries - tail[i];
      for (int32_t r = first; r < first + tail[i]; ++r) {
        q_sub.insert(q_sub.end(), q.begin() + r * ld_q, q.begin() + (r + 1) * ld_q);
      }
      query_start.push_back(query_start.back() + tail[i]);
      context_lens.push_back(spec.seqs[s].context_len);
      tables.insert(tables.end(), block_tables.begin() + s * max_blocks_per_seq,
                    block_tables.begin() + (s + 1) * max_blocks_per_seq);
    }
    AttentionBatch batch;
    batch.num_seqs = static_cast<int64_t>(which.size());
    batch.query_start = query_start.data();
    batch.context_lens = context_lens.data();
    batch.block_tables = tables.data();
    batch.max_blocks_per_seq = max_blocks_per_seq;
    batch.sliding_window = spec.window;
    batch.softcap = spec.softcap;
    const int64_t ld_out = row_width() + 3;
    std::vector<float> out(query_start.back() * ld_out, 7.0f);
    const float scale = 1.0f / std::sqrt(static_cast<float>(spec.head_dim));
    cpu::paged_attention(t, pool, q_sub.data(), ld_q, spec.num_heads, batch,
                         use_fp32_cache ? fp32_cache : cache, scale, out.data(), ld_out);
    std::vector<float> packed;
    for (int64_t r = 0; r < query_start.back(); ++r) {
      for (int64_t i = row_width(); i < ld_out; ++i) CHECK(out[r * ld_out + i] == 7.0f);
      packed.insert(packed.end(), out.begin() + r * ld_out, out.begin() + r * ld_out + row_width());
    }
    return packed;
  }

  std::vector<float> run_all(const KernelTable& t, ThreadPool& pool,
                             bool use_fp32_cache = false) const {
    std::vector<int> which(spec.seqs.size());
    std::iota(which.begin(), which.end(), 0);
    std::vector<int32_t> tail;
    for (const SeqSpec& s : spec.seqs) tail.push_back(s.num_queries);
    return run(t, pool, which, tail, use_fp32_cache);
  }

  // Checks `out` (all rows, packed) against a double-precision reference computed on the
  // cache's values (rounded to its type: the kernel is exact from there on, so the tolerance
  // is that of fp32 arithmetic whatever the type).
  int count_mismatches(const std::vector<float>& out) const {
    const int64_t dim = spec.head_dim;
    const int64_t group = spec.num_heads / spec.num_kv_heads;
    const double scale = 1.0 / std::sqrt(static_cast<double>(static_cast<float>(dim)));
    int num_bad = 0;
    for (size_t s = 0; s < spec.seqs.size(); ++s) {
      const SeqSpec& seq = spec.seqs[s];
      for (int32_t i = 0; i < seq.num_queries; ++i) {
        const int64_t row = seq_row_begin[s] + i;
        const int64_t pos = seq.context_len - seq.num_queries + i;
        for (int64_t h = 0; h < spec.num_heads; ++h) {
          const float* qh = &q[row * ld_q + h * dim];
          const int64_t lo = first_key(pos, spec.window);
          std::vector<double> w(pos + 1), acc(dim, 0.0);
          double max_score = -INFINITY, sum = 0.0;
          for (int64_t t = lo; t <= pos; ++t) {
            const int64_t block = block_tables[s * max_blocks_per_seq + t / spec.block_size];
            const int64_t base =
                ((block * spec.num_kv_heads + h / group) * spec.block_size + t % spec.block_size) *
                dim;
            double dot = 0.0;
            for (int64_t d = 0; d < dim; ++d) dot += double(qh[d]) * k_cache[base + d];
            w[t] = dot * static_cast<float>(scale);
            if (spec.softcap > 0) w[t] = spec.softcap * std::tanh(w[t] / spec.softcap);
            max_score = std::max(max_score, w[t]);
          }
          for (int64_t t = lo; t <= pos; ++t) {
            w[t] = std::exp(w[t] - max_score);
            sum += w[t];
            const int64_t block = block_tables[s * max_blocks_per_seq + t / spec.block_size];
            const int64_t base =
                ((block * spec.num_kv_heads + h / group) * spec.block_size + t % spec.block_size) *
                dim;
            for (int64_t d = 0; d < dim; ++d) acc[d] += w[t] * v_cache[base + d];
          }
          for (int64_t d = 0; d < dim; ++d) {
            const double ref = acc[d] / sum;
            // |q|, |k|, |v| <= 1 (rounding to bf16 / fp16 keeps that). Scores carry <= dim u *
            // scale * dim of fp32 error (a shift of a weight's log), exp ~3 ulp, and the fp32 sums
            // over pos + 1 keys ~(pos + 1) u relative; the output is a convex combination of v, so
            // the absolute error is bounded by (pos + 1 + dim * dim * scale + 8) u. Factor 2 for
            // the rescaling steps. Soft-capping cannot amplify a score error (tanh' <= 1); its own
            // tanh adds a few ulp of 1, times the cap.
            const double cap_error = spec.softcap > 0 ? 8.0 * (1.0 + spec.softcap) : 0.0;
            const double tol = 2 * (pos + 1 + dim * dim * scale + 8 + cap_error) * kEps;
            num_bad += !(std::fabs(out[row * row_width() + h * dim + d] - ref) <= tol);
          }
        }
      }
    }
    return num_bad;
  }
};

const std::vector<AttnCase>& cases() {
  static const std::vector<AttnCase> all = {
      // 6 heads over 2 kv heads: decode, decode past one 64-key chunk, full prefill, chunked
      // prefill, a one-token context.
      {6, 2, 64, 16, {{37, 1}, {130, 1}, {50, 50}, {70, 13}, {1, 1}}},
      // 3 heads over 1 kv head, head_dim not a multiple of any SIMD width, odd block size.
      {3, 1, 20, 5, {{23, 23}, {9, 2}, {41, 1}}},
      // plain multi-head, blocks longer than the 64-key chunk.
      {4, 4, 32, 80, {{200, 7}, {90, 90}}},
      // SmolLM2-135M shape (9 heads, 3 kv heads, 64 dims): one long decode, heads get split.
      {9, 3, 64, 16, {{300, 1}}},
      // 40 heads per kv head: more pairs than one item holds.
      {40, 1, 16, 16, {{10, 10}, {33, 1}}},
      // Several 256-key partitions: a long decode (split over threads when they would idle)
      // and a prefill chunk whose rows span partitions (merged inside one item).
      {6, 2, 32, 16, {{1100, 1}, {600, 40}, {5, 1}}},
      // Sliding window 24 (< one chunk): decode, full prefill, chunked prefill, a context
      // shorter than the window.
      {6, 2, 32, 16, {{100, 1}, {90, 90}, {200, 13}, {5, 5}}, 24},
      // Window 300 over 256-key partitions: split long decodes whose first partitions are
      // outside the window, and prefill rows whose windows start in different partitions.
      {4, 2, 20, 5, {{700, 1}, {600, 70}, {1200, 1}, {300, 1}}, 300},
      // Window == the 64-key chunk, blocks longer than a chunk; window 1 (only itself).
      {3, 1, 64, 80, {{150, 150}, {81, 2}}, 64},
      {2, 1, 16, 16, {{40, 40}, {17, 1}}, 1},
      // A window longer than every context: plain causal attention.
      {4, 4, 32, 16, {{50, 50}, {20, 1}}, 1000},
      // Soft-capped scores (Gemma 2), a cap small enough to saturate tanh: causal over several
      // partitions and chunks, and with a window.
      {6, 2, 32, 16, {{600, 1}, {90, 90}, {70, 13}}, 0, 0.5f},
      {4, 2, 20, 5, {{100, 1}, {90, 90}}, 24, 2.0f},
  };
  return all;
}

const char* type_name(KvCacheType type) { return cadence::kernels::kv_cache_type_name(type); }

TEST(paged_attention_matches_reference_all_isas_and_kv_types) {
  ThreadPool pool1(1), pool2(2);
  uint64_t seed = 10;
  for (const AttnCase& c : cases()) {
    ++seed;
    for (KvCacheType type : kKvTypes) {
      const AttnFixture fx(c, seed, type);
      for (const KernelTable* t : cadence_test::all_tables()) {
        for (ThreadPool* pool : {&pool1, &pool2}) {
          const int num_bad = fx.count_mismatches(fx.run_all(*t, *pool));
          if (num_bad != 0) {
            std::printf(
                "  isa=%s kv=%s heads=%ld/%ld dim=%ld block=%ld window=%ld threads=%d: %d bad\n",
                t->name, type_name(type), static_cast<long>(c.num_heads),
                static_cast<long>(c.num_kv_heads), static_cast<long>(c.head_dim),
                static_cast<long>(c.block_size), static_cast<long>(c.window), pool->num_threads(),
                num_bad);
          }
          CHECK(num_bad == 0);
        }
      }
    }
  }
}

// The contract of the 2-byte types: widening is exact and everything after it is the fp32
// code, so a bf16 / fp16 cache gives bit for bit the output of an fp32 cache holding the same
// rounded values, on every ISA table, thread count and split.
TEST(paged_attention_16_bit_kv_equals_fp32_kv_on_rounded_values_bitwise) {
  ThreadPool pool1(1), pool2(2);
  uint64_t seed = 50;
  for (const AttnCase& c : cases()) {
    ++seed;
    for (KvCacheType type : {KvCacheType::kBF16, KvCacheType::kF16}) {
      const AttnFixture fx(c, seed, type);
      for (const KernelTable* t : cadence_test::all_tables()) {
        for (ThreadPool* pool : {&pool1, &pool2}) {
          const std::vector<float> got = fx.run_all(*t, *pool);
          const std::vector<float> expected = fx.run_all(*t, *pool, /*use_fp32_cache=*/true);
          const bool same = std::memcmp(got.data(), expected.data(), got.size() * 4) == 0;
          if (!same) {
            std::printf("  isa=%s kv=%s heads=%ld/%ld dim=%ld threads=%d: differs from fp32\n",
                        t->name, type_name(type), static_cast<long>(c.num_heads),
                        static_cast<long>(c.num_kv_heads), static_cast<long>(c.head_dim),
                        pool->num_threads());
          }
          CHECK(same);
        }
      }
    }
  }
}

// The emulated AVX-512 table runs the AVX-512 algorithm (16-wide registers, the same tiles and
// reduction trees) on AVX2, so where the real one runs too they must agree bit for bit, for
// every KV type. (Scalar, AVX2 and AVX-512 are different algorithms, 1, 8 and 16 lanes per
// dot product, and agree only to rounding, as in the reference test above.)
TEST(paged_attention_emulated_avx512_equals_avx512_bitwise) {
  const KernelTable* real = cpu::kernel_table(cadence::kernels::Isa::kAvx512);
  const KernelTable* emulated = cpu::emulated_avx512_kernel_table();
  if (real == nullptr || emulated == nullptr) {
    std::printf("  (skipped: AVX-512 does not run here)\n");
    return;
  }
  ThreadPool pool(2);
  uint64_t seed = 70;
  for (const AttnCase& c : cases()) {
    ++seed;
    for (KvCacheType type : kKvTypes) {
      const AttnFixture fx(c, seed, type);
      const std::vector<float> a = fx.run_all(*real, pool), b = fx.run_all(*emulated, pool);
      const bool same = std::memcmp(a.data(), b.data(), a.size() * 4) == 0;
      if (!same) {
        std::printf("  kv=%s heads=%ld/%ld dim=%ld: avx512 and its emulation differ\n",
                    type_name(type), static_cast<long>(c.num_heads),
                    static_cast<long>(c.num_kv_heads), static_cast<long>(c.head_dim));
      }
      CHECK(same);
    }
  }
}

TEST(paged_attention_is_batch_and_thread_invariant_bitwise) {
  ThreadPool pool1(1), pool2(2), pool3(3);
  uint64_t seed = 100;
  for (const AttnCase& c : cases()) {
    ++seed;
    for (KvCacheType type : kKvTypes) {
      const AttnFixture fx(c, seed, type);
      const int64_t width = fx.row_width();
      for (const KernelTable* t : cadence_test::all_tables()) {
        const std::vector<float> full = fx.run_all(*t, pool1);
        for (ThreadPool* pool : {&pool2, &pool3}) {
          const std::vector<float> again = fx.run_all(*t, *pool);
          CHECK(std::memcmp(again.data(), full.data(), full.size() * 4) == 0);
        }
        for (size_t s = 0; s < c.seqs.size(); ++s) {
          const int32_t nq = c.seqs[s].num_queries;
          const float* expected = &full[(fx.seq_row_begin[s] + 0) * width];
          // The sequence alone, all its query rows.
          for (ThreadPool* pool : {&pool1, &pool2}) {
            const std::vector<float> alone = fx.run(*t, *pool, {static_cast<int>(s)}, {nq});
            CHECK(std::memcmp(alone.data(), expected, alone.size() * 4) == 0);
          }
          // Only its last rows (a later prefill chunk), next to another sequence.
          if (nq > 1) {
            const int32_t tail = (nq + 1) / 2;
            const int other = static_cast<int>((s + 1) % c.seqs.size());
            const std::vector<float> part =
                fx.run(*t, pool2, {other, static_cast<int>(s)}, {1, tail});
            const float* expected_tail = &full[(fx.seq_row_begin[s] + nq - tail) * width];
            CHECK(std::memcmp(part.data() + width, expected_tail, tail * width * 4) == 0);
          }
        }
      }
    }
  }
}

// Every 16-bit pattern (NaN, inf, subnormals and -0 included) as a value of a one-token
// sequence, whose output is exactly that value widened (one key: p = exp(0) = 1, the sum is 1,
// out = fma(1, v, 0) / 1; only -0 comes out as +0). head_dim 16 takes every element through
// the SIMD loads (load_kv), head_dim 4 through the scalar tails (widen_kv), on every table.
TEST(paged_attention_widens_every_16_bit_pattern_exactly) {
  ThreadPool pool(2);
  for (KvCacheType type : {KvCacheType::kBF16, KvCacheType::kF16}) {
    for (int64_t head_dim : {16, 4}) {
      const int64_t num_seqs = 65536 / head_dim;
      std::vector<uint16_t> k_bits(65536, 0), v_bits(65536);  // keys: +0
      for (int64_t i = 0; i < 65536; ++i) v_bits[i] = static_cast<uint16_t>(i);
      PagedKvCache cache;
      cache.k_cache = k_bits.data();
      cache.v_cache = v_bits.data();
      cache.type = type;
      cache.num_blocks = num_seqs;
      cache.block_size = 1;
      cache.num_kv_heads = 1;
      cache.head_dim = head_dim;
      std::vector<int32_t> query_start(num_seqs + 1), context_lens(num_seqs, 1), tables(num_seqs);
      std::iota(query_start.begin(), query_start.end(), 0);
      std::iota(tables.begin(), tables.end(), 0);
      AttentionBatch batch;
      batch.num_seqs = num_seqs;
      batch.query_start = query_start.data();
      batch.context_lens = context_lens.data();
      batch.block_tables = tables.data();
      batch.max_blocks_per_seq = 1;
      const std::vector<float> q(65536, 0.5f);
      for (const KernelTable* t : cadence_test::all_tables()) {
        std::vector<float> out(65536, 7.0f);
        cpu::paged_attention(*t, pool, q.data(), head_dim, 1, batch, cache, 1.0f, out.data(),
                             head_dim);
        int num_bad = 0;
        for (int64_t i = 0; i < 65536; ++i) {
          float expected = from_bits(static_cast<uint16_t>(i), type);
          if (expected == 0.0f) expected = 0.0f;  // -0 -> +0
          if (std::isnan(expected)) {
            // Arithmetic makes a signaling NaN quiet (bf16 widening keeps its bits).
            uint32_t bits;
            std::memcpy(&bits, &expected, 4);
            bits |= 0x00400000u;
            std::memcpy(&expected, &bits, 4);
          }
          num_bad += std::memcmp(&out[i], &expected, 4) != 0;
        }
        if (num_bad != 0) {
          std::printf("  isa=%s kv=%s head_dim=%ld: %d patterns widened wrongly\n", t->name,
                      type_name(type), static_cast<long>(head_dim), num_bad);
        }
        CHECK(num_bad == 0);
      }
    }
  }
}

// write_kv_cache stores float_to_bf16 / float_to_f16 of every value (round to nearest even,
// NaN / inf / overflow / subnormal handling as half.h) and the fp32 bits unchanged; padding
// slots (< 0) and untouched slots are left alone.
TEST(write_kv_cache_rounds_to_the_cache_type_exactly) {
  Rng rng(8);
  ThreadPool pool(2);
  const int64_t num_blocks = 4, block_size = 5, num_kv_heads = 3, head_dim = 7;
  const int64_t num_elems = num_blocks * block_size * num_kv_heads * head_dim;
  const int64_t ld = num_kv_heads * head_dim + 2;
  const std::vector<int32_t> slots = {17, 3, -1, 0, 19, 8};
  const int64_t num_tokens = static_cast<int64_t>(slots.size());
  // Random fp32 bit patterns (every class of value), with ties and near-ties for both formats
  // and a few named specials.
  std::vector<float> k(num_tokens * ld), v(num_tokens * ld);
  const uint32_t specials[] = {0x3F808000u, 0x3F818000u, 0x3F801000u, 0x3F803000u, 0x7F7F8000u,
                               0x477FF000u, 0x477FEFFFu, 0x33000000u, 0x33000001u, 0x387FC000u,
                               0x80000000u, 0x7FC00001u, 0xFF800000u, 0x00000001u};
  for (int64_t i = 0; i < num_tokens * ld; ++i) {
    uint32_t bits[2];
    for (uint32_t& b : bits) {
      b = static_cast<uint32_t>(rng.next() >> 32);
      const uint64_t kind = rng.next() % 8;
      if (kind == 0) b = (b & 0xFFFF0000u) | 0x8000u;      // bf16 tie
      if (kind == 1) b = (b & 0xFFFFE000u) | 0x1000u;      // fp16 tie (normal range)
      if (kind == 2) b = 0x3F000000u + (b & 0x0FFFFFFFu);  // |x| in fp16's range
      if (kind == 3) b = specials[rng.next() % (sizeof(specials) / sizeof(specials[0]))];
    }
    std::memcpy(&k[i], &bits[0], 4);
    std::memcpy(&v[i], &bits[1], 4);
  }
  for (KvCacheType type : kKvTypes) {
    const int64_t bytes = cadence::kernels::kv_cache_type_bytes(type);
    std::vector<unsigned char> kc(num_elems * bytes, 0xAB), vc(num_elems * bytes, 0xAB);
    PagedKvCache cache;
    cache.k_cache = kc.data();
    cache.v_cache = vc.data();
    cache.type = type;
    cache.num_blocks = num_blocks;
    cache.block_size = block_size;
    cache.num_kv_heads = num_kv_heads;
    cache.head_dim = head_dim;
    cadence::kernels::cpu::write_kv_cache(pool, k.data(), v.data(), num_tokens, ld, slots.data(),
                                          cache);
    std::vector<bool> written(num_elems, false);
    int num_bad = 0;
    for (int64_t t = 0; t < num_tokens; ++t) {
      if (slots[t] < 0) continue;
      const int64_t block = slots[t] / block_size, offset = slots[t] % block_size;
      for (int64_t h = 0; h < num_kv_heads; ++h) {
        for (int64_t d = 0; d < head_dim; ++d) {
          const int64_t idx = ((block * num_kv_heads + h) * block_size + offset) * head_dim + d;
          written[idx] = true;
          for (int side = 0; side < 2; ++side) {
            const float x = (side == 0 ? k : v)[t * ld + h * head_dim + d];
            const unsigned char* stored = (side == 0 ? kc : vc).data() + idx * bytes;
            unsigned char expected[4];
            if (type == KvCacheType::kF32) {
              std::memcpy(expected, &x, 4);
            } else {
              const uint16_t h16 = to_bits(x, type);
              std::memcpy(expected, &h16, 2);
            }
            num_bad += std::memcmp(stored, expected, bytes) != 0;
          }
        }
      }
    }
    for (int64_t i = 0; i < num_elems; ++i) {
      if (written[i]) continue;
      for (int64_t b = 0; b < bytes; ++b) {
        num_bad += kc[i * bytes + b] != 0xAB;
        num_bad += vc[i * bytes + b] != 0xAB;
      }
    }
    if (num_bad != 0) std::printf("  kv=%s: %d bad bytes / elements\n", type_name(type), num_bad);
    CHECK(num_bad == 0);
  }
}

}  // namespace

TEST_MAIN()
