#pragma once
// CKKS parameters in two steps (as in Lattigo): an unchecked literal, then a
// validated, immutable CkksParams with its precomputed tables.
//
// Thread safety: a CkksParams is immutable after construction; share it
// freely (through ParamsPtr; it has no mutating methods).
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ckks/encoder.h"
#include "ring/ntt.h"

namespace xcloud {

class CkksParams;
using ParamsPtr = std::shared_ptr<CkksParams>;

enum class SecretDistribution : uint8_t { kUniformTernary = 1 };
enum class ErrorDistribution : uint8_t { kCenteredBinomial21 = 1 };

// How a block of N reals becomes a plaintext polynomial.
//   - kSlots: the canonical embedding (ckks/encoder.h), two reals per complex
//     slot. Slot-wise products and rotations would be homomorphic in it (the
//     kernel implements neither); each value's error is a sum over all N
//     coefficients' noise.
//   - kCoefficients: value i is coefficient i, m_i = round(Delta * x_i), no
//     transform (the "coefficient encoding" of Lattigo's CKKS encoder). Sums
//     and products by public scalars, all that aggregation does, are
//     coefficient-wise, so they work unchanged; each value's error is its own
//     coefficient's noise, so it is both cheaper (no FFT in encryption or
//     decryption) and about 5 bits more precise. Used by the compact preset.
enum class Encoding : uint8_t { kSlots = 1, kCoefficients = 2 };

struct CkksParametersLiteral {
  int log_n = 12;                        // ring degree N = 2^log_n; one ciphertext holds N reals
  std::vector<int> prime_bits = {36, 36};  // bit sizes of the RNS primes; log2 Q is about their sum
  int scale_bits = 38;                   // encoding scale Delta = 2^scale_bits
  double max_value = 1.0;                // inputs must satisfy |x| <= max_value
  int security_bits = 128;               // 128, 192 or 256 (HomomorphicEncryption.org table)
  // Bit size of an auxiliary prime P used only inside public-key encryption
  // (0: none). With P the public key lives modulo Q*P, a public-key
  // encryption is made modulo Q*P and divided by P with rounding before it
  // leaves the encryptor, so ciphertexts stay modulo Q (the wire primes) and
  // the encryption noise shrinks by P. log2(Q*P) is what the security table
  // checks. See encrypt_public().
  int aux_prime_bits = 0;
  // Encoding scale of public-key encryptions, 2^public_scale_bits (0: the
  // same as scale_bits). Only with an auxiliary prime, at least scale_bits:
  // the rounding noise of the modulus drop (r1*s) is larger than a
  // secret-key encryption's, and a larger scale buys its precision back at
  // the cost of aggregation headroom (fewer fractional weight bits).
  int public_scale_bits = 0;
  Encoding encoding = Encoding::kSlots;
  SecretDistribution secret = SecretDistribution::kUniformTernary;
  ErrorDistribution error = ErrorDistribution::kCenteredBinomial21;
};

// Largest log2 Q for ring degree n at the given security level with a ternary
// secret. 128-bit: the newer, lower estimates that DESIGN.md asks us to stay
// below (26/53/107/214/431/868); 192- and 256-bit: the HomomorphicEncryption.org
// standard table. N = 65536 is not in the table; it uses the N = 32768 bound,
// which is conservative (a larger dimension at the same Q is harder).
// @throws ParameterError for an unknown level or degree.
int max_log_q(size_t n, int security_bits);

class CkksParams {
 public:
  // Validates the literal, including the security check.
  // @throws ParameterError (a subclass of std::invalid_argument) on any violation.
  static ParamsPtr create(const CkksParametersLiteral& lit);
  // As create(), but skips the security table check (for tests and small
  // examples only); the fingerprint records the difference.
  static ParamsPtr create_insecure(const CkksParametersLiteral& lit);

  size_t n() const { return n_; }
  int log_n() const { return lit_.log_n; }
  size_t num_primes() const { return primes_.size(); }
  const std::vector<u64>& primes() const { return primes_; }
  const NttTables& ntt(size_t j) const { return ntt_[j]; }
  const Encoder& encoder() const { return encoder_; }  // the slot encoder (kSlots; unused otherwise)
  Encoding encoding() const { return lit_.encoding; }
  double scale() const { return scale_; }
  // Scale of public-key encryptions (literal public_scale_bits, else scale()).
  double public_scale() const { return public_scale_; }
  int public_scale_bits() const { return lit_.public_scale_bits ? lit_.public_scale_bits : lit_.scale_bits; }
  double max_value() const { return lit_.max_value; }
  double log2_q() const { return log2_q_; }
  bool insecure() const { return insecure_; }
  int security_bits() const { return lit_.security_bits; }
  const CkksParametersLiteral& literal() const { return lit_; }

  // The auxiliary prime P (literal aux_prime_bits > 0), distinct from the
  // primes, = 1 mod 2N; 0 when there is none. aux_ntt() and
  // aux_inv_mod_prime(j) (P^-1 mod q_j, with its Shoup companion) are valid
  // only when has_aux().
  bool has_aux() const { return aux_prime_ != 0; }
  u64 aux_prime() const { return aux_prime_; }
  const NttTables& aux_ntt() const { return *aux_ntt_; }
  u64 aux_inv_mod_prime(size_t j) const { return aux_inv_[j]; }
  u64 aux_inv_mod_prime_shoup(size_t j) const { return aux_inv_shoup_[j]; }
  // log2 of the modulus the public key lives at: log2 Q + log2 P.
  double log2_key_modulus() const { return log2_qp_; }

  // Canonical serialisation (little-endian, versioned) and its SHA-256.
  const std::vector<uint8_t>& canonical_bytes() const { return canonical_; }
  const std::array<uint8_t, 32>& fingerprint() const { return fingerprint_; }

  // q_j^-1 mod q_i etc. for reconstructing a residue vector to a centred
  // integer (Garner's algorithm); valid because log2 Q <= 120.
  const std::vector<u64>& garner_inverses() const { return garner_inv_; }

  std::string describe() const;

 private:
  CkksParams(const CkksParametersLiteral& lit, bool insecure);
  CkksParametersLiteral lit_;
  bool insecure_;
  size_t n_;
  std::vector<u64> primes_;
  std::vector<NttTables> ntt_;
  Encoder encoder_;
  double scale_;
  double public_scale_;
  double log2_q_;
  std::vector<u64> garner_inv_;
  u64 aux_prime_ = 0;
  std::shared_ptr<const NttTables> aux_ntt_;
  std::vector<u64> aux_inv_, aux_inv_shoup_;
  double log2_qp_ = 0.0;
  std::vector<uint8_t> canonical_;
  std::array<uint8_t, 32> fingerprint_;
};


// Largest total modulus the aggregation kernel supports (reconstruction in
// 128-bit integers).
constexpr double kMaxLog2Q = 120.0;

}  // namespace xcloud
