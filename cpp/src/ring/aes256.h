#pragma once
// AES-256 (FIPS 197) in counter mode (NIST SP 800-38A, section 6.5), used
// only to expand PUBLIC seeds into the uniform polynomial of a secret-key
// ciphertext (ckks/keys.h, expand_uniform_prime). Secret randomness (keys,
// noise) stays on ChaCha20 (ring/chacha20.h).
//
// Three implementations give the same keystream bytes:
//   - the portable reference (table S-box, byte-oriented rounds). It is not
//     constant-time, which is acceptable only because the key here is a seed
//     that travels in the clear;
//   - AES-NI, eight 128-bit blocks in flight;
//   - VAES (256-bit AES rounds, two blocks per register), sixteen in flight.
// The fast ones are taken when the SIMD path is enabled (ring/simd.h, so
// XCLOUD_FORCE_SCALAR=1 selects the reference) and the CPU reports AES
// (and VAES for the wide one).
//
// Counter blocks: the 16-byte initial counter block with its last four bytes
// incremented as a big-endian 32-bit integer per block (the "inc32" of SP
// 800-38D; the SP 800-38A CTR-AES256 vectors never carry past those bytes).
//
// Thread safety: an Aes256Ctr is a plain value; distinct objects may be used
// from distinct threads. The free functions are reentrant.
#include <array>
#include <cstddef>
#include <cstdint>

namespace xcloud {

// The 15 round keys (240 bytes) of a 32-byte key, in FIPS 197 byte order.
void aes256_expand_key(const uint8_t key[32], uint8_t round_keys[240]);

// One block with the portable reference.
void aes256_encrypt_block(const uint8_t round_keys[240], const uint8_t in[16], uint8_t out[16]);

// Which implementation Aes256Ctr uses now: "vaes", "aes-ni" or "portable".
const char* aes256_ctr_path();

// Forces the portable reference even where the SIMD path is enabled
// (true), or allows the fast ones again; returns the previous setting. For
// the differential tests of the three paths.
bool aes256_force_portable(bool force);

// The keystream of AES-256-CTR from `key` and the 16-byte initial counter block.
class Aes256Ctr {
 public:
  Aes256Ctr(const uint8_t key[32], const uint8_t counter_block[16]);
  Aes256Ctr(const Aes256Ctr&) = delete;
  Aes256Ctr& operator=(const Aes256Ctr&) = delete;

  // Fills out[0, n) with the next n keystream bytes.
  // @throws std::length_error if the 32-bit counter would wrap (64 GiB).
  void fill(uint8_t* out, size_t n);

 private:
  void generate(uint8_t* out, size_t blocks);  // whole blocks from counter_
  std::array<uint8_t, 240> rk_;
  std::array<uint8_t, 12> prefix_;  // the counter block's first 12 bytes
  uint64_t counter_;                // next block's low 32 bits (64-bit to detect wrap)
  uint64_t end_;                    // 2^32: counter_ may reach it, never pass it
  std::array<uint8_t, 256> buf_;
  size_t pos_;
};

namespace detail {
// counter blocks prefix || BE32(ctr + i), i < blocks, encrypted into out.
void aes256_ctr_portable(const uint8_t rk[240], const uint8_t prefix[12], uint32_t ctr, size_t blocks, uint8_t* out);
void aes256_ctr_ni(const uint8_t rk[240], const uint8_t prefix[12], uint32_t ctr, size_t blocks, uint8_t* out);
void aes256_ctr_vaes(const uint8_t rk[240], const uint8_t prefix[12], uint32_t ctr, size_t blocks, uint8_t* out);
}  // namespace detail

}  // namespace xcloud
