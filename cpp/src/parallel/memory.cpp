#include "parallel/memory.h"

#include <algorithm>

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
