#pragma once
// Block-parallel CKKS encryption and decryption.
//
// Randomness: one 32-byte master seed per call (OS CSPRNG, or the caller's
// for the *_derand known-answer entry points). Block b draws its public seed
// from ChaCha20(master, nonce "XCA"||b) and its secret noise (and the u of a
// public-key encryption) from AES-256-CTR, constant-time, under the 32-byte
// key ChaCha20(master, nonce "XCN"||0) from counter block "XCE"||b||0
// (streams.h), so the output does not depend on the number of threads.
// Thread safety: the functions are reentrant; they use `threads` workers.
#include <cstdint>
#include <optional>
#include <vector>

#include "ckks/ciphertext.h"

namespace xcloud {

struct EncryptRequest {
  const void* data = nullptr;    // contiguous values
  DType dtype = DType::kFloat64;
  uint64_t count = 0;
  std::vector<int64_t> shape;
  int threads = 0;               // <= 0: all hardware threads
  std::optional<Seed> seed;      // derandomised (tests only) when set
};

// Secret-key encryption; c1 travels as a seed.
// @throws std::invalid_argument for no values, a NaN/Inf, |x| > max_value,
//         a shape whose product differs from count, or keys without a secret.
CiphertextBatch encrypt_secret(const KeySet& keys, const EncryptRequest& req);

// Public-key encryption (needs only the public key). c0 = u*b + e0 + Delta*m,
// c1 = u*a + e1 (u ternary; e0, e1 centred binomial), modulo Q. With an
// auxiliary prime P (CkksParametersLiteral::aux_prime_bits) the encryption
// of zero is made modulo Q*P and divided by P with rounding (a modulus drop)
// before Delta*m is added modulo Q: the result is an ordinary ciphertext
// modulo Q whose noise is the rounding's, r0 + r1*s (std about
// sqrt(N/18) ~ 15 per coefficient at N = 4096), instead of
// u*e + e1*s + e0 (std about 240).
// @throws as encrypt_secret (a public key is needed instead of a secret one).
CiphertextBatch encrypt_public(const KeySet& keys, const EncryptRequest& req);

// Decrypts all blocks into out[0, n_values) as float32 or float64. A c1
// given by seeds (a fresh secret-key batch, or a seeded-sum aggregate with K
// seeds per block) is first regenerated from them: K expansions per block.
// @throws std::invalid_argument if the keys have no secret key, belong to
//         another parameter set or key pair than the batch, or if a seeded
//         batch's seed or weight counts are inconsistent.
void decrypt(const KeySet& keys, const CiphertextBatch& ct, void* out, DType out_dtype, int threads);

}  // namespace xcloud
