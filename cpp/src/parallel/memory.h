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
#include <climits>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

namespace xcloud {

// std::allocator, except that a construct() without arguments
// default-initialises: for a trivial type such as uint64_t, resize() then
// leaves the new elements unwritten instead of zeroing them one by one. A
// ciphertext's residue arrays use it because the encryptor writes every word
// from its worker threads: the pages are then first touched (and zeroed by
// the OS) in parallel, instead of by one thread's memset before the work
// starts (about 1 ns per value at one prime, serial, before this).
namespace detail {
// Buffers of at least kPooledBytes go through a small process-wide cache:
// a freed one is kept (up to kPoolMaxBuffers buffers and kPoolMaxBytes in
// all, the oldest given back first) and handed out again for a request of
// exactly its size. Repeated encryptions of same-sized updates (one per
// round) then write into pages that are already mapped, instead of having
// the OS find and zero fresh ones on every call (measured: the page faults
// of an 80 MB output made single calls vary by 20%). XCLOUD_BUFFER_POOL=0
// (read once; only the exact value "0") turns the cache off. Thread-safe
// (one mutex); after fork() the child starts with an empty cache (the
// parent's cached buffers are left alone: its mutex may have been held).
// 4 MiB since 2026-12-02's third session (8 MiB before): a 1 M-value
// ciphertext of the compact preset (245 blocks of 32 KiB, 7.7 MiB) is cached.
constexpr size_t kPooledBytes = size_t{4} << 20;
constexpr size_t kPoolMaxBuffers = 4;
constexpr size_t kPoolMaxBytes = size_t{512} << 20;
void* pooled_allocate(size_t bytes);
void pooled_deallocate(void* p, size_t bytes) noexcept;
}  // namespace detail

// Buffers held by the cache now, and handing them all back to the system.
struct BufferPoolStats {
  size_t buffers = 0, bytes = 0;
};
BufferPoolStats buffer_pool_stats();
void release_buffer_pool();

template <typename T>
class DefaultInitAllocator {
 public:
  using value_type = T;
  using is_always_equal = std::true_type;
  using propagate_on_container_move_assignment = std::true_type;
  template <typename U>
  struct rebind {
    using other = DefaultInitAllocator<U>;
  };
  DefaultInitAllocator() noexcept = default;
  template <typename U>
  DefaultInitAllocator(const DefaultInitAllocator<U>&) noexcept {}  // NOLINT: converting, as std::allocator

  T* allocate(size_t n) {
    if (n > SIZE_MAX / sizeof(T)) throw std::bad_array_new_length();
    if (n * sizeof(T) >= detail::kPooledBytes) return static_cast<T*>(detail::pooled_allocate(n * sizeof(T)));
    return std::allocator<T>().allocate(n);
  }
  void deallocate(T* p, size_t n) noexcept {
    if (n * sizeof(T) >= detail::kPooledBytes) {
      detail::pooled_deallocate(p, n * sizeof(T));
    } else {
      std::allocator<T>().deallocate(p, n);
    }
  }
  // Value-less construction default-initialises (no zeroing of a uint64_t).
  template <typename U>
  void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};
template <typename T, typename U>
bool operator==(const DefaultInitAllocator<T>&, const DefaultInitAllocator<U>&) noexcept {
  return true;
}
template <typename T, typename U>
bool operator!=(const DefaultInitAllocator<T>&, const DefaultInitAllocator<U>&) noexcept {
  return false;
}

// Residue arrays of ciphertexts (ckks/ciphertext.h). Note: resize() does not
// zero new words; write zeros explicitly where they are meant. Large ones come
// from the buffer cache above (their previous contents are ciphertext words,
// never secrets: no secret lives in a WordVector).
using WordVector = std::vector<uint64_t, DefaultInitAllocator<uint64_t>>;

// Resizes an empty vector to n zero words; for n * 8 >= 8 MiB the untouched
// allocation is first advised for transparent huge pages (a hint: ignored
// where unsupported). The contents are exactly those of v.resize(n) for a
// std::vector.
void resize_zeroed(std::vector<uint64_t>& v, size_t n);

// Resizes an empty vector to n words that the caller will overwrite, every
// one, before anything reads them (their values until then are unspecified),
// with the same huge-page advice. The pages are touched by whoever writes
// first: the parallel workers.
void resize_for_overwrite(WordVector& v, size_t n);

// Advises the whole 2 MiB pages inside [p, p + bytes) for transparent huge
// pages, if bytes >= 8 MiB: for a large output buffer that the workers are
// about to write for the first time. A hint only; never changes contents;
// errors (e.g. a file-backed mapping) are ignored.
void advise_huge_pages(void* p, size_t bytes);

}  // namespace xcloud
