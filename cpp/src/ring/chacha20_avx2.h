#pragma once
// Internal interface of chacha20_avx2.cpp (compiled with -mavx2): eight
// ChaCha20 blocks at a time, the same bytes as the scalar block function.
#include <cstddef>
#include <cstdint>

namespace xcloud {
namespace detail {

// Writes 8 * groups consecutive 64-byte blocks to out: block b uses the input
// state `in` (RFC 8439 layout: constants, key, counter, nonce) with word 12
// replaced by in[12] + b mod 2^32.
void chacha20_blocks8_avx2(const uint32_t in[16], uint8_t* out, size_t groups);

}  // namespace detail
}  // namespace xcloud
