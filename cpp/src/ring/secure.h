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

}  // namespace xcloud
