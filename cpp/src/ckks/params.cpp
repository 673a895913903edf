#include "ckks/params.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

#include "ckks/errors.h"
#include "ring/sha256.h"

namespace xcloud {

namespace {

struct SecurityRow {
  int log_n;
  int bits128, bits192, bits256;
};
// Max log2 Q for a uniform ternary secret. 128: DESIGN.md's newer estimates;
// 192/256: HomomorphicEncryption.org standard (2018), Table 1, ternary column.
constexpr SecurityRow kSecurityTable[] = {
    {10, 26, 19, 14},   {11, 53, 37, 29},   {12, 107, 75, 58},
    {13, 214, 152, 118}, {14, 431, 305, 237}, {15, 868, 611, 476},
};

void put_u8(std::vector<uint8_t>& b, uint8_t v) { b.push_back(v); }
void put_u16(std::vector<uint8_t>& b, uint16_t v) {
  for (int i = 0; i < 2; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void put_u64(std::vector<uint8_t>& b, uint64_t v) {
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

void validate_structure(const CkksParametersLiteral& lit, bool insecure) {
  const int min_log_n = insecure ? 4 : 11;
  if (lit.log_n < min_log_n || lit.log_n > 16) {
    throw ParameterError("log_n must be in [" + std::to_string(min_log_n) + ", 16] (ring degree 2^" +
                         std::to_string(min_log_n) + " to 2^16), got " + std::to_string(lit.log_n));
  }
  if (lit.prime_bits.empty() || lit.prime_bits.size() > 4) {
    throw ParameterError("prime_bits must list 1 to 4 prime sizes, got " + std::to_string(lit.prime_bits.size()));
  }
  int total = 0;
  for (int b : lit.prime_bits) {
    if (b < kMinPrimeBits || b > kMaxPrimeBits) {
      throw ParameterError("each prime must have " + std::to_string(kMinPrimeBits) + " to " +
                           std::to_string(kMaxPrimeBits) + " bits, got " + std::to_string(b));
    }
    total += b;
  }
  if (total > static_cast<int>(kMaxLog2Q)) {
    throw ParameterError("the primes total " + std::to_string(total) + " bits; at most " +
                         std::to_string(static_cast<int>(kMaxLog2Q)) + " are supported");
  }
  if (lit.encoding != Encoding::kSlots && lit.encoding != Encoding::kCoefficients) {
    throw ParameterError("unknown encoding " + std::to_string(static_cast<int>(lit.encoding)));
  }
  if (lit.aux_prime_bits != 0 && (lit.aux_prime_bits < kMinPrimeBits || lit.aux_prime_bits > kMaxPrimeBits)) {
    throw ParameterError("aux_prime_bits must be 0 (no auxiliary prime) or in [" + std::to_string(kMinPrimeBits) +
                         ", " + std::to_string(kMaxPrimeBits) + "], got " + std::to_string(lit.aux_prime_bits));
  }
  if (lit.public_scale_bits != 0) {
    if (lit.aux_prime_bits == 0) {
      throw ParameterError("public_scale_bits needs an auxiliary prime (aux_prime_bits > 0); without one, public-key "
                           "encryption uses scale_bits");
    }
    if (lit.public_scale_bits < lit.scale_bits || lit.public_scale_bits > 80) {
      throw ParameterError("public_scale_bits must be 0 (scale_bits) or in [scale_bits, 80], got " +
                           std::to_string(lit.public_scale_bits));
    }
  }
  if (lit.scale_bits < 10 || lit.scale_bits > 80) {
    throw ParameterError("scale_bits must be in [10, 80], got " + std::to_string(lit.scale_bits));
  }
  if (!std::isfinite(lit.max_value) || lit.max_value <= 0.0 || lit.max_value > 1048576.0) {
    throw ParameterError("max_value must be finite and in (0, 2^20]");
  }
  if (lit.security_bits != 128 && lit.security_bits != 192 && lit.security_bits != 256) {
    throw ParameterError("security_bits must be 128, 192 or 256, got " + std::to_string(lit.security_bits));
  }
  if (lit.secret != SecretDistribution::kUniformTernary) throw ParameterError("unknown secret distribution");
  if (lit.error != ErrorDistribution::kCenteredBinomial21) throw ParameterError("unknown error distribution");
}

}  // namespace

int max_log_q(size_t n, int security_bits) {
  if (n < 2 || n > (size_t{1} << 16)) throw ParameterError("ring degree must be a power of two up to 65536");
  int log_n = 0;
  while ((size_t{1} << log_n) < n) ++log_n;
  if ((size_t{1} << log_n) != n) throw ParameterError("ring degree must be a power of two");
  if (log_n == 16) log_n = 15;  // conservative: see the header
  for (const auto& row : kSecurityTable) {
    if (row.log_n == log_n) {
      if (security_bits == 128) return row.bits128;
      if (security_bits == 192) return row.bits192;
      if (security_bits == 256) return row.bits256;
      throw ParameterError("security_bits must be 128, 192 or 256");
    }
  }
  throw ParameterError("no security table entry for ring degree " + std::to_string(n));
}

CkksParams::CkksParams(const CkksParametersLiteral& lit, bool insecure)
    : lit_(lit), insecure_(insecure), n_(size_t{1} << lit.log_n), encoder_(size_t{1} << lit.log_n) {
  const u64 two_n = 2 * n_;
  for (int b : lit.prime_bits) {
    try {
      primes_.push_back(generate_ntt_primes(b, two_n, 1, primes_).front());
    } catch (const std::invalid_argument& e) {
      throw ParameterError(e.what());
    }
  }
  log2_q_ = 0.0;
  for (u64 q : primes_) log2_q_ += std::log2(static_cast<double>(q));
  if (log2_q_ > kMaxLog2Q) throw ParameterError("total modulus above 2^120");
  log2_qp_ = log2_q_;
  if (lit.aux_prime_bits != 0) {
    try {
      aux_prime_ = generate_ntt_primes(lit.aux_prime_bits, two_n, 1, primes_).front();
    } catch (const std::invalid_argument& e) {
      throw ParameterError(std::string("auxiliary prime: ") + e.what());
    }
    log2_qp_ += std::log2(static_cast<double>(aux_prime_));
  }
  // Fresh ciphertexts must not wrap: Delta * sqrt(2) * max_value (the
  // coefficient bound) times 4 for noise and sign, below Q.
  const int fresh_scale_bits = std::max(lit.scale_bits, lit.public_scale_bits);
  const double need = fresh_scale_bits + 0.5 * std::log2(2.0) + std::log2(lit.max_value) + 2.0;
  if (need >= log2_q_) {
    std::ostringstream os;
    os << "scale 2^" << fresh_scale_bits << " with max_value " << lit.max_value << " needs log2 Q > " << need
       << ", but the primes give " << log2_q_;
    throw ParameterError(os.str());
  }
  // The encoder rounds Delta * (a coefficient) to int64 (poly_ops.h
  // round_scaled): the bound above, without the noise factor, must stay
  // below 2^62 whatever Q is, or large values would wrap silently.
  const double int_bits = fresh_scale_bits + 0.5 + std::log2(lit.max_value);
  if (int_bits >= 62.0) {
    std::ostringstream os;
    os << "scale 2^" << fresh_scale_bits << " with max_value " << lit.max_value
       << " makes plaintext coefficients of up to 2^" << int_bits << "; they must stay below 2^62";
    throw ParameterError(os.str());
  }
  if (!insecure) {
    const int limit = max_log_q(n_, lit.security_bits);
    if (std::ceil(log2_qp_) > limit) {
      std::ostringstream os;
      os << (aux_prime_ ? "log2 Q*P (the public key's modulus) = " : "log2 Q = ") << std::ceil(log2_qp_) << " exceeds " << limit << " bits, the maximum for N = " << n_
         << " at " << lit.security_bits << "-bit security (ternary secret); use fewer or smaller primes or a larger N";
      throw ParameterError(os.str());
    }
  }
  ntt_.reserve(primes_.size());
  for (u64 q : primes_) ntt_.emplace_back(q, n_);
  scale_ = std::ldexp(1.0, lit.scale_bits);
  public_scale_ = std::ldexp(1.0, lit.public_scale_bits ? lit.public_scale_bits : lit.scale_bits);

  const size_t L = primes_.size();
  garner_inv_.assign(L * L, 0);
  for (size_t i = 0; i < L; ++i) {
    for (size_t j = 0; j < i; ++j) garner_inv_[i * L + j] = inv_mod(primes_[j] % primes_[i], primes_[i]);
  }

  if (aux_prime_) {
    aux_ntt_ = std::make_shared<const NttTables>(aux_prime_, n_);
    for (u64 q : primes_) {
      aux_inv_.push_back(inv_mod(aux_prime_ % q, q));
      aux_inv_shoup_.push_back(shoup_precompute(aux_inv_.back(), q));
    }
  }

  // Canonical serialisation: version 1 for the slot encoding without an
  // auxiliary prime (unchanged since it was introduced); version 2, slots with
  // one: the same fields, then the auxiliary prime as u64 and the public-key
  // scale bits as u16 after the insecure flag; version 3, the coefficient
  // encoding: the version-1 fields, then the encoding as u8, the auxiliary
  // prime as u64 (0 for none) and the public-key scale bits as u16. A
  // version-1 or -2 reader never matches a version-3 fingerprint, so keys and
  // ciphertexts of one encoding are refused under the other.
  const bool coefficients = lit.encoding == Encoding::kCoefficients;
  canonical_.clear();
  for (char c : std::string("XCKP")) put_u8(canonical_, static_cast<uint8_t>(c));
  put_u16(canonical_, coefficients ? 3 : aux_prime_ ? 2 : 1);
  put_u8(canonical_, static_cast<uint8_t>(lit.log_n));
  put_u8(canonical_, static_cast<uint8_t>(L));
  for (u64 q : primes_) put_u64(canonical_, q);
  put_u16(canonical_, static_cast<uint16_t>(lit.scale_bits));
  uint64_t mv;
  std::memcpy(&mv, &lit.max_value, 8);
  put_u64(canonical_, mv);
  put_u16(canonical_, static_cast<uint16_t>(lit.security_bits));
  put_u8(canonical_, static_cast<uint8_t>(lit.secret));
  put_u8(canonical_, static_cast<uint8_t>(lit.error));
  put_u8(canonical_, insecure ? 1 : 0);
  if (coefficients) {
    put_u8(canonical_, static_cast<uint8_t>(lit.encoding));
    put_u64(canonical_, aux_prime_);
    put_u16(canonical_, static_cast<uint16_t>(lit.public_scale_bits ? lit.public_scale_bits : lit.scale_bits));
  } else if (aux_prime_) {
    put_u64(canonical_, aux_prime_);
    put_u16(canonical_, static_cast<uint16_t>(lit.public_scale_bits ? lit.public_scale_bits : lit.scale_bits));
  }
  fingerprint_ = sha256(canonical_.data(), canonical_.size());
}

ParamsPtr CkksParams::create(const CkksParametersLiteral& lit) {
  validate_structure(lit, false);
  return ParamsPtr(new CkksParams(lit, false));
}

ParamsPtr CkksParams::create_insecure(const CkksParametersLiteral& lit) {
  validate_structure(lit, true);
  return ParamsPtr(new CkksParams(lit, true));
}

std::string CkksParams::describe() const {
  std::ostringstream os;
  os << "CKKS N=" << n_ << " primes=[";
  for (size_t j = 0; j < primes_.size(); ++j) os << (j ? ", " : "") << primes_[j];
  os << "]";
  if (aux_prime_) {
    os << " aux_prime=" << aux_prime_ << " (log2QP=" << log2_qp_ << ", public-key scale=2^" << public_scale_bits()
       << ")";
  }
  os << " log2Q=" << log2_q_ << " scale=2^" << lit_.scale_bits << " max_value=" << lit_.max_value;
  if (lit_.encoding == Encoding::kCoefficients) os << " encoding=coefficients";
  if (insecure_) {
    os << " INSECURE";
  } else {
    os << " security=" << lit_.security_bits;
  }
  return os.str();
}

}  // namespace xcloud
