// ChaCha20 (RFC 8439) eight blocks at a time with AVX2: vector register k
// holds state word k of eight consecutive blocks (counters c, c+1, ..., c+7),
// so a quarter round on vectors is eight quarter rounds. Rotations by 16 and
// 8 are byte shuffles, by 12 and 7 shift pairs. After the 20 rounds and the
// feed-forward addition, two 8x8 transposes of 32-bit words give each
// block's 64 bytes in order (little-endian words, as the scalar code stores).
#include "ring/chacha20_avx2.h"

#ifndef __AVX2__
#error "chacha20_avx2.cpp needs -mavx2"
#endif
#include <immintrin.h>

#include "ring/secure.h"

namespace xcloud {
namespace detail {

namespace {

inline __m256i rotl16(__m256i x) {
  const __m256i r = _mm256_setr_epi8(2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13, 2, 3, 0, 1, 6, 7, 4, 5, 10,
                                     11, 8, 9, 14, 15, 12, 13);
  return _mm256_shuffle_epi8(x, r);
}
inline __m256i rotl8(__m256i x) {
  const __m256i r = _mm256_setr_epi8(3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14, 3, 0, 1, 2, 7, 4, 5, 6, 11,
                                     8, 9, 10, 15, 12, 13, 14);
  return _mm256_shuffle_epi8(x, r);
}
template <int S>
inline __m256i rotl(__m256i x) {
  return _mm256_or_si256(_mm256_slli_epi32(x, S), _mm256_srli_epi32(x, 32 - S));
}

#define XCLOUD_QR(a, b, c, d)          \
  a = _mm256_add_epi32(a, b);          \
  d = rotl16(_mm256_xor_si256(d, a));  \
  c = _mm256_add_epi32(c, d);          \
  b = rotl<12>(_mm256_xor_si256(b, c)); \
  a = _mm256_add_epi32(a, b);          \
  d = rotl8(_mm256_xor_si256(d, a));   \
  c = _mm256_add_epi32(c, d);          \
  b = rotl<7>(_mm256_xor_si256(b, c))

// Transposes rows x[0..7] (row k: word k of blocks 0..7) and stores row-major
// 32-byte halves: block b's words at out + 64 b (+ 32 for words 8..15).
inline void transpose_store(const __m256i x[8], uint8_t* out) {
  const __m256i t0 = _mm256_unpacklo_epi32(x[0], x[1]), t1 = _mm256_unpackhi_epi32(x[0], x[1]);
  const __m256i t2 = _mm256_unpacklo_epi32(x[2], x[3]), t3 = _mm256_unpackhi_epi32(x[2], x[3]);
  const __m256i t4 = _mm256_unpacklo_epi32(x[4], x[5]), t5 = _mm256_unpackhi_epi32(x[4], x[5]);
  const __m256i t6 = _mm256_unpacklo_epi32(x[6], x[7]), t7 = _mm256_unpackhi_epi32(x[6], x[7]);
  // u_k: words 0..3 (or 4..7) of blocks k and k + 4, one per 128-bit lane.
  const __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
  const __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
  const __m256i u4 = _mm256_unpacklo_epi64(t4, t6), u5 = _mm256_unpackhi_epi64(t4, t6);
  const __m256i u6 = _mm256_unpacklo_epi64(t5, t7), u7 = _mm256_unpackhi_epi64(t5, t7);
  auto st = [out](int block, __m256i v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 64 * block), v); };
  st(0, _mm256_permute2x128_si256(u0, u4, 0x20));
  st(1, _mm256_permute2x128_si256(u1, u5, 0x20));
  st(2, _mm256_permute2x128_si256(u2, u6, 0x20));
  st(3, _mm256_permute2x128_si256(u3, u7, 0x20));
  st(4, _mm256_permute2x128_si256(u0, u4, 0x31));
  st(5, _mm256_permute2x128_si256(u1, u5, 0x31));
  st(6, _mm256_permute2x128_si256(u2, u6, 0x31));
  st(7, _mm256_permute2x128_si256(u3, u7, 0x31));
}

}  // namespace

void chacha20_blocks8_avx2(const uint32_t in[16], uint8_t* out, size_t groups) {
  __m256i s[16];
  for (int k = 0; k < 16; ++k) s[k] = _mm256_set1_epi32(static_cast<int>(in[k]));
  s[12] = _mm256_add_epi32(s[12], _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  for (size_t g = 0; g < groups; ++g, out += 512) {
    __m256i x0 = s[0], x1 = s[1], x2 = s[2], x3 = s[3], x4 = s[4], x5 = s[5], x6 = s[6], x7 = s[7];
    __m256i x8 = s[8], x9 = s[9], x10 = s[10], x11 = s[11], x12 = s[12], x13 = s[13], x14 = s[14], x15 = s[15];
    for (int r = 0; r < 10; ++r) {
      XCLOUD_QR(x0, x4, x8, x12);
      XCLOUD_QR(x1, x5, x9, x13);
      XCLOUD_QR(x2, x6, x10, x14);
      XCLOUD_QR(x3, x7, x11, x15);
      XCLOUD_QR(x0, x5, x10, x15);
      XCLOUD_QR(x1, x6, x11, x12);
      XCLOUD_QR(x2, x7, x8, x13);
      XCLOUD_QR(x3, x4, x9, x14);
    }
    __m256i lo[8] = {_mm256_add_epi32(x0, s[0]), _mm256_add_epi32(x1, s[1]), _mm256_add_epi32(x2, s[2]),
                     _mm256_add_epi32(x3, s[3]), _mm256_add_epi32(x4, s[4]), _mm256_add_epi32(x5, s[5]),
                     _mm256_add_epi32(x6, s[6]), _mm256_add_epi32(x7, s[7])};
    __m256i hi[8] = {_mm256_add_epi32(x8, s[8]),   _mm256_add_epi32(x9, s[9]),   _mm256_add_epi32(x10, s[10]),
                     _mm256_add_epi32(x11, s[11]), _mm256_add_epi32(x12, s[12]), _mm256_add_epi32(x13, s[13]),
                     _mm256_add_epi32(x14, s[14]), _mm256_add_epi32(x15, s[15])};
    transpose_store(lo, out);
    transpose_store(hi, out + 32);
    s[12] = _mm256_add_epi32(s[12], _mm256_set1_epi32(8));
  }
  // The input state holds the key (the output is keystream the caller owns),
  // and so do the vector registers.
  secure_zero(s, sizeof(s));
  _mm256_zeroall();
}

#undef XCLOUD_QR

}  // namespace detail
}  // namespace xcloud
