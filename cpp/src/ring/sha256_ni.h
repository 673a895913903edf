#pragma once
// Internal interface of sha256_ni.cpp (compiled with -msha -msse4.1): the
// SHA-256 compression function on the x86 SHA extensions.
#include <cstddef>
#include <cstdint>

namespace xcloud {
namespace detail {

// Whether this build has the kernel below and the CPU runs it (SHA, SSE4.1).
bool sha256_cpu_has_ni();

// Compresses `blocks` consecutive 64-byte blocks at `data` into the hash
// state h[0, 8) (FIPS 180-4 section 6.2.2), with the round constants k[0, 64).
// The same result as the portable compression, block after block. The message
// schedule lives in registers only.
void sha256_blocks_ni(uint32_t h[8], const uint8_t* data, size_t blocks, const uint32_t k[64]);

}  // namespace detail
}  // namespace xcloud
