#pragma once
// ChaCha20 stream cipher (RFC 8439), used to expand 32-byte seeds into the
// random polynomials and noise of CKKS encryption.
//
// Thread safety: a ChaCha20Stream is a plain value; distinct objects may be
// used from distinct threads. The free functions are reentrant.
#include <array>
#include <cstddef>
#include <cstdint>

namespace xcloud {

// Computes one 64-byte ChaCha20 block (RFC 8439 section 2.3): 20 rounds over
// the state (constants, key, counter, nonce), plus the input state.
// key: 32 bytes, nonce: 12 bytes, counter: the 32-bit block counter.
void chacha20_block(const uint8_t key[32], uint32_t counter, const uint8_t nonce[12],
                    uint8_t out[64]);

// A keystream reader: successive calls return successive keystream bytes of
// ChaCha20(key, nonce) starting at block counter `counter`.
// Blocks are generated eight at a time (AVX2, see simd.h) or one at a time
// (the scalar reference); the bytes are the same. fill() writes whole blocks
// straight into the caller's buffer when it can.
// The key material is zeroed on destruction.
class ChaCha20Stream {
 public:
  ChaCha20Stream(const uint8_t key[32], const uint8_t nonce[12], uint32_t counter = 0);
  ~ChaCha20Stream();
  ChaCha20Stream(const ChaCha20Stream&) = delete;
  ChaCha20Stream& operator=(const ChaCha20Stream&) = delete;

  // Fills out[0, n) with the next n keystream bytes.
  // @throws std::length_error if the 32-bit block counter would wrap (256 GiB).
  void fill(uint8_t* out, size_t n);
  // The next 8 keystream bytes as a little-endian integer.
  uint64_t next_u64();

 private:
  void refill();
  // Writes `blocks` blocks starting at counter_ to out and advances counter_;
  // the caller has checked that they do not pass counter 2^32 - 1.
  void generate(uint8_t* out, size_t blocks);
  std::array<uint8_t, 32> key_;
  std::array<uint8_t, 12> nonce_;
  uint64_t counter_;  // next block to generate (kept 64-bit to detect wrap)
  std::array<uint8_t, 64 * 8> buf_;
  size_t pos_;
};

}  // namespace xcloud
