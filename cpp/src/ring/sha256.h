#pragma once
// SHA-256 (FIPS 180-4), for parameter fingerprints and wire-format checksums.
// Thread safety: a Sha256 object is a plain value; the free function is reentrant.
#include <array>
#include <cstddef>
#include <cstdint>

namespace xcloud {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t n);
  std::array<uint8_t, 32> finish();  // the object must not be updated after finish()

 private:
  void compress(const uint8_t block[64]);
  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buf_;
  size_t buf_len_;
  uint64_t total_len_;
};

std::array<uint8_t, 32> sha256(const void* data, size_t n);

}  // namespace xcloud
