#include "parallel/memory.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace xcloud {

namespace {
constexpr size_t kHugeThreshold = size_t{8} << 20;

struct Pool {
  std::mutex mu;
  std::deque<std::pair<void*, size_t>> free;  // newest first
  size_t bytes = 0;
};
Pool& pool() {
  static Pool* p = new Pool;  // never destroyed: buffers may be freed during static destruction
  return *p;
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
    for (auto it = p.free.begin(); it != p.free.end(); ++it) {
      if (it->second == bytes) {
        void* out = it->first;
        p.bytes -= bytes;
        p.free.erase(it);
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
  std::vector<void*> evicted;
  {
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mu);
    while (!p.free.empty() && (p.free.size() >= kPoolMaxBuffers || p.bytes + bytes > kPoolMaxBytes)) {
      evicted.push_back(p.free.back().first);
      p.bytes -= p.free.back().second;
      p.free.pop_back();
    }
    p.free.emplace_front(ptr, bytes);
    p.bytes += bytes;
  }
  for (void* e : evicted) ::operator delete(e);  // outside the lock
}

}  // namespace detail

BufferPoolStats buffer_pool_stats() {
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mu);
  return {p.free.size(), p.bytes};
}

void release_buffer_pool() {
  std::deque<std::pair<void*, size_t>> out;
  {
    Pool& p = pool();
    std::lock_guard<std::mutex> lock(p.mu);
    out.swap(p.free);
    p.bytes = 0;
  }
  for (auto& e : out) ::operator delete(e.first);
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

void resize_zeroed(WordVector& v, size_t n) {
  reserve_huge(v, n);
  const size_t old = v.size();
  v.resize(n);  // new words unwritten (DefaultInitAllocator)
  if (n > old) std::fill(v.begin() + static_cast<std::ptrdiff_t>(old), v.end(), uint64_t{0});
}

void resize_for_overwrite(WordVector& v, size_t n) {
  reserve_huge(v, n);
  v.resize(n);
}

}  // namespace xcloud
