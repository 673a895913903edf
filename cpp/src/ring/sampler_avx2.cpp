// Centred binomial noise from keystream words, four at a time with AVX2:
// per-byte popcounts from a 16-entry nibble table (vpshufb), summed per
// 64-bit lane with vpsadbw.
#include "ring/sampler_avx2.h"

#ifndef __AVX2__
#error "sampler_avx2.cpp needs -mavx2"
#endif
#include <immintrin.h>

namespace xcloud {
namespace detail {

namespace {

inline __m256i popcount64(__m256i x) {
  const __m256i table = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2, 1, 2, 2, 3, 1, 2,
                                         2, 3, 2, 3, 3, 4);
  const __m256i nib = _mm256_set1_epi8(0x0f);
  const __m256i lo = _mm256_shuffle_epi8(table, _mm256_and_si256(x, nib));
  const __m256i hi = _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi64(x, 4), nib));
  return _mm256_sad_epu8(_mm256_add_epi8(lo, hi), _mm256_setzero_si256());
}

}  // namespace

void cbd_from_words_avx2(const uint8_t* words, int32_t* out, size_t n) {
  const __m256i mask = _mm256_set1_epi64x((int64_t{1} << 21) - 1);
  const __m256i pick = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
  for (size_t i = 0; i + 4 <= n; i += 4) {
    const __m256i r = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(words + 8 * i));
    const __m256i a = popcount64(_mm256_and_si256(r, mask));
    const __m256i b = popcount64(_mm256_and_si256(_mm256_srli_epi64(r, 21), mask));
    const __m256i d = _mm256_permutevar8x32_epi32(_mm256_sub_epi64(a, b), pick);  // low 32 bits of each lane
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm256_castsi256_si128(d));
  }
}

void cbd_from_words6_avx2(const uint8_t* words, int32_t* out, size_t n) {
  const __m256i mask = _mm256_set1_epi64x((int64_t{1} << 21) - 1);
  const __m256i pick = _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6);
  // Per 128-bit lane: bytes 0-5 and 6-11 zero-extended to two 64-bit words.
  const __m256i spread = _mm256_setr_epi8(0, 1, 2, 3, 4, 5, -1, -1, 6, 7, 8, 9, 10, 11, -1, -1, 0, 1, 2, 3, 4, 5, -1,
                                          -1, 6, 7, 8, 9, 10, 11, -1, -1);
  for (size_t i = 0; i + 4 <= n; i += 4) {
    const uint8_t* p = words + 6 * i;  // samples i, i+1 in bytes 0-11; i+2, i+3 in bytes 12-23
    const __m256i raw = _mm256_inserti128_si256(
        _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))),
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 12)), 1);
    const __m256i r = _mm256_shuffle_epi8(raw, spread);
    const __m256i a = popcount64(_mm256_and_si256(r, mask));
    const __m256i b = popcount64(_mm256_and_si256(_mm256_srli_epi64(r, 21), mask));
    const __m256i d = _mm256_permutevar8x32_epi32(_mm256_sub_epi64(a, b), pick);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm256_castsi256_si128(d));
  }
}

size_t uniform_from_words_avx2(const uint8_t* words, size_t width, uint64_t mask, uint64_t q, size_t tries,
                               uint64_t* out, size_t i) {
  // Per 128-bit lane: bytes [0, width) and [width, 2 width) zero-extended to two 64-bit words.
  alignas(32) int8_t sh[32];
  for (int lane = 0; lane < 2; ++lane) {
    for (int b = 0; b < 16; ++b) {
      const int word = b / 8, byte = b % 8;
      sh[16 * lane + b] = byte < static_cast<int>(width) ? static_cast<int8_t>(word * width + byte) : int8_t{-1};
    }
  }
  const __m256i spread = _mm256_load_si256(reinterpret_cast<const __m256i*>(sh));
  const __m256i vmask = _mm256_set1_epi64x(static_cast<int64_t>(mask));
  const __m256i vq = _mm256_set1_epi64x(static_cast<int64_t>(q));
  size_t k = 0;
  for (; k + 4 <= tries; k += 4) {
    const uint8_t* p = words + width * k;
    const __m256i raw = _mm256_inserti128_si256(
        _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))),
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2 * width)), 1);
    const __m256i r = _mm256_and_si256(_mm256_shuffle_epi8(raw, spread), vmask);  // r < 2^62: signed compare is exact
    if (_mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpgt_epi64(vq, r))) == 0xf) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), r);  // four accepted: i + 4 <= n
      i += 4;
      continue;
    }
    for (size_t t = k; t < k + 4; ++t) {
      uint64_t v = 0;
      for (size_t b = 0; b < width; ++b) v |= static_cast<uint64_t>(words[width * t + b]) << (8 * b);
      v &= mask;
      out[i] = v;
      i += (v < q);
    }
  }
  for (; k < tries; ++k) {
    uint64_t v = 0;
    for (size_t b = 0; b < width; ++b) v |= static_cast<uint64_t>(words[width * k + b]) << (8 * b);
    v &= mask;
    out[i] = v;
    i += (v < q);
  }
  return i;
}

}  // namespace detail
}  // namespace xcloud
