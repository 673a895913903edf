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

struct CkksParametersLiteral {
  int log_n = 12;                        // ring degree N = 2^log_n; one ciphertext holds N reals
  std::vector<int> prime_bits = {36, 36};  // bit sizes of the RNS primes; log2 Q is about their sum
  int scale_bits = 38;                   // encoding scale Delta = 2^scale_bits
  double max_value = 1.0;                // inputs must satisfy |x| <= max_value
  int security_bits = 128;               // 128, 192 or 256 (HomomorphicEncryption.org table)
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
  const Encoder& encoder() const { return encoder_; }
  double scale() const { return scale_; }
  double max_value() const { return lit_.max_value; }
  double log2_q() const { return log2_q_; }
  bool insecure() const { return insecure_; }
  int security_bits() const { return lit_.security_bits; }
  const CkksParametersLiteral& literal() const { return lit_; }

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
  double log2_q_;
  std::vector<u64> garner_inv_;
  std::vector<uint8_t> canonical_;
  std::array<uint8_t, 32> fingerprint_;
};


// Largest total modulus the aggregation kernel supports (reconstruction in
// 128-bit integers).
constexpr double kMaxLog2Q = 120.0;

}  // namespace xcloud
