#pragma once
// The AES-256 key schedule of FIPS 197 (section 5.2), shared by the table
// reference (aes256.cpp, public keys only) and the constant-time path
// (aes256_ct.cpp): they differ only in how SubWord substitutes bytes, which
// each passes in. The schedule itself has no table and no branch on the key
// (rcon is a public constant sequence), so it is constant-time exactly when
// the SubWord given to it is. Internal header of the AES files.
#include <cstdint>
#include <cstring>

#include "ring/secure.h"

namespace xcloud {
namespace detail {

// rk[0, 240) = the 15 round keys of `key`; sub_word(uint8_t t[4]) replaces
// each of the four bytes of t by its S-box value, in place.
template <typename SubWord>
void aes256_schedule(const uint8_t key[32], uint8_t rk[240], SubWord sub_word) {
  std::memcpy(rk, key, 32);
  uint8_t rcon = 1;
  uint8_t t[4];
  for (int i = 8; i < 60; ++i) {
    std::memcpy(t, rk + 4 * (i - 1), 4);
    if (i % 8 == 0) {  // RotWord, SubWord, then rcon
      const uint8_t rot[4] = {t[1], t[2], t[3], t[0]};
      std::memcpy(t, rot, 4);
      sub_word(t);
      t[0] ^= rcon;
      rcon = static_cast<uint8_t>((rcon << 1) ^ ((rcon >> 7) * 0x1b));
    } else if (i % 8 == 4) {
      sub_word(t);
    }
    for (int k = 0; k < 4; ++k) rk[4 * i + k] = static_cast<uint8_t>(rk[4 * (i - 8) + k] ^ t[k]);
  }
  secure_zero(t, sizeof(t));  // a word of a (possibly secret) round key
}

}  // namespace detail
}  // namespace xcloud
