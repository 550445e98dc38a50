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

}  // namespace cadence
