// The backend seam of the kernel layer: tensor views, the host allocator and device buffers,
// the activation arena, the ops of ops.h taking views against the CPU range ops they wrap, and
// attention planned once and run many times. A plan reused across layers (different caches),
// across steps (a smaller batch after a larger one) and made per sliding window must give bit
// for bit what a fresh plan per call gives: that is what lets the model plan once per step.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <vector>

#include "kernel_test_util.h"
#include "kernels/arena.h"
#include "kernels/cpu/ops_cpu.h"
#include "kernels/ops.h"
#include "kv/kv_cache.h"
#include "test_harness.h"

using cadence::ThreadPool;
using cadence::kernels::ActivationArena;
using cadence::kernels::AttentionBatch;
using cadence::kernels::AttentionPlan;
using cadence::kernels::AttentionShape;
using cadence::kernels::DeviceBuffer;
using cadence::kernels::DeviceFloats;
using cadence::kernels::DType;
using cadence::kernels::ExecutionContext;
using cadence::kernels::KvCacheType;
using cadence::kernels::PackedWeight;
using cadence::kernels::TensorView;
using cadence_test::Rng;
namespace kernels = cadence::kernels;
namespace cpu = cadence::kernels::cpu;

namespace {

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

bool is_aligned(const void* p, uintptr_t alignment) {
  return reinterpret_cast<uintptr_t>(p) % alignment == 0;
}

}  // namespace

TEST(tensor_view_shapes_and_slices) {
  std::vector<float> data(5 * 8);
  const TensorView m = TensorView::rows(data.data(), 5, 6, 8);
  CHECK(m.rank == 2 && m.num_rows() == 5 && m.num_cols() == 6 && m.row_stride() == 8);
  CHECK(m.num_elements() == 30);
  CHECK(!m.is_contiguous());
  CHECK(TensorView::rows(data.data(), 5, 8, 8).is_contiguous());
  const TensorView tail = m.slice_rows(2, 5);
  CHECK(tail.as<float>() == data.data() + 16 && tail.num_rows() == 3 && tail.row_stride() == 8);
  const std::vector<int32_t> ids = {3, 1, 4};
  const TensorView v = TensorView::vector(ids.data(), 3);
  CHECK(v.dtype == DType::kI32 && v.rank == 1 && v.num_elements() == 3 && v.is_contiguous());
  CHECK(kernels::dtype_bytes(DType::kBF16) == 2 && kernels::dtype_bytes(DType::kI32) == 4);
  CHECK(TensorView().as<float>() == nullptr && TensorView().rank == 0);
  CHECK(kernels::device_name(kernels::kCpuDevice) == "cpu");
}

TEST(host_allocator_buffers) {
  kernels::Allocator& host = kernels::host_allocator();
  CHECK(host.device() == kernels::kCpuDevice);
  for (int64_t bytes : {int64_t{1}, int64_t{100}, int64_t{3} << 20}) {
    DeviceBuffer buffer(host, bytes);
    CHECK(buffer.size_bytes() == bytes && buffer.data() != nullptr);
    CHECK(is_aligned(buffer.data(), 64));
    std::memset(buffer.data(), 0x5a, static_cast<size_t>(bytes));  // all of it is usable
    DeviceBuffer moved = std::move(buffer);
    CHECK(buffer.empty() && buffer.data() == nullptr);  // NOLINT: checking the moved-from state
    CHECK(moved.size_bytes() == bytes && moved.as<unsigned char>()[bytes - 1] == 0x5a);
  }
  CHECK(DeviceBuffer(host, 0).empty());
  const std::vector<float> values = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, 8.0f};
  const DeviceFloats floats(host, values);
  CHECK(floats.size() == 6 && std::memcmp(floats.data(), values.data(), 24) == 0);
  const TensorView table = floats.rows(3);
  CHECK(table.num_rows() == 2 && table.num_cols() == 3 && table.as<float>()[1 * 3 + 1] == 7.0f);
  CHECK(DeviceFloats().view().as<float>() == nullptr);  // empty: "no bias"
}

TEST(bump_allocator_packs_buffers_back_to_back) {
  using cadence::kernels::BumpAllocator;
  BumpAllocator bump(kernels::host_allocator());
  CHECK(bump.device() == kernels::kCpuDevice && bump.reserved_bytes() == 0);
  auto* a = static_cast<unsigned char*>(bump.allocate(100));
  auto* b = static_cast<unsigned char*>(bump.allocate(1 << 20));
  auto* c = static_cast<unsigned char*>(bump.allocate(64));
  CHECK(is_aligned(a, 64) && b == a + 128 && c == b + (1 << 20));  // one chunk, no gaps
  CHECK(bump.used_bytes() == 128 + (1 << 20) + 64);
  CHECK(bump.reserved_bytes() == BumpAllocator::kChunkBytes);
  // Larger than a chunk: a chunk of its own, and the open chunk keeps filling after it.
  void* big = bump.allocate(BumpAllocator::kChunkBytes + 1);
  auto* d = static_cast<unsigned char*>(bump.allocate(64));
  CHECK(is_aligned(big, 64) && d == c + 64);
  CHECK(bump.reserved_bytes() == 2 * BumpAllocator::kChunkBytes + 64);
  // What does not fit in the rest of the chunk opens the next one.
  void* next = bump.allocate(BumpAllocator::kChunkBytes - (1 << 20));
  CHECK(bump.reserved_bytes() == 3 * BumpAllocator::kChunkBytes + 64);
  std::memset(next, 1, 16);
  std::memset(big, 2, 16);
  bump.deallocate(a, 100);  // a no-op: everything goes with the allocator
  CHECK(bump.used_bytes() > 0);
  // Packed weights take their storage from it.
  const std::vector<float> values(40 * 24, 0.5f);
  const PackedWeight w =
      PackedWeight::pack(values.data(), 40, 24, 24, cadence::kernels::WeightType::kF32, bump);
  CHECK(w.panel(0) == static_cast<unsigned char*>(next) + BumpAllocator::kChunkBytes - (1 << 20));
}

TEST(activation_arena_lays_out_aligned_slices_and_grows_only_when_needed) {
  ActivationArena arena(kernels::host_allocator());
  arena.clear();
  const int64_t a = arena.reserve(10);
  const int64_t b = arena.reserve(1000);
  const int64_t c = arena.reserve(0);
  const int64_t d = arena.reserve(64);
  arena.commit();
  CHECK(a == 0 && b == 64 && c == 64 + 1024 && d == c);
  CHECK(is_aligned(arena.at(b), 64) && arena.capacity_bytes() >= 64 + 1024 + 64);
  void* base = arena.at(0);
  const int64_t capacity = arena.capacity_bytes();
  // A smaller pass reuses the buffer as it is.
  arena.clear();
  arena.reserve(500);
  arena.commit();
  CHECK(arena.at(0) == base && arena.capacity_bytes() == capacity);
  // A larger one grows it.
  arena.clear();
  const int64_t big = arena.reserve(capacity + 1);
  arena.commit();
  CHECK(big == 0 && arena.capacity_bytes() >= capacity + 1);
}

TEST(view_ops_match_the_cpu_range_ops) {
  ThreadPool pool(2);
  const ExecutionContext ctx = kernels::cpu_context(pool);
  CHECK(ctx.is_cpu() && ctx.allocator == &kernels::host_allocator());
  const cpu::KernelTable& table = cpu::active_kernel_table();
  Rng rng(7);
  // GEMM on strided views (a is a column range of a wider buffer, c has a row gap).
  const int64_t m = 13, k = 48, n = 37, lda = 64, ldc = 40;
  const std::vector<float> w_values = rng.uniform_vector(n * k);
  const PackedWeight w = PackedWeight::pack(w_values.data(), n, k, k);
  const std::vector<float> a = rng.uniform_vector(m * lda);
  const std::vector<float> bias = rng.uniform_vector(n);
  std::vector<float> c_view(m * ldc, 0.0f), c_ref(m * ldc, 0.0f);
  const DeviceFloats bias_floats(*ctx.allocator, bias);
  kernels::gemm(ctx, TensorView::rows(a.data(), m, k, lda), w, bias_floats.view(),
                TensorView::rows(c_view.data(), m, n, ldc));
  cpu::gemm(table, pool, a.data(), m, lda, w, bias.data(), c_ref.data(), ldc);
  CHECK(same_bits(c_view, c_ref));

  // RMSNorm of each head's column slice in place (the qk-norm layout).
  const int64_t rows = 9, head_dim = 16, width = 3 * head_dim;
  std::vector<float> x = rng.uniform_vector(rows * width);
  std::vector<float> x_ref = x;
  const std::vector<float> gamma = rng.uniform_vector(head_dim);
  const DeviceFloats gamma_floats(*ctx.allocator, gamma);
  const TensorView head1 = TensorView::rows(x.data() + head_dim, rows, head_dim, width);
  kernels::rms_norm(ctx, head1, gamma_floats.view(), 1e-5f, head1);
  cpu::rms_norm(table, pool, x_ref.data() + head_dim, rows, head_dim, width, gamma.data(), 1e-5f,
                x_ref.data() + head_dim, width);
  CHECK(same_bits(x, x_ref));

  // Gathers: embedding rows of a packed table and fp32 rows with an offset.
  const std::vector<int32_t> ids = {5, 0, 36, 5};
  std::vector<float> embedded(4 * k);
  kernels::embedding_lookup(ctx, w, TensorView::vector(ids.data(), 4),
                            TensorView::rows(embedded.data(), 4, k, k));
  bool embedding_ok = true;
  for (int64_t i = 0; i < 4; ++i) {
    for (int64_t j = 0; j < k; ++j) embedding_ok &= embedded[i * k + j] == w_values[ids[i] * k + j];
  }
  CHECK(embedding_ok);
  std::vector<float> gathered(4 * k);
  const std::vector<int32_t> positions = {0, 3, 1, 3};
  kernels::gather_rows(ctx, TensorView::rows(w_values.data(), n, k, k),
                       TensorView::vector(positions.data(), 4), 2,
                       TensorView::rows(gathered.data(), 4, k, k));
  bool gather_ok = true;
  for (int64_t i = 0; i < 4; ++i) {
    for (int64_t j = 0; j < k; ++j) {
      gather_ok &= gathered[i * k + j] == w_values[(positions[i] + 2) * k + j];
    }
  }
  CHECK(gather_ok);

  // Elementwise scale and soft-cap, each element computed on its own.
  std::vector<float> z = rng.uniform_vector(20000, -40.0f, 40.0f);
  const std::vector<float> z0 = z;
  kernels::scale_inplace(ctx, TensorView::vector(z.data(), DType::kF32, 20000), 1.5f);
  kernels::softcap_inplace(ctx, TensorView::vector(z.data(), DType::kF32, 20000), 30.0f);
  bool elementwise_ok = true;
  for (size_t i = 0; i < z.size(); ++i) {
    const float scaled = z0[i] * 1.5f;
    elementwise_ok &= z[i] == 30.0f * std::tanh(scaled / 30.0f);
  }
  CHECK(elementwise_ok);
}

namespace {

// Three layers of a paged cache filled with random keys and values for a batch of sequences:
// a long decode row (several key partitions: split over threads), a full prefill and a
// chunked prefill, over shuffled blocks.
struct PlanFixture {
  static constexpr int64_t kNumLayers = 3, kBlockSize = 16, kNumBlocks = 80;
  AttentionShape shape{6, 2, 40};
  std::vector<int32_t> context_lens, query_start, block_tables;
  int64_t max_blocks_per_seq = 0;
  cadence::KvCache cache;
  std::vector<float> q;
  int64_t q_width() const { return shape.num_heads * shape.head_dim; }

  PlanFixture(const ExecutionContext& ctx, KvCacheType type,
              const std::vector<std::pair<int32_t, int32_t>>& seqs, uint64_t seed)
      : cache(*ctx.allocator, kNumLayers, kNumBlocks, kBlockSize, shape.num_kv_heads,
              shape.head_dim, type) {
    Rng rng(seed);
    std::vector<int32_t> blocks(kNumBlocks);
    std::iota(blocks.begin(), blocks.end(), 0);
    for (int64_t i = kNumBlocks - 1; i > 0; --i) {
      std::swap(blocks[i], blocks[static_cast<int64_t>(rng.next() % (i + 1))]);
    }
    for (const auto& [context, queries] : seqs) {
      max_blocks_per_seq = std::max<int64_t>(max_blocks_per_seq, (context + 15) / 16);
    }
    int64_t next_block = 0;
    query_start.push_back(0);
    const int64_t kv_width = shape.num_kv_heads * shape.head_dim;
    for (const auto& [context, queries] : seqs) {
      context_lens.push_back(context);
      query_start.push_back(query_start.back() + queries);
      const size_t table_begin = block_tables.size();
      block_tables.resize(table_begin + max_blocks_per_seq, 0);
      for (int64_t b = 0; b < (context + 15) / 16; ++b) {
        block_tables[table_begin + b] = blocks[next_block++];
      }
      std::vector<int32_t> slots(context);
      for (int64_t t = 0; t < context; ++t) {
        slots[t] = block_tables[table_begin + t / 16] * 16 + static_cast<int32_t>(t % 16);
      }
      for (int64_t l = 0; l < kNumLayers; ++l) {
        const std::vector<float> k = rng.uniform_vector(context * kv_width);
        const std::vector<float> v = rng.uniform_vector(context * kv_width);
        kernels::write_kv_cache(ctx, TensorView::rows(k.data(), context, kv_width, kv_width),
                                TensorView::rows(v.data(), context, kv_width, kv_width),
                                TensorView::vector(slots.data(), context), cache.layer(l));
      }
    }
    q = rng.uniform_vector(query_start.back() * q_width());
  }

  AttentionBatch batch(int64_t window) const {
    AttentionBatch b;
    b.num_seqs = static_cast<int64_t>(context_lens.size());
    b.query_start = query_start.data();
    b.context_lens = context_lens.data();
    b.block_tables = block_tables.data();
    b.max_blocks_per_seq = max_blocks_per_seq;
    b.sliding_window = window;
    return b;
  }
  int64_t num_rows() const { return query_start.back(); }

  // One layer through the plan.
  std::vector<float> run(const ExecutionContext& ctx, const AttentionPlan& plan,
                         int64_t layer) const {
    std::vector<float> out(num_rows() * q_width(), NAN);
    kernels::paged_attention(
        ctx, plan, TensorView::rows(q.data(), num_rows(), q_width(), q_width()), cache.layer(layer),
        0.125f, TensorView::rows(out.data(), num_rows(), q_width(), q_width()));
    return out;
  }
  // One layer with a fresh plan (cpu::paged_attention plans and runs in one call).
  std::vector<float> fresh(ThreadPool& pool, int64_t layer, int64_t window) const {
    std::vector<float> out(num_rows() * q_width(), NAN);
    const AttentionBatch b = batch(window);
    cpu::paged_attention(cpu::active_kernel_table(), pool, q.data(), q_width(), shape.num_heads, b,
                         cache.layer(layer), 0.125f, out.data(), q_width());
    return out;
  }
};

}  // namespace

TEST(attention_plan_reused_across_layers_steps_and_windows_is_bitwise_a_fresh_plan) {
  for (int num_threads : {1, 2}) {
    ThreadPool pool(num_threads);
    const ExecutionContext ctx = kernels::cpu_context(pool);
    for (KvCacheType type : {KvCacheType::kF32, KvCacheType::kBF16}) {
      // (context length, query rows): long decode, full prefill, decode, chunked prefill.
      const PlanFixture large(ctx, type, {{700, 1}, {45, 45}, {300, 1}, {90, 20}}, 11);
      const PlanFixture small(ctx, type, {{530, 1}}, 12);
      AttentionPlan full, windowed;
      for (const PlanFixture* step : {&large, &small, &large}) {
        kernels::plan_attention(ctx, step->batch(0), step->shape, full);
        kernels::plan_attention(ctx, step->batch(100), step->shape, windowed);
        CHECK(full.batch().sliding_window == 0 && windowed.batch().sliding_window == 100);
        for (int64_t layer = 0; layer < PlanFixture::kNumLayers; ++layer) {
          const std::vector<float> out = step->run(ctx, full, layer);
          CHECK(same_bits(out, step->fresh(pool, layer, 0)));
          CHECK(std::isfinite(out[0]) && std::isfinite(out.back()));
          CHECK(same_bits(step->run(ctx, windowed, layer), step->fresh(pool, layer, 100)));
        }
        // A different layer's cache gives a different result (the run reads the cache it is
        // given, not one captured by the plan).
        CHECK(!same_bits(step->run(ctx, full, 0), step->run(ctx, full, 1)));
      }
    }
  }
}

TEST(copy_kv_block_copies_every_layer) {
  ThreadPool pool(1);
  const ExecutionContext ctx = kernels::cpu_context(pool);
  PlanFixture fixture(ctx, KvCacheType::kF16, {{32, 32}}, 3);
  const int32_t src = fixture.block_tables[1];
  const int32_t dst = src == 0 ? 1 : 0;
  cadence::KvCache& cache = fixture.cache;
  cache.copy_block(ctx, src, dst);
  for (int64_t l = 0; l < PlanFixture::kNumLayers; ++l) {
    const kernels::PagedKvCache& layer = cache.layer(l);
    const int64_t stride = layer.block_stride_elements() * 2;
    const auto bytes = static_cast<size_t>(layer.block_elements() * 2);
    const auto* k = static_cast<const unsigned char*>(layer.k_cache);
    const auto* v = static_cast<const unsigned char*>(layer.v_cache);
    CHECK(std::memcmp(k + dst * stride, k + src * stride, bytes) == 0);
    CHECK(std::memcmp(v + dst * stride, v + src * stride, bytes) == 0);
  }
}

TEST_MAIN()
