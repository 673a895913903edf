// OS randomness and memory wiping.
#include "ring/secure.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>

#include <system_error>

namespace xcloud {

void os_random_bytes(uint8_t* out, size_t n) {
  size_t done = 0;
  while (done < n) {
    // getrandom may return fewer bytes than asked for (large requests, or a
    // signal arriving mid-call), so keep asking until the buffer is full.
    const ssize_t got = getrandom(out + done, n - done, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      // std::system_error derives from std::runtime_error and carries the
      // errno description in what().
      throw std::system_error(errno, std::generic_category(),
                              "os_random_bytes: getrandom failed");
    }
    done += static_cast<size_t>(got);
  }
}

void secure_zero(void* p, size_t n) {
  if (p == nullptr || n == 0) return;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 25))
  // glibc guarantees this store is not removed as dead.
  explicit_bzero(p, n);
#else
  // Writing through a volatile pointer forces every store to be emitted.
  volatile uint8_t* v = static_cast<volatile uint8_t*>(p);
  for (size_t i = 0; i < n; ++i) v[i] = 0;
#endif
}

void wipe_vector_registers() {
#if defined(__x86_64__)
  // pxor is SSE2, part of every x86-64 CPU. The clobbers tell the compiler
  // that nothing it keeps in these registers survives.
  __asm__ volatile(
      "pxor %%xmm0, %%xmm0\n\tpxor %%xmm1, %%xmm1\n\tpxor %%xmm2, %%xmm2\n\tpxor %%xmm3, %%xmm3\n\t"
      "pxor %%xmm4, %%xmm4\n\tpxor %%xmm5, %%xmm5\n\tpxor %%xmm6, %%xmm6\n\tpxor %%xmm7, %%xmm7\n\t"
      "pxor %%xmm8, %%xmm8\n\tpxor %%xmm9, %%xmm9\n\tpxor %%xmm10, %%xmm10\n\tpxor %%xmm11, %%xmm11\n\t"
      "pxor %%xmm12, %%xmm12\n\tpxor %%xmm13, %%xmm13\n\tpxor %%xmm14, %%xmm14\n\tpxor %%xmm15, %%xmm15"
      :
      :
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",
        "xmm13", "xmm14", "xmm15");
#endif
}

}  // namespace xcloud
