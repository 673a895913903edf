// SHA-256 compression with the SHA extensions (SHA256RNDS2, SHA256MSG1,
// SHA256MSG2), written from the instruction descriptions in the Intel SDM.
//
// SHA256RNDS2 works on the eight state words split over two registers, one
// holding (A, B, E, F) and the other (C, D, G, H), from the high dword down,
// and runs two rounds with the two low dwords of its third operand as
// W[t] + K[t]. Two calls, the second on the high half of the same four
// words, make four rounds; after each call the registers change roles (the
// old A, B, E, F become the new C, D, G, H).
//
// The message schedule is kept four words per register: group g holds
// W[4g, 4g + 4). For g >= 4, SHA256MSG1 adds sigma0 of the following word to
// each word of group g - 4, W[t - 7] comes from groups g - 2 and g - 1 by a
// byte shift, and SHA256MSG2 adds sigma1 of W[t - 2] (for the last two words,
// of words it has just computed).
#include "ring/sha256_ni.h"

#include "ring/secure.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace xcloud {
namespace detail {

bool sha256_cpu_has_ni() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sha") && __builtin_cpu_supports("sse4.1");
  }();
  return has;
#else
  return false;
#endif
}

void sha256_blocks_ni(uint32_t h[8], const uint8_t* data, size_t blocks, const uint32_t k[64]) {
  // Big-endian words: reverse the bytes of each dword.
  const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
  // h[0..3] = A B C D and h[4..7] = E F G H (dword 0 first) into
  // abef = (A, B, E, F) and cdgh = (C, D, G, H), high dword first.
  const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(h));      // dwords A B C D
  const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(h + 4));  // dwords E F G H
  const __m128i t = _mm_shuffle_epi32(lo, 0xB1);  // dwords B A D C
  const __m128i u = _mm_shuffle_epi32(hi, 0x1B);  // dwords H G F E
  __m128i abef = _mm_alignr_epi8(t, u, 8);        // dwords F E B A
  __m128i cdgh = _mm_blend_epi16(u, t, 0xF0);     // dwords H G D C
  for (size_t b = 0; b < blocks; ++b, data += 64) {
    const __m128i abef0 = abef, cdgh0 = cdgh;
    __m128i w[4];
    for (int g = 0; g < 4; ++g) {
      w[g] = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(data + 16 * g)), bswap);
    }
#pragma GCC unroll 16
    for (int g = 0; g < 16; ++g) {
      if (g >= 4) {
        // w[g % 4] holds group g - 4, w[(g + 1) % 4] group g - 3,
        // w[(g + 2) % 4] group g - 2 and w[(g + 3) % 4] group g - 1.
        __m128i x = _mm_sha256msg1_epu32(w[g % 4], w[(g + 1) % 4]);
        x = _mm_add_epi32(x, _mm_alignr_epi8(w[(g + 3) % 4], w[(g + 2) % 4], 4));
        w[g % 4] = _mm_sha256msg2_epu32(x, w[(g + 3) % 4]);
      }
      const __m128i wk = _mm_add_epi32(w[g % 4], _mm_loadu_si128(reinterpret_cast<const __m128i*>(k + 4 * g)));
      cdgh = _mm_sha256rnds2_epu32(cdgh, abef, wk);                         // rounds 4g, 4g + 1
      abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(wk, 0x0E));  // rounds 4g + 2, 4g + 3
    }
    abef = _mm_add_epi32(abef, abef0);
    cdgh = _mm_add_epi32(cdgh, cdgh0);
  }
  // Back to A B C D / E F G H, dword 0 first.
  const __m128i x = _mm_shuffle_epi32(abef, 0x1B);  // dwords A B E F
  const __m128i y = _mm_shuffle_epi32(cdgh, 0xB1);  // dwords G H C D
  _mm_storeu_si128(reinterpret_cast<__m128i*>(h), _mm_blend_epi16(x, y, 0xF0));    // A B C D
  _mm_storeu_si128(reinterpret_cast<__m128i*>(h + 4), _mm_alignr_epi8(y, x, 8));  // E F G H
  wipe_vector_registers();  // the message schedule lived in them (key files hold the secret key)
}

}  // namespace detail
}  // namespace xcloud
