// BlockPool: allocation, reference counting, LIFO reuse and the invariant check.
#include "kv/block_pool.h"
#include "test_harness.h"

using cadence::BlockPool;

TEST(fresh_pool_is_all_free) {
  BlockPool pool(8);
  CHECK(pool.num_total_blocks() == 8);
  CHECK(pool.num_free_blocks() == 8);
  CHECK(pool.can_allocate(8));
  CHECK(!pool.can_allocate(9));
  pool.check_invariants();
}

TEST(allocate_and_release_round_trip) {
  BlockPool pool(8);
  std::vector<int32_t> blocks;
  pool.allocate(3, blocks);
  CHECK(blocks.size() == 3);
  CHECK(pool.num_free_blocks() == 5);
  CHECK(pool.num_used_blocks() == 3);
  for (int32_t id : blocks) CHECK(pool.ref_count(id) == 1);
  pool.check_invariants();
  pool.release(blocks);
  CHECK(pool.num_free_blocks() == 8);
  pool.check_invariants();
}

TEST(allocation_appends_distinct_blocks) {
  BlockPool pool(6);
  std::vector<int32_t> blocks;
  pool.allocate(2, blocks);
  pool.allocate(4, blocks);
  CHECK(blocks.size() == 6);
  std::vector<int> seen(6, 0);
  for (int32_t id : blocks) ++seen.at(id);
  for (int count : seen) CHECK(count == 1);
  CHECK(!pool.can_allocate(1));
  CHECK_THROWS(pool.allocate(1, blocks));
}

TEST(shared_block_is_freed_by_last_reference) {
  BlockPool pool(4);
  std::vector<int32_t> blocks;
  pool.allocate(1, blocks);
  pool.add_ref(blocks[0]);
  CHECK(pool.ref_count(blocks[0]) == 2);
  pool.release(blocks);
  CHECK(pool.num_free_blocks() == 3);
  pool.check_invariants();
  pool.release(blocks);
  CHECK(pool.num_free_blocks() == 4);
  pool.check_invariants();
}

TEST(recently_freed_blocks_are_reused_first) {
  BlockPool pool(4);
  std::vector<int32_t> a, b;
  pool.allocate(2, a);
  pool.release({a[1]});
  pool.allocate(1, b);
  CHECK(b[0] == a[1]);
}

TEST(misuse_is_detected) {
  BlockPool pool(2);
  CHECK_THROWS(pool.release({0}));  // releasing a free block
  CHECK_THROWS(pool.add_ref(1));    // sharing a free block
  CHECK_THROWS(BlockPool(0));
}

TEST_MAIN()
