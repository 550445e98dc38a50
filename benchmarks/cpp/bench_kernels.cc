// Micro-benchmark of the CPU kernels: GEMM GFLOPS (M >= 2) or weight GB/s (M = 1, weights
// rotated over enough copies to defeat the last-level cache) on SmolLM2-135M shapes, for each
// weight storage type (fp32, bf16, fp16, and the quantized q4 = Q4_1-like 4-bit codes, q8 =
// int8 codes, both in blocks of 32 with fp16 scales) with its speed relative to fp32, and paged
// attention for decode and prefill over each KV cache type (fp32, bf16, fp16).
//
//   bench_kernels [--isa=scalar|avx2|avx512] [--threads=1,2] [--m=1,32,512] [--quick]
//                 [--shape=NxK[,NxK...]] [--types=f32,bf16,f16,q4,q8] [--no-attention]
//                 [--no-gemm] [--cpu-time] [--kv-types=f32,bf16,f16]
//
// Timing: each case repeats until it has run >= 0.2 s (>= 2 calls after a warm-up call) and
// reports the best of 3 such batches, i.e. the steady-state speed of a warm process. The
// weight types of one GEMM shape, M and thread count take turns batch by batch, so their
// ratios compare like with like on a loaded machine. Attention does the same with the KV cache
// types (--kv-types: fp32, bf16, fp16 by default).
// --cpu-time measures the calling thread's CPU time instead of wall time: on a machine shared
// with other jobs it excludes the time this thread was descheduled (the calling thread runs
// chunk 0 and then waits for the others, so it approximates the wall time of an idle machine).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "kernels/cpu/kernel_table.h"
#include "kernels/cpu/ops_cpu.h"
#include "kernels/half.h"
#include "kernels/isa.h"
#include "kernels/ops.h"
#include "kernels/quantized_rows.h"

namespace {

using cadence::ThreadPool;
using cadence::kernels::Isa;
using cadence::kernels::KvCacheType;
using cadence::kernels::PackedWeight;
using cadence::kernels::WeightType;
using cadence::kernels::cpu::KernelTable;
namespace cpu = cadence::kernels::cpu;

bool g_use_cpu_time = false;

double now_seconds() {
  if (g_use_cpu_time) {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Seconds per call of each of fns (best of 3 batches each). The functions' batches are
// interleaved (batch 1 of every function, then batch 2, ...) so that a change in the load of
// a shared machine hits them alike, which keeps their ratios meaningful.
std::vector<double> time_per_call_each(const std::vector<std::function<void()>>& fns,
                                       double min_batch_seconds = 0.2) {
  for (const auto& fn : fns) fn();  // warm-up
  std::vector<double> best(fns.size(), 1e30);
  for (int batch = 0; batch < 3; ++batch) {
    for (size_t f = 0; f < fns.size(); ++f) {
      int64_t calls = 0;
      const double start = now_seconds();
      double elapsed = 0.0;
      do {
        fns[f]();
        ++calls;
        elapsed = now_seconds() - start;
      } while (elapsed < min_batch_seconds || calls < 2);
      best[f] = std::min(best[f], elapsed / static_cast<double>(calls));
    }
  }
  return best;
}

std::vector<float> random_vector(int64_t n, uint32_t seed) {
  std::vector<float> v(static_cast<size_t>(n));
  uint32_t s = seed * 2654435761u + 1;
  for (auto& x : v) {
    s = s * 1664525u + 1013904223u;
    x = static_cast<float>(s >> 8) / static_cast<float>(1u << 24) - 0.5f;
  }
  return v;
}

struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};
using HugeBuffer = std::unique_ptr<float[], FreeDeleter>;

// A copy of `values` on 2 MiB transparent huge pages (where available), as an engine should
// allocate its KV cache: on 4 KiB pages every page (= one 16-token block of one kv head at
// head_dim 64) restarts the hardware prefetchers and costs a TLB miss (measured ~10% slower
// decode attention once the cache outgrows the last-level cache).
HugeBuffer alloc_huge(const std::vector<float>& values) {
  const size_t huge = size_t{2} << 20;
  const size_t bytes = (values.size() * sizeof(float) + huge - 1) / huge * huge;
  float* p = static_cast<float*>(std::aligned_alloc(huge, bytes));
  if (p == nullptr) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  madvise(p, bytes, MADV_HUGEPAGE);
#endif
  std::memcpy(p, values.data(), values.size() * sizeof(float));
  return HugeBuffer(p);
}

std::vector<int64_t> parse_list(const std::string& text) {
  std::vector<int64_t> values;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t comma = text.find(',', pos);
    values.push_back(std::stoll(text.substr(pos, comma - pos)));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return values;
}

// W[n][k] packed as `type`: floats as they are; q8 through the int8 weight quantizer; q4 as a
// Q4_1-style asymmetric 4-bit code per element (block 32, fp16 scale and min).
PackedWeight pack_as(const std::vector<float>& w, int64_t n, int64_t k, WeightType type) {
  namespace kernels = cadence::kernels;
  if (type == WeightType::kQ8) {
    return PackedWeight::pack_quantized(kernels::quantize_rows_int8(w.data(), n, k, k));
  }
  if (type != WeightType::kQ4) return PackedWeight::pack(w.data(), n, k, k, type);
  kernels::QuantizedRows q;
  q.resize(n, k, 32);
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t b = 0; b < k / 32; ++b) {
      const float* x = w.data() + r * k + b * 32;
      const float lo = *std::min_element(x, x + 32), hi = *std::max_element(x, x + 32);
      const float scale = kernels::f16_to_float(kernels::float_to_f16((hi - lo) / 15.0f));
      const float min = kernels::f16_to_float(kernels::float_to_f16(lo));
      q.scales[r * (k / 32) + b] = scale;
      q.mins[r * (k / 32) + b] = min;
      for (int i = 0; i < 32; ++i) {
        const float level = scale > 0 ? std::nearbyint((x[i] - min) / scale) : 0.0f;
        q.codes[r * k + b * 32 + i] = static_cast<uint8_t>(std::min(15.0f, std::max(0.0f, level)));
      }
    }
  }
  return PackedWeight::pack_quantized(q);
}

struct GemmShape {
  const char* name;
  int64_t n, k;
};

void bench_gemm(const KernelTable& table, const std::vector<int64_t>& thread_counts,
                const std::vector<int64_t>& ms, const std::vector<GemmShape>& shapes,
                const std::vector<WeightType>& types) {
  std::printf(
      "\nGEMM C[M,N] = A[M,K] W[N,K]^T, isa=%s  (M=1: GB/s of weights as stored, else "
      "GFLOPS; xf32: fp32 time / this time)\n",
      cadence::kernels::isa_name(table.isa));
  std::printf("%-10s %6s %6s %6s %5s", "weight", "N", "K", "M", "type");
  for (int64_t t : thread_counts) std::printf("   %2ld thr       xf32", static_cast<long>(t));
  std::printf("\n");
  for (const GemmShape& shape : shapes) {
    const std::vector<float> w = random_vector(shape.n * shape.k, 1);
    const std::vector<float> w2 = random_vector(shape.n * shape.k, 2);
    // weights[type]: one packed copy, or for M = 1 enough copies to stream from DRAM.
    std::vector<std::vector<PackedWeight>> weights(types.size());
    for (size_t ti = 0; ti < types.size(); ++ti) {
      weights[ti].push_back(pack_as(w, shape.n, shape.k, types[ti]));
    }
    for (int64_t m : ms) {
      if (m == 1) {
        // M = 1 is memory-bound: rotate over copies of W totalling >= 64 MiB so every call
        // streams its weights from DRAM, as a decode step does.
        for (size_t ti = 0; ti < types.size(); ++ti) {
          std::vector<PackedWeight>& copies = weights[ti];
          const int64_t num_copies =
              std::max<int64_t>(1, (64ll << 20) / copies[0].size_bytes() + 1);
          while (static_cast<int64_t>(copies.size()) < num_copies) {
            copies.push_back(pack_as(w2, shape.n, shape.k, types[ti]));
          }
        }
      }
      const std::vector<float> a = random_vector(m * shape.k, 3);
      std::vector<float> c(m * shape.n);
      // seconds[thread count][type], all types of one thread count timed together.
      std::vector<std::vector<double>> seconds;
      for (int64_t num_threads : thread_counts) {
        ThreadPool pool(static_cast<int>(num_threads));
        std::vector<size_t> next(types.size(), 0);
        std::vector<std::function<void()>> calls;
        for (size_t ti = 0; ti < types.size(); ++ti) {
          calls.push_back([&, ti] {
            const std::vector<PackedWeight>& copies = weights[ti];
            cpu::gemm(table, pool, a.data(), m, shape.k, copies[next[ti]], nullptr, c.data(),
                      shape.n);
            next[ti] = m == 1 ? (next[ti] + 1) % copies.size() : 0;
          });
        }
        seconds.push_back(time_per_call_each(calls));
      }
      for (size_t ti = 0; ti < types.size(); ++ti) {
        std::printf("%-10s %6ld %6ld %6ld %5s", shape.name, static_cast<long>(shape.n),
                    static_cast<long>(shape.k), static_cast<long>(m),
                    cadence::kernels::weight_type_name(types[ti]));
        for (size_t ci = 0; ci < thread_counts.size(); ++ci) {
          const double t = seconds[ci][ti];
          if (m == 1) {
            std::printf("  %5.1f GB/s", static_cast<double>(weights[ti][0].size_bytes()) / t / 1e9);
          } else {
            std::printf("  %5.1f GF/s", 2.0 * m * shape.n * shape.k / t / 1e9);
          }
          // Relative to fp32 when fp32 is among the types.
          double f32 = 0.0;
          for (size_t tj = 0; tj < types.size(); ++tj) {
            if (types[tj] == WeightType::kF32) f32 = seconds[ci][tj];
          }
          if (f32 > 0.0) {
            std::printf("  %5.2fx", f32 / t);
          } else {
            std::printf("  %6s", "-");
          }
        }
        std::printf("\n");
      }
      std::fflush(stdout);
    }
  }
}

// n values stored as a KV cache of `type` (bf16 / fp16: rounded to nearest even), on huge
// pages like alloc_huge.
HugeBuffer alloc_huge_kv(const std::vector<float>& values, KvCacheType type) {
  if (type == KvCacheType::kF32) return alloc_huge(values);
  const size_t elem_bytes = static_cast<size_t>(cadence::kernels::kv_cache_type_bytes(type));
  const size_t huge = size_t{2} << 20;
  const size_t bytes = (values.size() * elem_bytes + huge - 1) / huge * huge;
  void* p = std::aligned_alloc(huge, bytes);
  if (p == nullptr) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  madvise(p, bytes, MADV_HUGEPAGE);
#endif
  auto* out = static_cast<uint16_t*>(p);
  for (size_t i = 0; i < values.size(); ++i) {
    out[i] = type == KvCacheType::kBF16 ? cadence::kernels::float_to_bf16(values[i])
                                        : cadence::kernels::float_to_f16(values[i]);
  }
  return HugeBuffer(static_cast<float*>(p));
}

const char* kv_type_short_name(KvCacheType type) {
  return type == KvCacheType::kF32 ? "f32" : type == KvCacheType::kBF16 ? "bf16" : "f16";
}

// SmolLM2-135M attention (9 heads, 3 kv heads, head_dim 64, block size 16) over a KV cache of
// each type in kv_types, side by side: the types take turns batch by batch
// (time_per_call_each), so their ratios (xf32 = fp32 time / this time) compare like with like.
// A case with num_layers > 1 runs that many layers per call, each over its own cache (as one
// decode step of the model does), so that the caches together outgrow the last-level cache;
// times are per layer. KV GB/s counts the cache bytes as stored (half for bf16 / fp16).
void bench_attention(const KernelTable& table, const std::vector<int64_t>& thread_counts,
                     const std::vector<KvCacheType>& kv_types) {
  const int64_t num_heads = 9, num_kv_heads = 3, head_dim = 64, block_size = 16;
  struct Case {
    const char* name;
    int64_t num_seqs, context_len, num_queries, num_layers;
  };
  const Case cases[] = {{"decode", 1, 512, 1, 1},    {"decode", 1, 2048, 1, 1},
                        {"decode", 1, 4096, 1, 1},   {"decode", 1, 4096, 1, 30},
                        {"decode", 8, 1024, 1, 1},   {"decode", 8, 4096, 1, 4},
                        {"prefill", 1, 128, 128, 1}, {"prefill", 1, 512, 512, 1}};
  std::printf(
      "\npaged_attention, isa=%s, 9 heads / 3 kv heads, head_dim 64, block 16; us per layer, "
      "KV GB/s as stored, xf32 = fp32 time / this time\n",
      cadence::kernels::isa_name(table.isa));
  std::printf("%-8s %4s %5s %4s %6s %3s", "case", "seqs", "ctx", "rows", "layers", "thr");
  for (KvCacheType type : kv_types) {
    std::printf(" | %4s: %8s %6s", kv_type_short_name(type), "us", "GB/s");
    if (type == KvCacheType::kF32) std::printf(" %6s", "GF/s");
    if (type != KvCacheType::kF32) std::printf(" %5s", "xf32");
  }
  std::printf("\n");
  for (const Case& cs : cases) {
    const int64_t blocks_per_seq = (cs.context_len + block_size - 1) / block_size;
    const int64_t num_blocks = blocks_per_seq * cs.num_seqs;
    const int64_t cache_elems = num_blocks * num_kv_heads * block_size * head_dim;
    // Per type, per layer: K and V on huge pages, as an engine should allocate them.
    std::vector<std::vector<HugeBuffer>> buffers(kv_types.size());
    std::vector<std::vector<cadence::kernels::PagedKvCache>> caches(kv_types.size());
    for (int64_t l = 0; l < cs.num_layers; ++l) {
      const std::vector<float> k = random_vector(cache_elems, static_cast<uint32_t>(4 + 2 * l));
      const std::vector<float> v = random_vector(cache_elems, static_cast<uint32_t>(5 + 2 * l));
      for (size_t i = 0; i < kv_types.size(); ++i) {
        buffers[i].push_back(alloc_huge_kv(k, kv_types[i]));
        buffers[i].push_back(alloc_huge_kv(v, kv_types[i]));
        cadence::kernels::PagedKvCache cache;
        cache.k_cache = buffers[i][2 * l].get();
        cache.v_cache = buffers[i][2 * l + 1].get();
        cache.type = kv_types[i];
        cache.num_blocks = num_blocks;
        cache.block_size = block_size;
        cache.num_kv_heads = num_kv_heads;
        cache.head_dim = head_dim;
        caches[i].push_back(cache);
      }
    }
    std::vector<int32_t> query_start = {0}, context_lens, tables;
    for (int64_t s = 0; s < cs.num_seqs; ++s) {
      query_start.push_back(static_cast<int32_t>(query_start.back() + cs.num_queries));
      context_lens.push_back(static_cast<int32_t>(cs.context_len));
      for (int64_t b = 0; b < blocks_per_seq; ++b) {
        tables.push_back(static_cast<int32_t>(b * cs.num_seqs + s));  // interleaved blocks
      }
    }
    cadence::kernels::AttentionBatch batch;
    batch.num_seqs = cs.num_seqs;
    batch.query_start = query_start.data();
    batch.context_lens = context_lens.data();
    batch.block_tables = tables.data();
    batch.max_blocks_per_seq = blocks_per_seq;
    const int64_t num_rows = query_start.back();
    const std::vector<float> q = random_vector(num_rows * num_heads * head_dim, 6);
    std::vector<float> out(num_rows * num_heads * head_dim);
    // Keys visited per head: sum over rows of (position + 1); 4 flops per key and dim
    // (q.k and p.v multiply-adds).
    double keys = 0.0;
    for (int64_t r = 0; r < cs.num_queries; ++r) keys += cs.context_len - cs.num_queries + r + 1;
    keys *= static_cast<double>(cs.num_seqs);
    const double flops = 4.0 * keys * head_dim * num_heads;
    const double kv_elems = 2.0 * cs.num_seqs * cs.context_len * num_kv_heads * head_dim;
    for (int64_t num_threads : thread_counts) {
      std::printf("%-8s %4ld %5ld %4ld %6ld %3ld", cs.name, static_cast<long>(cs.num_seqs),
                  static_cast<long>(cs.context_len), static_cast<long>(num_rows),
                  static_cast<long>(cs.num_layers), static_cast<long>(num_threads));
      std::fflush(stdout);
      ThreadPool pool(static_cast<int>(num_threads));
      std::vector<std::function<void()>> fns;
      for (size_t i = 0; i < kv_types.size(); ++i) {
        fns.push_back([&, i] {
          for (const auto& cache : caches[i]) {
            cpu::paged_attention(table, pool, q.data(), num_heads * head_dim, num_heads, batch,
                                 cache, 0.125f, out.data(), num_heads * head_dim);
          }
        });
      }
      const std::vector<double> seconds = time_per_call_each(fns);
      double f32_seconds = 0.0;
      for (size_t i = 0; i < kv_types.size(); ++i) {
        if (kv_types[i] == KvCacheType::kF32) f32_seconds = seconds[i];
      }
      for (size_t i = 0; i < kv_types.size(); ++i) {
        const double per_layer = seconds[i] / static_cast<double>(cs.num_layers);
        const double bytes = kv_elems * static_cast<double>(kv_cache_type_bytes(kv_types[i]));
        std::printf(" | %4s  %8.1f %6.1f", "", per_layer * 1e6, bytes / per_layer / 1e9);
        if (kv_types[i] == KvCacheType::kF32) {
          std::printf(" %6.1f", flops / per_layer / 1e9);
        } else if (f32_seconds > 0.0) {
          std::printf(" %4.2fx", f32_seconds / seconds[i]);
        } else {
          std::printf(" %5s", "-");
        }
      }
      std::printf("\n");
      std::fflush(stdout);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int64_t> thread_counts = {1, 2};
  std::vector<int64_t> ms = {1, 32, 64, 128, 512};
  std::vector<GemmShape> shapes = {
      {"q/o proj", 576, 576},  {"kv proj", 192, 576},      {"n1536", 1536, 576},
      {"gate_up", 3072, 576},  {"down", 576, 1536},        {"n1536k1536", 1536, 1536},
      {"lm_head", 49152, 576}, {"n4096k4096", 4096, 4096},
  };
  std::vector<WeightType> types = {WeightType::kF32, WeightType::kBF16, WeightType::kF16,
                                   WeightType::kQ4, WeightType::kQ8};
  Isa isa = cadence::kernels::active_isa();
  std::vector<KvCacheType> kv_types = {KvCacheType::kF32, KvCacheType::kBF16, KvCacheType::kF16};
  bool run_gemm = true, run_attention = true;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--isa=", 0) == 0) {
      const std::string name = arg.substr(6);
      isa = name == "scalar" ? Isa::kScalar : name == "avx512" ? Isa::kAvx512 : Isa::kAvx2;
    } else if (arg.rfind("--threads=", 0) == 0) {
      thread_counts = parse_list(arg.substr(10));
    } else if (arg.rfind("--m=", 0) == 0) {
      ms = parse_list(arg.substr(4));
    } else if (arg.rfind("--shape=", 0) == 0) {
      shapes.clear();
      const std::string list = arg.substr(8);
      for (size_t pos = 0; pos < list.size();) {
        const size_t comma = std::min(list.find(',', pos), list.size());
        const std::string s = list.substr(pos, comma - pos);
        const size_t x = s.find('x');
        shapes.push_back({"custom", std::stoll(s.substr(0, x)), std::stoll(s.substr(x + 1))});
        pos = comma + 1;
      }
    } else if (arg.rfind("--types=", 0) == 0) {
      types.clear();
      const std::string list = arg.substr(8) + ",";
      for (size_t pos = 0, comma; (comma = list.find(',', pos)) != std::string::npos;
           pos = comma + 1) {
        const std::string name = list.substr(pos, comma - pos);
        if (name == "f32") {
          types.push_back(WeightType::kF32);
        } else if (name == "bf16") {
          types.push_back(WeightType::kBF16);
        } else if (name == "f16") {
          types.push_back(WeightType::kF16);
        } else if (name == "q4") {
          types.push_back(WeightType::kQ4);
        } else if (name == "q8") {
          types.push_back(WeightType::kQ8);
        } else {
          std::fprintf(stderr, "unknown weight type %s (f32, bf16, f16, q4, q8)\n", name.c_str());
          return 2;
        }
      }
    } else if (arg.rfind("--kv-types=", 0) == 0) {
      kv_types.clear();
      const std::string list = arg.substr(11) + ",";
      for (size_t pos = 0, comma; (comma = list.find(',', pos)) != std::string::npos;
           pos = comma + 1) {
        const std::string name = list.substr(pos, comma - pos);
        if (name == "f32") {
          kv_types.push_back(KvCacheType::kF32);
        } else if (name == "bf16") {
          kv_types.push_back(KvCacheType::kBF16);
        } else if (name == "f16") {
          kv_types.push_back(KvCacheType::kF16);
        } else {
          std::fprintf(stderr, "unknown KV cache type %s (f32, bf16, f16)\n", name.c_str());
          return 2;
        }
      }
    } else if (arg == "--quick") {
      ms = {1, 32, 512};
      shapes = {{"q/o proj", 576, 576}, {"gate_up", 3072, 576}, {"down", 576, 1536}};
    } else if (arg == "--no-attention") {
      run_attention = false;
    } else if (arg == "--cpu-time") {
      g_use_cpu_time = true;
    } else if (arg == "--no-gemm") {
      run_gemm = false;
    } else {
      std::fprintf(stderr, "unknown argument %s (see the comment at the top of the file)\n",
                   arg.c_str());
      return 2;
    }
  }
  const KernelTable* table = cpu::kernel_table(isa);
  if (table == nullptr) {
    std::fprintf(stderr, "isa %s is not runnable here\n", cadence::kernels::isa_name(isa));
    return 1;
  }
  if (run_gemm) bench_gemm(*table, thread_counts, ms, shapes, types);
  if (run_attention) bench_attention(*table, thread_counts, kv_types);
  return 0;
}
