// AES-256-CTR with AES-NI: eight independent 128-bit blocks in flight, so
// the four-cycle latency of each round instruction is hidden. Compiled with
// -maes -msse4.1 only; chosen at run time (ring/aes256.h).
#include <immintrin.h>

#include <cstring>

#include "ring/aes256.h"

namespace xcloud {
namespace detail {

namespace {

inline __m128i counter_block(__m128i prefix, uint32_t c) {
  return _mm_insert_epi32(prefix, static_cast<int>(__builtin_bswap32(c)), 3);
}

}  // namespace

void aes256_ctr_ni(const uint8_t rk[240], const uint8_t prefix[12], uint32_t ctr, size_t blocks, uint8_t* out) {
  __m128i k[15];
  for (int r = 0; r < 15; ++r) k[r] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(rk + 16 * r));
  uint8_t pb[16] = {0};
  std::memcpy(pb, prefix, 12);
  const __m128i base = _mm_loadu_si128(reinterpret_cast<const __m128i*>(pb));
  size_t i = 0;
  for (; i + 8 <= blocks; i += 8) {
    __m128i b[8];
    for (int j = 0; j < 8; ++j) b[j] = _mm_xor_si128(counter_block(base, ctr + static_cast<uint32_t>(i + j)), k[0]);
    for (int r = 1; r < 14; ++r) {
      for (int j = 0; j < 8; ++j) b[j] = _mm_aesenc_si128(b[j], k[r]);
    }
    for (int j = 0; j < 8; ++j) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16 * (i + j)), _mm_aesenclast_si128(b[j], k[14]));
    }
  }
  for (; i < blocks; ++i) {
    __m128i b = _mm_xor_si128(counter_block(base, ctr + static_cast<uint32_t>(i)), k[0]);
    for (int r = 1; r < 14; ++r) b = _mm_aesenc_si128(b, k[r]);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16 * i), _mm_aesenclast_si128(b, k[14]));
  }
}

}  // namespace detail
}  // namespace xcloud
