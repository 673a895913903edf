#pragma once
// Word-size modular arithmetic for NTT-friendly primes below 2^50.
//
// Conventions: a "residue mod q" is a uint64_t in [0, q). Every function
// states the range it accepts and the range it returns.
// Thread safety: all functions are pure.
#include <cstdint>
#include <vector>

namespace xcloud {

using u64 = uint64_t;
using u128 = unsigned __int128;
using i128 = __int128;

// Largest prime bit size the kernel accepts (the SIMD NTT of the performance
// work needs q < 2^50; the scalar path would allow more).
constexpr int kMaxPrimeBits = 50;
constexpr int kMinPrimeBits = 20;

// (a * b) mod q for a, b in [0, q), q < 2^63. Output in [0, q). Slow (128-bit
// division): use it for precomputation only.
inline u64 mul_mod_slow(u64 a, u64 b, u64 q) { return static_cast<u64>((u128)a * b % q); }

// a^e mod q; a in [0, q). Output in [0, q).
u64 pow_mod(u64 a, u64 e, u64 q);

// Inverse of a modulo prime q; a in [1, q). Output in [1, q).
u64 inv_mod(u64 a, u64 q);

// Deterministic Miller-Rabin for n < 2^64 (the first twelve primes as bases).
bool is_prime(u64 n);

// Shoup precomputation for a fixed multiplicand w in [0, q): floor(w * 2^64 / q).
inline u64 shoup_precompute(u64 w, u64 q) { return static_cast<u64>(((u128)w << 64) / q); }

// x * w mod q using w' = shoup_precompute(w, q).
// Input: x in [0, 2^64) (any word), w in [0, q), q < 2^63. Output in [0, 2q).
inline u64 mul_shoup_lazy(u64 x, u64 w, u64 w_shoup, u64 q) {
  u64 qhat = static_cast<u64>(((u128)x * w_shoup) >> 64);
  return x * w - qhat * q;  // exact in [0, 2q) modulo 2^64
}

// Branch-free conditional subtraction. Input in [0, 2q), output in [0, q).
inline u64 reduce_once(u64 x, u64 q) {
  u64 y = x - q;
  u64 mask = static_cast<u64>(-(static_cast<int64_t>(y) >> 63 & 1));  // all ones if x < q
  return y + (q & mask);
}

inline u64 mul_shoup(u64 x, u64 w, u64 w_shoup, u64 q) {
  return reduce_once(mul_shoup_lazy(x, w, w_shoup, q), q);
}

// a + b mod q and a - b mod q for a, b in [0, q). Output in [0, q).
inline u64 add_mod(u64 a, u64 b, u64 q) { return reduce_once(a + b, q); }
inline u64 sub_mod(u64 a, u64 b, u64 q) { return reduce_once(a + q - b, q); }

// A signed integer v with |v| < 2^63 as a residue mod q. Branch-free.
inline u64 signed_to_residue(int64_t v, u64 q) {
  int64_t r = v % static_cast<int64_t>(q);  // in (-q, q)
  return static_cast<u64>(r) + (q & static_cast<u64>(r >> 63));
}

// floor(2^64 / q) for odd q > 1 (used by reduce_signed).
inline u64 barrett_ratio(u64 q) { return ~u64{0} / q; }

// A signed integer v with |v| < q as a residue mod q: no division, no branch
// (for secret coefficients and noise, where signed_to_residue's % would run
// a division on secret data).
inline u64 small_signed_to_residue(int64_t v, u64 q) {
  return static_cast<u64>(v) + (q & static_cast<u64>(v >> 63));
}

// shoup_precompute(w, q) for secret w in [0, q), q odd and below 2^63, with
// no division on w (the u128 division's time may depend on its operands):
// w 2^64 = q (w T) + w t with T = floor(2^64 / q), t = 2^64 mod q, and
// floor(w t / q) is the Shoup quotient of w by t, plus a branch-free
// correction of 0 or 1. The constants depend on q only (public).
class SecretShoup {
 public:
  explicit SecretShoup(u64 q)
      : q_(q), ratio_(barrett_ratio(q)), rem_(u64{0} - ratio_ * q), rem_shoup_(shoup_precompute(rem_, q)) {}
  u64 operator()(u64 w) const {
    const u64 qhat = static_cast<u64>(((u128)w * rem_shoup_) >> 64);
    const u64 r = w * rem_ - qhat * q_;          // w t mod q, in [0, 2q)
    const u64 carry = 1 - ((r - q_) >> 63);       // 1 iff r >= q
    return w * ratio_ + qhat + carry;
  }

 private:
  u64 q_, ratio_, rem_, rem_shoup_;
};

// A signed integer v (|v| < 2^63) as a residue mod q, without division.
// ratio = barrett_ratio(q). Output in [0, q). Branch-free.
inline u64 reduce_signed(int64_t v, u64 q, u64 ratio) {
  const u64 sign = static_cast<u64>(v >> 63);            // all ones if v < 0
  const u64 mag = (static_cast<u64>(v) ^ sign) - sign;   // |v|
  const u64 qhat = static_cast<u64>(((u128)mag * ratio) >> 64);
  const u64 r = reduce_once(mag - qhat * q, q);          // |v| mod q, from [0, 2q)
  return reduce_once((sign & (q - r)) | (~sign & r), q);  // q - 0 = q maps to 0
}

// Barrett-style reduction constant for reducing 128-bit accumulators:
// precomputed floor(2^128 / q) is not needed; we reduce u128 by % which the
// compiler lowers to a call. Accumulators are reduced this way only once per
// coefficient per aggregate.
inline u64 reduce_u128(u128 x, u64 q) { return static_cast<u64>(x % q); }

// The `count` largest primes q < 2^bits with q = 1 (mod 2n), in decreasing
// order, skipping any listed in `exclude`.
// @throws std::invalid_argument if fewer than `count` such primes exist above 2^(bits-1).
std::vector<u64> generate_ntt_primes(int bits, u64 two_n, int count, const std::vector<u64>& exclude);

// A primitive 2n-th root of unity mod q (q = 1 mod 2n): the smallest one,
// found as g^((q-1)/2n) for g = 2, 3, ... with the check psi^n = q - 1.
u64 primitive_root_2n(u64 q, u64 two_n);

}  // namespace xcloud
