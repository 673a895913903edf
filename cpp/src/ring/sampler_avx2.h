#pragma once
// Internal interface of sampler_avx2.cpp (compiled with -mavx2).
#include <cstddef>
#include <cstdint>

namespace xcloud {
namespace detail {

// out[i] = popcount(r_i & M) - popcount((r_i >> 21) & M), M = 2^21 - 1, for
// the little-endian 8-byte words r_i = words[8 i, 8 i + 8), i < n - n % 4.
void cbd_from_words_avx2(const uint8_t* words, int32_t* out, size_t n);

// The same for 6-byte words r_i = words[6 i, 6 i + 6) (zero-extended), i <
// n - n % 4; reads up to 4 bytes past the last of those words.
void cbd_from_words6_avx2(const uint8_t* words, int32_t* out, size_t n);

}  // namespace detail
}  // namespace xcloud
