#pragma once
// OS randomness and secret hygiene.
// Thread safety: all functions are reentrant.
#include <cstddef>
#include <cstdint>

namespace xcloud {

// Fills out[0, n) from the operating system's CSPRNG (getrandom(2), retrying
// on EINTR and short reads).
// @throws std::runtime_error if the OS cannot provide randomness.
void os_random_bytes(uint8_t* out, size_t n);

// Overwrites n bytes at p with zeros in a way the compiler may not elide.
void secure_zero(void* p, size_t n);

// Zeroes the SSE registers xmm0-xmm15 (x86-64; a no-op elsewhere): for the
// end of a kernel that held secret round keys or keystream in them. Kernels
// compiled for AVX clear the whole ymm registers themselves (vzeroall).
void wipe_vector_registers();

// Zeroes [p, p + n) with secure_zero when it leaves scope, on return and on
// an exception alike: for per-call secrets (seeds, stream keys) of code whose
// workers may throw on bad input.
class WipeOnExit {
 public:
  WipeOnExit(void* p, size_t n) : p_(p), n_(n) {}
  WipeOnExit(const WipeOnExit&) = delete;
  WipeOnExit& operator=(const WipeOnExit&) = delete;
  ~WipeOnExit() { secure_zero(p_, n_); }

 private:
  void* p_;
  size_t n_;
};

}  // namespace xcloud
