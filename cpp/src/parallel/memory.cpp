#include "parallel/memory.h"

#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include <unistd.h>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace xcloud {

namespace {
constexpr size_t kHugeThreshold = size_t{8} << 20;

// The cache: fixed arrays, so that handing a buffer back never allocates
// (pooled_deallocate is noexcept), newest first.
struct Pool {
  std::mutex mu;
  std::array<std::pair<void*, size_t>, detail::kPoolMaxBuffers> free{};
  size_t count = 0, bytes = 0;
};
Pool& pool() {
  // Never destroyed: buffers may be freed during static destruction. A fork
  // child gets a fresh one on first use (the inherited mutex may be held by
  // a thread that does not exist in the child); the parent's cached buffers
  // are left alone there. Atomics: a race between the child's first threads
  // at worst leaks one empty Pool.
  static std::atomic<Pool*> p{new Pool};
  static std::atomic<pid_t> made_in{getpid()};
  const pid_t me = getpid();
  if (made_in.load(std::memory_order_acquire) != me) {
    p.store(new Pool, std::memory_order_release);
    made_in.store(me, std::memory_order_release);
  }
  return *p.load(std::memory_order_acquire);
}
bool pool_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("XCLOUD_BUFFER_POOL");
    return !(v != nullptr && std::strcmp(v, "0") == 0);
  }();
  return on;
}
}  // namespace

namespace detail {

void* pooled_allocate(size_t bytes) {
  if (pool_enabled()) {
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mu);
    for (size_t i = 0; i < p.count; ++i) {
      if (p.free[i].second == bytes) {
        void* out = p.free[i].first;
        for (size_t k = i + 1; k < p.count; ++k) p.free[k - 1] = p.free[k];
        --p.count;
        p.bytes -= bytes;
        return out;
      }
    }
  }
  return ::operator new(bytes);
}

void pooled_deallocate(void* ptr, size_t bytes) noexcept {
  if (ptr == nullptr) return;
  if (!pool_enabled() || bytes > kPoolMaxBytes) {
    ::operator delete(ptr);
    return;
  }
  std::array<void*, kPoolMaxBuffers> evicted{};
  size_t n_evicted = 0;
  {
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mu);
    // Oldest out until this one fits (at most kPoolMaxBuffers go).
    while (p.count > 0 && (p.count >= kPoolMaxBuffers || p.bytes + bytes > kPoolMaxBytes)) {
      --p.count;
      evicted[n_evicted++] = p.free[p.count].first;
      p.bytes -= p.free[p.count].second;
    }
    for (size_t k = p.count; k > 0; --k) p.free[k] = p.free[k - 1];
    p.free[0] = {ptr, bytes};
    ++p.count;
    p.bytes += bytes;
  }
  for (size_t i = 0; i < n_evicted; ++i) ::operator delete(evicted[i]);  // outside the lock
}

}  // namespace detail

BufferPoolStats buffer_pool_stats() {
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mu);
  return {p.count, p.bytes};
}

void release_buffer_pool() {
  std::array<void*, detail::kPoolMaxBuffers> out{};
  size_t n = 0;
  {
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mu);
    for (size_t i = 0; i < p.count; ++i) out[n++] = p.free[i].first;
    p.count = 0;
    p.bytes = 0;
  }
  for (size_t i = 0; i < n; ++i) ::operator delete(out[i]);
}

void advise_huge_pages(void* p, size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (p == nullptr || bytes < kHugeThreshold) return;
  constexpr uintptr_t kHuge = uintptr_t{1} << 21;
  const uintptr_t begin = reinterpret_cast<uintptr_t>(p);
  const uintptr_t end = begin + bytes;
  const uintptr_t a = (begin + kHuge - 1) & ~(kHuge - 1), b = end & ~(kHuge - 1);
  if (b > a) (void)madvise(reinterpret_cast<void*>(a), b - a, MADV_HUGEPAGE);
#else
  (void)p;
  (void)bytes;
#endif
}

namespace {
template <typename Vec>
void reserve_huge(Vec& v, size_t n) {
  if (v.empty() && n * sizeof(uint64_t) >= kHugeThreshold) {
    v.reserve(n);  // allocated, not yet touched
    advise_huge_pages(v.data(), n * sizeof(uint64_t));
  }
}
}  // namespace

void resize_zeroed(std::vector<uint64_t>& v, size_t n) {
  reserve_huge(v, n);
  v.resize(n);
}

void resize_for_overwrite(WordVector& v, size_t n) {
  reserve_huge(v, n);
  v.resize(n);
}

}  // namespace xcloud
