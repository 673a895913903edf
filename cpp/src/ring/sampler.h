#pragma once
// Samplers for CKKS keys, encryption randomness and noise, each drawing from a
// ChaCha20 keystream, except sample_uniform_mod_ctr (AES-256-CTR, public
// seeds) and the AES-256-CTR overloads of sample_cbd and
// sample_ternary_packed (secret randomness from a stream constructed with
// AesKeyUse::kSecret, so that every AES path underneath is constant-time).
//
// None of them branches on the value it produces (the only data-dependent
// loops, in the uniform samplers, reject public randomness).
// The ChaCha20 ones are dispatchers (simd.h): the reference converts one word
// at a time (uniform and ternary draw each 8-byte word separately, the noise
// reads its 6-byte words from a bulk fill); the fast path fills a buffer with
// the same words in bulk (consuming exactly as many keystream bytes, so the
// stream position after the call is the same) and converts it in a tight
// loop (CBD with AVX2). Both give the same output.
// Thread safety: each call uses only the stream it is given.
#include <cstddef>
#include <cstdint>

#include "ring/aes256.h"
#include "ring/chacha20.h"
#include "ring/modarith.h"

namespace xcloud {

// Binomial parameter of the error distribution: e = popcount(a) - popcount(b)
// for two independent 21-bit words, so e is in [-21, 21] with mean 0 and
// variance 21/2 = 10.5 (standard deviation 3.24, the HE standard's 3.2).
constexpr int kCbdEta = 21;

// out[i] uniform in [0, q): draws 8 keystream bytes (a little-endian word)
// per try, keeps its low bit_length(q) bits and rejects values >= q.
void sample_uniform_mod(ChaCha20Stream& rng, u64 q, u64* out, size_t n);

// out[i] uniform in [0, q) from an AES-256-CTR keystream (public seeds only):
// B = ceil(bit_length(q) / 8) keystream bytes per try, read as a
// little-endian integer, its low bit_length(q) bits kept, values >= q
// rejected. Consumes exactly B * tries bytes. The AES implementation
// underneath differs per path (ring/aes256.h); the rejection loop takes four
// tries at a time with AVX2 (q < 2^62), one at a time in the reference
// (detail::sample_uniform_mod_ctr_scalar), with the same output.
void sample_uniform_mod_ctr(Aes256Ctr& rng, u64 q, u64* out, size_t n);

// out[i] uniform in {-1, 0, 1}: the top bits of (r * 3) for a 64-bit random r,
// whose bias is below 2^-62.
void sample_ternary(ChaCha20Stream& rng, int8_t* out, size_t n);

// Trits drawn from one 64-bit keystream word by sample_ternary_packed.
constexpr size_t kTritsPerWord = 8;

// out[i] uniform in {-1, 0, 1} up to a stated bias, eight coefficients per
// 8-byte little-endian keystream word r (one byte per coefficient; the
// ephemeral u of a public-key encryption). Coefficients 8 w .. 8 w + 7 are
// the first eight base-3 digits of r_w / 2^64, minus 1: with t = r_w, each
// step takes p = 3 t (128-bit), digit = p >> 64 (in {0, 1, 2}), t = p mod
// 2^64 (multiplications, no branch on the value). The 8 digits together are
// floor(3^8 r_w / 2^64), which takes each of the 3^8 values for floor or ceil
// of 2^64 / 3^8 words r_w, so each word's 8 coefficients are within
// statistical distance 3^8 / 2^65 = 2^-52.3 of 8 independent uniform trits,
// and a whole N = 4096 polynomial (512 words) within 2^-43.3 of uniform
// ternary (sample_ternary: 2^-51.4 with one word per coefficient).
// Consumes 8 * ceil(n / 8) keystream bytes (the digits left over in the
// last word are discarded).
void sample_ternary_packed(ChaCha20Stream& rng, int8_t* out, size_t n);

// The same conversion of the AES-256-CTR keystream: coefficients 8 w .. 8 w
// + 7 from the little-endian word of keystream bytes [8 w, 8 w + 8);
// consumes 8 * ceil(n / 8) bytes.
// @throws std::invalid_argument unless rng.key_use() == AesKeyUse::kSecret.
void sample_ternary_packed(Aes256Ctr& rng, int8_t* out, size_t n);

// Keystream bytes per noise sample: the 2 * kCbdEta = 42 bits fit in 6.
constexpr size_t kCbdBytes = 6;

// out[i] centred binomial with eta = kCbdEta, in [-21, 21]: for the 6-byte
// little-endian word r of sample i (keystream bytes [6 i, 6 i + 6)),
// popcount(r & (2^21 - 1)) - popcount((r >> 21) & (2^21 - 1)). (Before
// 2026-12-01 each sample took an 8-byte word, of which 2 bytes went unused;
// that changed the derandomised outputs, not any format.)
void sample_cbd(ChaCha20Stream& rng, int32_t* out, size_t n);

// The same noise from an AES-256-CTR keystream, with exactly the same
// conversion (6-byte little-endian word per sample, keystream bytes [6 i,
// 6 i + 6); consumes 6 n bytes) and the same AVX2 converter. The AES path is
// the stream's (VAES, AES-NI, or the constant-time portable one).
// @throws std::invalid_argument unless rng.key_use() == AesKeyUse::kSecret.
void sample_cbd(Aes256Ctr& rng, int32_t* out, size_t n);

namespace detail {
// The one-word-at-a-time references.
void sample_uniform_mod_scalar(ChaCha20Stream& rng, u64 q, u64* out, size_t n);
void sample_ternary_scalar(ChaCha20Stream& rng, int8_t* out, size_t n);
void sample_ternary_packed_scalar(ChaCha20Stream& rng, int8_t* out, size_t n);
void sample_uniform_mod_ctr_scalar(Aes256Ctr& rng, u64 q, u64* out, size_t n);
void sample_cbd_scalar(ChaCha20Stream& rng, int32_t* out, size_t n);
// The AES-256-CTR ones (secret use required, as above).
void sample_cbd_scalar(Aes256Ctr& rng, int32_t* out, size_t n);
void sample_ternary_packed_scalar(Aes256Ctr& rng, int8_t* out, size_t n);
}  // namespace detail

}  // namespace xcloud
