#pragma once
// CKKS keys: a ternary secret key, an RLWE public key whose uniform half is
// expanded from a 32-byte seed, and a KeySet holding either or both.
//
// Serialisation: the secret key is written only by secret_key_to_bytes(); the
// public form of a KeySet never contains it.
// Thread safety: keys are immutable after creation and may be shared.
#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "ckks/params.h"
#include "ring/secure_vector.h"

namespace xcloud {

using Seed = std::array<uint8_t, 32>;

class KeySet;
using KeySetPtr = std::shared_ptr<KeySet>;

struct SecretKey {
  SecureVector<int8_t> coeffs;  // N coefficients in {-1, 0, 1}
  SecureVector<u64> ntt;        // L x N, evaluation form of s mod q_j
  SecureVector<u64> ntt_shoup;  // Shoup companions of ntt, for fast products
};

struct PublicKey {
  Seed a_seed;                  // a (evaluation form, all primes) = uniform from this seed
  // L' x N, L' = L + 1 with an auxiliary prime P (params.h; the last row is
  // modulo P: the public key lives modulo Q*P), else L.
  std::vector<u64> a;           // L' x N expanded from a_seed
  std::vector<u64> b;           // L' x N evaluation form of -a*s + e
  std::vector<u64> a_shoup, b_shoup;  // Shoup companions of a and b
  // With an auxiliary prime P: a * P^-1 and b * P^-1 modulo the wire primes
  // (L x N, evaluation form) and their Shoup companions, so that the modulus
  // drop of public-key encryption folds its division into the products.
  // Derived from a and b; never serialised.
  std::vector<u64> a_drop, b_drop, a_drop_shoup, b_drop_shoup;
};

class KeySet {
 public:
  // Fresh keys from the OS CSPRNG.
  static KeySetPtr generate(const ParamsPtr& params);
  // Deterministic keys from a 32-byte seed (known-answer tests only).
  static KeySetPtr generate_derand(const ParamsPtr& params, const Seed& seed);

  const ParamsPtr& params() const { return params_; }
  bool has_secret() const { return sk_ != nullptr; }
  bool has_public() const { return pk_ != nullptr; }
  // @throws std::invalid_argument if absent.
  const SecretKey& secret() const;
  const PublicKey& public_key() const;
  // A 16-byte identifier of the key pair: SHA-256 over a domain tag and the
  // public key (or, without one, over the secret key coefficients: one-way).
  const std::array<uint8_t, 16>& key_id() const { return key_id_; }

  // The same keys without the secret part.
  // @throws std::invalid_argument if there is no public key to keep.
  KeySetPtr public_only() const;

  // Formats: see wire.h. public_to_bytes() never contains the secret key.
  std::vector<uint8_t> public_to_bytes() const;
  std::vector<uint8_t> secret_to_bytes() const;  // explicit: secret key + public key
  // @throws IntegrityError for malformed or mismatched bytes.
  static KeySetPtr from_bytes(const ParamsPtr& params, const uint8_t* data, size_t len);

  KeySet(ParamsPtr params, std::unique_ptr<SecretKey> sk, std::unique_ptr<PublicKey> pk);

 private:
  ParamsPtr params_;
  std::shared_ptr<const SecretKey> sk_;
  std::shared_ptr<const PublicKey> pk_;
  std::array<uint8_t, 16> key_id_;
};



// The public-key polynomial a from its seed: L' x N uniform residues
// (evaluation form; L' as PublicKey, the auxiliary prime at index L), one
// ChaCha20 stream per prime with nonce ("XCa", prime index), 8 keystream
// bytes per try (key format versions 1 and 2).
void expand_uniform(const CkksParams& params, const Seed& seed, u64* out);

// The uniform c1 of a secret-key ciphertext block, prime j, from its public
// seed (wire format version 2): N residues in [0, q_j), drawn by
// sample_uniform_mod_ctr from AES-256-CTR keyed with the seed, initial
// counter block "XCu" 0 || u32 LE j || u32 0 || u32 BE 0. Version 1 drew
// them from ChaCha20 with 8 bytes per try; it is no longer produced or read.
void expand_uniform_prime(const CkksParams& params, const Seed& seed, size_t j, u64* out);

}  // namespace xcloud
