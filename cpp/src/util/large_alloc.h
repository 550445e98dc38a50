// Allocation for large buffers that kernels stream through (weights, the KV cache).
#pragma once

#include <cstddef>

namespace cadence {

// Returns uninitialized memory of at least num_bytes, 64-byte aligned, to be released with
// std::free. Buffers of a megabyte or more are 2 MiB aligned and advised onto transparent
// huge pages where the OS offers them: with 4 KiB pages the hardware prefetchers stop at
// every page boundary and each page costs a TLB miss (measured: a 1.3 MB GEMV at 12 GB/s
// on 4 KiB pages, 20 GB/s on huge pages). Untouched pages are not committed.
// Throws std::bad_alloc when the memory is not available.
void* allocate_large(size_t num_bytes);

// Returns the allocator's free heap memory to the OS (glibc: malloc_trim; elsewhere nothing).
// For load-time code that has just freed large temporaries: glibc keeps freed heap mapped, and
// its mmap threshold grows with each large free, so without this the peak RSS of a load is
// the weights plus the largest temporaries seen so far.
void release_free_heap();

}  // namespace cadence
