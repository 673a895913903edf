#pragma once
// Large output buffers for the block-parallel kernels.
//
// A fresh multi-megabyte std::vector is value-initialised by one thread: every
// 4 KiB page is faulted in (and zeroed by the kernel) before the parallel work
// starts, which on a VM costs about as much as encrypting the data. Asking
// for transparent huge pages first (madvise(MADV_HUGEPAGE) on the untouched
// reservation) makes those faults 512 times fewer: measured for 164 MB on the
// 2-core VM, 24 ms instead of 73-110 ms. Caveat: with the kernel's THP defrag
// setting "madvise", the first such fault after memory got fragmented may
// compact memory synchronously (one call of about 0.3 s was seen, once per
// process); later calls reuse the freed 2 MiB pages.
// Thread safety: as std::vector (the caller owns v).
#include <cstddef>
#include <cstdint>
#include <vector>

namespace xcloud {

// Resizes an empty vector to n zero words; for n * 8 >= 8 MiB the untouched
// allocation is first advised for transparent huge pages (a hint: ignored
// where unsupported). The contents are exactly those of v.resize(n).
void resize_zeroed(std::vector<uint64_t>& v, size_t n);

// Advises the whole 2 MiB pages inside [p, p + bytes) for transparent huge
// pages, if bytes >= 8 MiB: for a large output buffer that the workers are
// about to write for the first time. A hint only; never changes contents;
// errors (e.g. a file-backed mapping) are ignored.
void advise_huge_pages(void* p, size_t bytes);

}  // namespace xcloud
