#pragma once
// Little-endian 64-bit words from and to bytes, whatever the host's byte
// order: how the samplers read keystream words and how the bitsliced AES
// loads and stores its state. (The wire and key formats have their own
// bounds-checked reader and writer, ckks/byte_io.h.)
#include <cstdint>
#include <cstring>

namespace xcloud {

inline uint64_t load_le64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap64(v);
#endif
  return v;
}

inline void store_le64(uint8_t* p, uint64_t v) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap64(v);
#endif
  std::memcpy(p, &v, 8);
}

}  // namespace xcloud
