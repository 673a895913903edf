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

}  // namespace xcloud
