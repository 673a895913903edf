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

// The uniform rejection loop of sample_uniform_mod_ctr over one fill: for
// k < tries, r = (the little-endian `width`-byte word at words + width k) &
// mask is written to out[i] and i advances if r < q; returns the final i.
// Four tries at a time (two 16-byte loads and a byte shuffle); a group with a
// rejected try (public bits) is redone one try at a time, so the output and
// the count equal the one-at-a-time loop's. Needs 1 <= width <= 8, q < 2^62,
// tries <= n - i as the caller guarantees; reads up to 16 bytes past the
// last word.
size_t uniform_from_words_avx2(const uint8_t* words, size_t width, uint64_t mask, uint64_t q, size_t tries,
                               uint64_t* out, size_t i);

}  // namespace detail
}  // namespace xcloud
