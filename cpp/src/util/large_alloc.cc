#include "util/large_alloc.h"

#include <cstdlib>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif
#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace cadence {

namespace {
constexpr size_t kHugePageBytes = size_t{2} << 20;
}  // namespace

void* allocate_large(size_t num_bytes) {
  const bool use_huge_pages = num_bytes >= kHugePageBytes / 2;
  const size_t alignment = use_huge_pages ? kHugePageBytes : 64;
  // aligned_alloc wants the size to be a multiple of the alignment.
  const size_t rounded_bytes = (num_bytes + alignment - 1) / alignment * alignment;
  void* data = std::aligned_alloc(alignment, rounded_bytes == 0 ? alignment : rounded_bytes);
  if (data == nullptr) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (use_huge_pages) madvise(data, rounded_bytes, MADV_HUGEPAGE);  // advisory only
#endif
  return data;
}

void release_free_heap() {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

}  // namespace cadence
