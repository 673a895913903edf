// AES-256-CTR with AES-NI: eight independent 128-bit blocks in flight, so
// the four-cycle latency of each round instruction is hidden; and the key
// schedule with AESKEYGENASSIST (constant-time, for secret keys). Compiled
// with -maes -msse4.1 only; chosen at run time (ring/aes256.h).
#include <immintrin.h>

#include <cstring>

#include "ring/aes256.h"
#include "ring/secure.h"

namespace xcloud {
namespace detail {

namespace {

inline __m128i counter_block(__m128i prefix, uint32_t c) {
  return _mm_insert_epi32(prefix, static_cast<int>(__builtin_bswap32(c)), 3);
}

// The four words w0..w3 -> w0, w0^w1, w0^w1^w2, w0^w1^w2^w3: the running
// xor through which one new word of the AES schedule feeds the next three.
inline __m128i prefix_xor(__m128i x) {
  x = _mm_xor_si128(x, _mm_slli_si128(x, 4));
  return _mm_xor_si128(x, _mm_slli_si128(x, 8));
}

// Words 8 j .. 8 j + 3 of the schedule from words 8 j - 8 .. 8 j - 5 (a) and
// the last four (b): w = w[-8] ^ SubWord(RotWord(w[-1])) ^ rcon, where
// AESKEYGENASSIST puts RotWord(SubWord(dword 3 of b)) ^ rcon in dword 3.
template <int kRcon>
inline __m128i next_even(__m128i a, __m128i b) {
  const __m128i t = _mm_shuffle_epi32(_mm_aeskeygenassist_si128(b, kRcon), 0xff);
  return _mm_xor_si128(prefix_xor(a), t);
}

// Words 8 j + 4 .. 8 j + 7: w = w[-8] ^ SubWord(w[-1]), no rotation or rcon
// (SubWord of dword 3 is dword 2 of AESKEYGENASSIST).
inline __m128i next_odd(__m128i b, __m128i a) {
  const __m128i t = _mm_shuffle_epi32(_mm_aeskeygenassist_si128(a, 0), 0xaa);
  return _mm_xor_si128(prefix_xor(b), t);
}

}  // namespace

void aes256_expand_key_ni(const uint8_t key[32], uint8_t rk[240]) {
  __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(key));
  __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(key + 16));
  auto put = [rk](int r, __m128i v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(rk + 16 * r), v); };
  put(0, a);
  put(1, b);
  a = next_even<0x01>(a, b), put(2, a), b = next_odd(b, a), put(3, b);
  a = next_even<0x02>(a, b), put(4, a), b = next_odd(b, a), put(5, b);
  a = next_even<0x04>(a, b), put(6, a), b = next_odd(b, a), put(7, b);
  a = next_even<0x08>(a, b), put(8, a), b = next_odd(b, a), put(9, b);
  a = next_even<0x10>(a, b), put(10, a), b = next_odd(b, a), put(11, b);
  a = next_even<0x20>(a, b), put(12, a), b = next_odd(b, a), put(13, b);
  a = next_even<0x40>(a, b), put(14, a);
  wipe_vector_registers();  // the key and its round keys (it expands secret keys too)
}

namespace {

template <bool kWipe>
void ctr_impl(const uint8_t rk[240], const uint8_t prefix[12], uint32_t ctr, size_t blocks, uint8_t* out) {
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
  // A secret key's round keys (the encryption noise's) must not stay on the
  // stack, nor in the vector registers with the last keystream blocks; the
  // schedule itself is wiped by Aes256Ctr's destructor.
  if (kWipe) {
    secure_zero(k, sizeof(k));
    wipe_vector_registers();
  }
}

}  // namespace

void aes256_ctr_ni(const uint8_t rk[240], const uint8_t prefix[12], uint32_t ctr, size_t blocks, uint8_t* out) {
  ctr_impl<false>(rk, prefix, ctr, blocks, out);
}

void aes256_ctr_ni_secret(const uint8_t rk[240], const uint8_t prefix[12], uint32_t ctr, size_t blocks, uint8_t* out) {
  ctr_impl<true>(rk, prefix, ctr, blocks, out);
}

}  // namespace detail
}  // namespace xcloud
