#pragma once
// SHA-256 (FIPS 180-4), for parameter fingerprints and wire-format checksums.
// It also hashes key files, whose bytes hold the packed secret key, so an
// object wipes what it keeps of the message (the buffered tail and the last
// block's message schedule) when it is destroyed.
//
// Two implementations give the same digests: the portable one below, and
// the x86 SHA extensions (sha256_ni.cpp), taken where the SIMD path is
// enabled (ring/simd.h) and the CPU has them; XCLOUD_FORCE_SCALAR=1 forces
// the portable one.
// Thread safety: a Sha256 object is a plain value; the free function is reentrant.
#include <array>
#include <cstddef>
#include <cstdint>

namespace xcloud {

class Sha256 {
 public:
  Sha256();
  ~Sha256();  // secure_zero of the buffer and the message schedule
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(const void* data, size_t n);
  std::array<uint8_t, 32> finish();  // the object must not be updated after finish()

 private:
  void compress(const uint8_t* blocks, size_t count);  // SHA-NI where the SIMD path is taken
  void compress_portable(const uint8_t block[64]);
  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buf_;
  std::array<uint32_t, 64> w_;  // message schedule of the block being compressed
  size_t buf_len_;
  uint64_t total_len_;
};

std::array<uint8_t, 32> sha256(const void* data, size_t n);

// The implementation a hash takes now: "sha-ni" or "portable".
const char* sha256_path();

}  // namespace xcloud
