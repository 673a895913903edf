#include "ckks/byte_io.h"

namespace xcloud {

void pack_bits(const uint64_t* v, size_t n, int bits, uint8_t* out) {
  uint64_t acc = 0;  // pending bits, LSB first
  int have = 0;      // number of pending bits (< 8 between values)
  size_t o = 0;
  for (size_t i = 0; i < n; ++i) {
    acc |= v[i] << have;  // have < 8 and bits <= 57, so nothing is lost
    have += bits;
    while (have >= 8) {
      out[o++] = static_cast<uint8_t>(acc);
      acc >>= 8;
      have -= 8;
    }
  }
  if (have > 0) out[o++] = static_cast<uint8_t>(acc);
}

void unpack_bits(const uint8_t* in, size_t n, int bits, uint64_t bound, uint64_t* v, const char* what) {
  const uint64_t mask = (uint64_t{1} << bits) - 1;
  uint64_t acc = 0;
  int have = 0;
  size_t p = 0;
  uint64_t bad = 0;
  for (size_t i = 0; i < n; ++i) {
    while (have < bits) {
      acc |= static_cast<uint64_t>(in[p++]) << have;
      have += 8;
    }
    v[i] = acc & mask;
    bad |= static_cast<uint64_t>(v[i] >= bound);
    acc >>= bits;
    have -= bits;
  }
  if (bad) throw IntegrityError(std::string(what) + ": a residue is not below its modulus");
  if (acc != 0) throw IntegrityError(std::string(what) + ": non-zero padding bits");
}

}  // namespace xcloud
