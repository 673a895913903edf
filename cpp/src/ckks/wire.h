#pragma once
// The ciphertext wire format, version 2 (little-endian). The seeded-sum c1
// form (2) was added within version 1. Version 2 changed the expansion of
// seeds (keys.h, expand_uniform_prime: AES-256-CTR with ceil(bits/8) bytes
// per try instead of ChaCha20 with 8). deserialize() still reads version 1
// messages with full c1 polynomials (form 1; their meaning did not change)
// and refuses version-1 seeded forms with UnsupportedVersionError.
//
//   offset size
//   0      4    magic "XCCT"
//   4      2    version (2; 1 accepted for form 1 only)
//   6      1    origin: 1 secret-key, 2 public-key, 3 aggregate
//   7      1    c1 form: 0 seeded (one 32-byte seed per block; origin 1 only),
//               1 full polynomials, 2 seeded sum (K seeds per block, K
//               weights; origin 3 only)
//   8      1    dtype of the encrypted array: 1 float32, 2 float64
//   9      1    ndim (<= 32)
//   10     2    reserved, zero
//   12     32   parameter fingerprint (SHA-256 of the canonical parameters)
//   44     16   key id
//   60     8    n_values
//   68     4    n_blocks (= ceil(n_values / N))
//   72     1    L (number of primes)    73  1  log2 N    74  2  reserved, zero
//   76     8    scale (float64)
//   84     8    bound (float64): |value| <= bound
//   92     8*ndim  shape (int64 each)
//   form 2 only, at h = 92 + 8*ndim:
//   h      4    K, seeds per block (u32, in [1, kMaxSeedsPerBlock = 256])
//   h+4    8*L*K  weights: for prime j = 0..L-1, for seed k = 0..K-1, the
//               u64 residue w_jk in [0, q_j) (c1 = sum_k w_jk a_k mod q_j)
//   then per block: c0 as L polynomials, each N residues packed LSB-first at
//   bit_length(q_j) bits; then c1: a 32-byte seed (form 0), L packed
//   polynomials (form 1), or K 32-byte seeds, in weight order (form 2)
//   last   32   SHA-256 of all preceding bytes (an integrity checksum against
//               corruption; authentication belongs to the message layer)
//
// Thread safety: reentrant.
#include <cstdint>
#include <vector>

#include "ckks/ciphertext.h"

namespace xcloud {

std::vector<uint8_t> serialize(const CiphertextBatch& ct);

// The same bytes into dst[0, size), size == serialized_size(ct) (for a
// destination allocated by the caller, such as a Python bytes object).
// @throws std::invalid_argument if size is not serialized_size(ct).
void serialize_into(const CiphertextBatch& ct, uint8_t* dst, size_t size);

// Bytes of one packed polynomial (all L primes) in this format.
size_t packed_poly_size(const CkksParams& p);

// Exact size serialize() will produce.
size_t serialized_size(const CiphertextBatch& ct);

// The headroom rule every ciphertext on the wire satisfies, with margin_bits
// more to spare: the scale (the encoding of 1.0) below the modulus, and
// scale * bound (a bound of 0 counting as 1) half a bit and one bit more
// below it. deserialize() checks it with margin 0; aggregate() keeps its
// outputs within it at margin 1, so every aggregate can be read back.
bool within_modulus(double log2_scale, double bound, double log2_q, double margin_bits);

// Parses and validates everything (sizes before any allocation, checksum,
// fingerprint, field ranges, residues below their moduli, shape product;
// for the seeded-sum form the seed count and every weight below its prime).
// @throws IntegrityError on any malformed, truncated, oversized, tampered or
//         mismatched input; UnsupportedVersionError (a subclass) for an
//         unknown version or a version-1 seeded form. Never reads outside [data, data + len).
CiphertextBatch deserialize(const ParamsPtr& params, const uint8_t* data, size_t len);

}  // namespace xcloud
