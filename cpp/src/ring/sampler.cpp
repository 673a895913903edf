// The samplers of ring/sampler.h: scalar references (detail::) and the bulk
// paths the dispatchers take when the SIMD kernels are enabled.
#include "ring/sampler.h"

#include <cstring>
#include <stdexcept>
#include <string>

#include "ring/endian.h"
#include "ring/sampler_avx2.h"
#include "ring/secure.h"
#include "ring/simd.h"

namespace xcloud {

namespace {

// Words drawn per bulk fill (2 KiB of keystream, on the stack).
constexpr size_t kChunkWords = 256;

// Bits set in v, by the branch-free SWAR sum (pairs, nibbles, bytes, then a
// multiply), so that the noise never goes through a library popcount (a
// libgcc without POPCNT may count with a table indexed by the noise bytes).
inline int popcount64_ct(u64 v) {
  v = v - ((v >> 1) & 0x5555555555555555ULL);
  v = (v & 0x3333333333333333ULL) + ((v >> 2) & 0x3333333333333333ULL);
  v = (v + (v >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
  return static_cast<int>((v * 0x0101010101010101ULL) >> 56);
}

inline int32_t cbd_of(u64 r) {
  constexpr u64 mask = (u64{1} << kCbdEta) - 1;
  return popcount64_ct(r & mask) - popcount64_ct((r >> kCbdEta) & mask);
}

inline int8_t ternary_of(u64 r) {
  const u64 v = static_cast<u64>(((u128)r * 3) >> 64);  // in {0, 1, 2}
  return static_cast<int8_t>(static_cast<int>(v) - 1);
}

// The first m <= kTritsPerWord base-3 digits of r / 2^64, each minus 1.
inline void trits_of(u64 r, int8_t* out, size_t m) {
  for (size_t k = 0; k < m; ++k) {
    const u128 p = (u128)r * 3;
    out[k] = static_cast<int8_t>(static_cast<int>(static_cast<u64>(p >> 64)) - 1);
    r = static_cast<u64>(p);
  }
}

inline void trits8_of(u64 r, int8_t* out) {
#pragma GCC unroll 8
  for (size_t k = 0; k < kTritsPerWord; ++k) {
    const u128 p = (u128)r * 3;
    out[k] = static_cast<int8_t>(static_cast<int>(static_cast<u64>(p >> 64)) - 1);
    r = static_cast<u64>(p);
  }
}

// The noise converters below take either stream type: both are read only
// through fill(), so ChaCha20 and AES-CTR give the same conversion of their
// keystream bytes.

// Words in bulk (one fill per chunk, the same bytes as one fill per sample),
// converted one at a time: the path of CPUs without AVX2.
template <typename Rng>
void cbd_scalar_impl(Rng& rng, int32_t* out, size_t n) {
  uint8_t buf[kCbdBytes * kChunkWords + 8];
  std::memset(buf, 0, sizeof(buf));
  for (size_t i = 0; i < n; i += kChunkWords) {
    const size_t m = n - i < kChunkWords ? n - i : kChunkWords;
    rng.fill(buf, kCbdBytes * m);
    for (size_t k = 0; k < m; ++k) out[i + k] = cbd_of(load_le64(buf + kCbdBytes * k));  // bits 0-41 only
  }
  secure_zero(buf, sizeof(buf));
}

template <typename Rng>
void cbd_bulk_impl(Rng& rng, int32_t* out, size_t n) {
  uint8_t buf[kCbdBytes * kChunkWords + 8];  // a word read at sample k ends before 6 k + 8
  std::memset(buf, 0, sizeof(buf));
  for (size_t i = 0; i < n; i += kChunkWords) {
    const size_t m = n - i < kChunkWords ? n - i : kChunkWords;
    rng.fill(buf, kCbdBytes * m);
    size_t k = 0;
#ifdef XCLOUD_HAVE_AVX2
    k = m & ~size_t{3};
    detail::cbd_from_words6_avx2(buf, out + i, k);
#endif
    for (; k < m; ++k) out[i + k] = cbd_of(load_le64(buf + kCbdBytes * k));  // bits 0-41 only
  }
  secure_zero(buf, sizeof(buf));  // the words determine the secret noise
}

template <typename Rng>
void ternary_packed_bulk_impl(Rng& rng, int8_t* out, size_t n) {
  uint8_t buf[8 * kChunkWords];
  constexpr size_t kChunk = kTritsPerWord * kChunkWords;  // coefficients per fill
  for (size_t i = 0; i < n; i += kChunk) {
    const size_t m = n - i < kChunk ? n - i : kChunk;
    const size_t words = (m + kTritsPerWord - 1) / kTritsPerWord;
    rng.fill(buf, 8 * words);
    const size_t full = m / kTritsPerWord;
    for (size_t k = 0; k < full; ++k) trits8_of(load_le64(buf + 8 * k), out + i + kTritsPerWord * k);
    if (full < words) trits_of(load_le64(buf + 8 * full), out + i + kTritsPerWord * full, m - kTritsPerWord * full);
  }
  secure_zero(buf, sizeof(buf));  // the words determine a secret
}

// Secret randomness only from a stream whose every path is constant-time.
void require_secret(const Aes256Ctr& rng, const char* what) {
  if (rng.key_use() != AesKeyUse::kSecret) {
    throw std::invalid_argument(std::string(what) + ": the AES-256-CTR stream must be constructed for secret use");
  }
}

}  // namespace

namespace detail {

void sample_uniform_mod_scalar(ChaCha20Stream& rng, u64 q, u64* out, size_t n) {
  const int bits = 64 - __builtin_clzll(q);
  const u64 mask = bits >= 64 ? ~u64{0} : (u64{1} << bits) - 1;
  // Acceptance probability q / 2^bits > 1/2, so the expected draws are < 2n.
  size_t i = 0;
  while (i < n) {
    const u64 r = rng.next_u64() & mask;
    out[i] = r;
    i += (r < q);  // a rejected draw is overwritten by the next one
  }
}

void sample_ternary_scalar(ChaCha20Stream& rng, int8_t* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = ternary_of(rng.next_u64());
}

void sample_ternary_packed_scalar(ChaCha20Stream& rng, int8_t* out, size_t n) {
  for (size_t i = 0; i < n; i += kTritsPerWord) {
    const size_t m = n - i < kTritsPerWord ? n - i : kTritsPerWord;
    trits_of(rng.next_u64(), out + i, m);
  }
}

void sample_cbd_scalar(ChaCha20Stream& rng, int32_t* out, size_t n) { cbd_scalar_impl(rng, out, n); }

void sample_cbd_scalar(Aes256Ctr& rng, int32_t* out, size_t n) {
  require_secret(rng, "sample_cbd");
  cbd_scalar_impl(rng, out, n);
}

void sample_ternary_packed_scalar(Aes256Ctr& rng, int8_t* out, size_t n) {
  require_secret(rng, "sample_ternary_packed");
  // One 8-byte fill per word: the bytes the bulk path reads, word by word.
  uint8_t w[8];
  for (size_t i = 0; i < n; i += kTritsPerWord) {
    const size_t m = n - i < kTritsPerWord ? n - i : kTritsPerWord;
    rng.fill(w, 8);
    trits_of(load_le64(w), out + i, m);
  }
  secure_zero(w, sizeof(w));
}

}  // namespace detail

void sample_uniform_mod(ChaCha20Stream& rng, u64 q, u64* out, size_t n) {
  if (!simd_enabled()) return detail::sample_uniform_mod_scalar(rng, q, out, n);
  const int bits = 64 - __builtin_clzll(q);
  const u64 mask = bits >= 64 ? ~u64{0} : (u64{1} << bits) - 1;
  uint8_t buf[8 * kChunkWords];
  size_t i = 0;
  while (i < n) {
    // At most n - i draws: each accepts at most one value, so this never
    // draws a word the one-at-a-time loop would not have drawn.
    const size_t draws = n - i < kChunkWords ? n - i : kChunkWords;
    rng.fill(buf, 8 * draws);
    for (size_t k = 0; k < draws; ++k) {
      const u64 r = load_le64(buf + 8 * k) & mask;
      out[i] = r;        // i < n here: at most `draws` increments from i
      i += (r < q);
    }
  }
  // The words are public randomness (the uniform half of a ciphertext or key).
}

namespace {

template <bool kSimd>
void uniform_mod_ctr_impl(Aes256Ctr& rng, u64 q, u64* out, size_t n) {
  const int bits = 64 - __builtin_clzll(q);
  const size_t width = static_cast<size_t>((bits + 7) / 8);
  const u64 mask = bits >= 64 ? ~u64{0} : (u64{1} << bits) - 1;
  constexpr size_t kTries = 512;
  uint8_t buf[8 * kTries + 16];  // a word read at try k ends before width * k + 8; the SIMD loads 16 bytes past
  std::memset(buf, 0, sizeof(buf));
  size_t i = 0;
  while (i < n) {
    // At most n - i tries per fill: each accepts at most one value, so the
    // bytes consumed do not depend on the chunking.
    const size_t tries = n - i < kTries ? n - i : kTries;
    rng.fill(buf, width * tries);
#ifdef XCLOUD_HAVE_AVX2
    if (kSimd) {
      i = detail::uniform_from_words_avx2(buf, width, mask, q, tries, out, i);
      continue;
    }
#endif
    for (size_t k = 0; k < tries; ++k) {
      const u64 r = load_le64(buf + width * k) & mask;
      out[i] = r;
      i += (r < q);
    }
  }
}

}  // namespace

namespace detail {
void sample_uniform_mod_ctr_scalar(Aes256Ctr& rng, u64 q, u64* out, size_t n) {
  uniform_mod_ctr_impl<false>(rng, q, out, n);
}
}  // namespace detail

void sample_uniform_mod_ctr(Aes256Ctr& rng, u64 q, u64* out, size_t n) {
  // The SIMD loop needs values below 2^62 (a signed 64-bit compare).
  if (simd_enabled() && q < (u64{1} << 62)) return uniform_mod_ctr_impl<true>(rng, q, out, n);
  uniform_mod_ctr_impl<false>(rng, q, out, n);
}

void sample_ternary(ChaCha20Stream& rng, int8_t* out, size_t n) {
  if (!simd_enabled()) return detail::sample_ternary_scalar(rng, out, n);
  uint8_t buf[8 * kChunkWords];
  for (size_t i = 0; i < n; i += kChunkWords) {
    const size_t m = n - i < kChunkWords ? n - i : kChunkWords;
    rng.fill(buf, 8 * m);
    for (size_t k = 0; k < m; ++k) out[i + k] = ternary_of(load_le64(buf + 8 * k));
  }
  secure_zero(buf, sizeof(buf));  // the words determine a secret
}

void sample_ternary_packed(ChaCha20Stream& rng, int8_t* out, size_t n) {
  if (!simd_enabled()) return detail::sample_ternary_packed_scalar(rng, out, n);
  ternary_packed_bulk_impl(rng, out, n);
}

void sample_ternary_packed(Aes256Ctr& rng, int8_t* out, size_t n) {
  if (!simd_enabled()) return detail::sample_ternary_packed_scalar(rng, out, n);
  require_secret(rng, "sample_ternary_packed");
  ternary_packed_bulk_impl(rng, out, n);
}

void sample_cbd(ChaCha20Stream& rng, int32_t* out, size_t n) {
  if (!simd_enabled()) return detail::sample_cbd_scalar(rng, out, n);
  cbd_bulk_impl(rng, out, n);
}

void sample_cbd(Aes256Ctr& rng, int32_t* out, size_t n) {
  if (!simd_enabled()) return detail::sample_cbd_scalar(rng, out, n);
  require_secret(rng, "sample_cbd");
  cbd_bulk_impl(rng, out, n);
}

}  // namespace xcloud
