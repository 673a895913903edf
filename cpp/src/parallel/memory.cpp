#include "parallel/memory.h"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace xcloud {

namespace {
constexpr size_t kHugeThreshold = size_t{8} << 20;
}  // namespace

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

void resize_zeroed(std::vector<uint64_t>& v, size_t n) {
  if (v.empty() && n * sizeof(uint64_t) >= kHugeThreshold) {
    v.reserve(n);  // allocated, not yet touched
    advise_huge_pages(v.data(), n * sizeof(uint64_t));
  }
  v.resize(n);
}

}  // namespace xcloud
