#pragma once
// Domain-separated ChaCha20 streams: one 32-byte key, many independent
// streams told apart by a 12-byte nonce = 4-byte tag || u32 index || u32 sub.
// Tags in use: "XCa" public-key uniform polynomial of prime `index`; "XCu"
// (the first 12 bytes of an AES-256-CTR counter block, ring/aes256.h) the
// uniform c1 of a secret-key ciphertext for prime `index`; "XCA" public seed of
// block `index`; "XCN" the key of an encryption's noise stream; "XCE" (the
// first 12 bytes of an AES-256-CTR counter block under that key, since
// 2026-12-02; a ChaCha20 nonce under the master seed before) the secret noise
// of block `index`; "XCs" secret key; "XCP" public-key seed; "XCk" public-key
// noise.
#include <array>
#include <cstdint>

#include "ring/chacha20.h"

namespace xcloud {

inline std::array<uint8_t, 12> stream_nonce(const char tag[4], uint32_t index, uint32_t sub = 0) {
  std::array<uint8_t, 12> n{};
  for (int i = 0; i < 4; ++i) n[i] = static_cast<uint8_t>(tag[i]);
  for (int i = 0; i < 4; ++i) n[4 + i] = static_cast<uint8_t>(index >> (8 * i));
  for (int i = 0; i < 4; ++i) n[8 + i] = static_cast<uint8_t>(sub >> (8 * i));
  return n;
}

}  // namespace xcloud
