// AES-256-CTR with VAES: two blocks per 256-bit register and eight registers
// (sixteen blocks) in flight. Compiled with -mvaes -mavx2 -maes; chosen at
// run time (ring/aes256.h), never on a CPU without VAES. No AVX-512.
#include <immintrin.h>

#include <cstring>

#include "ring/aes256.h"
#include "ring/secure.h"

namespace xcloud {
namespace detail {

namespace {

template <bool kWipe>
void ctr_impl(const uint8_t rk[240], const uint8_t prefix[12], uint32_t ctr, size_t blocks, uint8_t* out) {
  __m256i k[15];
  for (int r = 0; r < 15; ++r) {
    k[r] = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(rk + 16 * r)));
  }
  uint8_t pb[16] = {0};
  std::memcpy(pb, prefix, 12);
  const __m256i base = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(pb)));
  // Big-endian counters in dword 3 of each lane: lane 0 gets c, lane 1 gets c + 1.
  const __m256i bswap = _mm256_setr_epi8(3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12, 3, 2, 1, 0, 7, 6, 5, 4,
                                         11, 10, 9, 8, 15, 14, 13, 12);
  const __m256i keep = _mm256_setr_epi32(-1, -1, -1, 0, -1, -1, -1, 0);
  auto pair = [&](uint32_t c) {
    const __m256i cnt = _mm256_setr_epi32(0, 0, 0, static_cast<int>(c), 0, 0, 0, static_cast<int>(c + 1));
    return _mm256_or_si256(_mm256_and_si256(base, keep), _mm256_shuffle_epi8(cnt, bswap));
  };
  size_t i = 0;
  for (; i + 16 <= blocks; i += 16) {
    __m256i b[8];
    for (int j = 0; j < 8; ++j) b[j] = _mm256_xor_si256(pair(ctr + static_cast<uint32_t>(i + 2 * j)), k[0]);
    for (int r = 1; r < 14; ++r) {
      for (int j = 0; j < 8; ++j) b[j] = _mm256_aesenc_epi128(b[j], k[r]);
    }
    for (int j = 0; j < 8; ++j) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 16 * (i + 2 * j)), _mm256_aesenclast_epi128(b[j], k[14]));
    }
  }
  for (; i + 2 <= blocks; i += 2) {
    __m256i b = _mm256_xor_si256(pair(ctr + static_cast<uint32_t>(i)), k[0]);
    for (int r = 1; r < 14; ++r) b = _mm256_aesenc_epi128(b, k[r]);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 16 * i), _mm256_aesenclast_epi128(b, k[14]));
  }
  if (i < blocks) {  // one last block: the low lane of a pair
    __m256i b = _mm256_xor_si256(pair(ctr + static_cast<uint32_t>(i)), k[0]);
    for (int r = 1; r < 14; ++r) b = _mm256_aesenc_epi128(b, k[r]);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16 * i), _mm256_castsi256_si128(_mm256_aesenclast_epi128(b, k[14])));
  }
  // A secret key's round keys (the encryption noise's) must not stay on the
  // stack, nor its round keys and last keystream blocks in the vector
  // registers; the schedule itself is wiped by Aes256Ctr's destructor.
  if (kWipe) {
    secure_zero(k, sizeof(k));
    _mm256_zeroall();
  }
}

}  // namespace

void aes256_ctr_vaes(const uint8_t rk[240], const uint8_t prefix[12], uint32_t ctr, size_t blocks, uint8_t* out) {
  ctr_impl<false>(rk, prefix, ctr, blocks, out);
}

void aes256_ctr_vaes_secret(const uint8_t rk[240], const uint8_t prefix[12], uint32_t ctr, size_t blocks, uint8_t* out) {
  ctr_impl<true>(rk, prefix, ctr, blocks, out);
}

}  // namespace detail
}  // namespace xcloud
