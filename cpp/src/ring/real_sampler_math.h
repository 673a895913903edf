#pragma once
// The arithmetic of ring/real_sampler.h's Gaussian values, shared by the
// scalar reference (real_sampler.cpp) and, as constants, by the AVX2 path
// (real_sampler_avx2.cpp), which repeats the same operations in the same
// order on four lanes. Both files are compiled with -ffp-contract=off, so
// every product and sum rounds as written.
#include <cstdint>
#include <cstring>

namespace xcloud {
namespace detail {
namespace real_math {

inline uint64_t as_bits(double x) {
  uint64_t b;
  std::memcpy(&b, &x, 8);
  return b;
}

inline double double_of(uint64_t b) {
  double x;
  std::memcpy(&x, &b, 8);
  return x;
}

constexpr uint64_t kOneBits = 0x3ff0000000000000ull;       // 1.0
constexpr uint64_t kMantissa = 0x000fffffffffffffull;
constexpr uint64_t kSqrt2Bits = 0x3ff6a09e667f3bcdull;     // sqrt(2), rounded
constexpr uint64_t kExponentOne = 0x0010000000000000ull;   // 1 in the exponent field
constexpr uint64_t kTwo52Bits = 0x4330000000000000ull;     // 2^52
constexpr double kTwo52 = 4503599627370496.0;
constexpr double kBias = 1023.0;
constexpr double kLn2Hi = 6.93147180369123816490e-01;  // ln 2, high part (trailing zero bits)
constexpr double kLn2Lo = 1.90821492927058770002e-10;  // ln 2 - kLn2Hi
// log(m) = 2 s (1 + z/3 + z^2/5 + ... + z^11/23), s = (m - 1)/(m + 1), z = s^2:
// for m in [sqrt(2)/2, sqrt(2)], z <= 0.0295 and the next term is below 2^-60.
constexpr int kLogTerms = 12;
constexpr double kLogCoeff[kLogTerms] = {1.0,       1.0 / 3,  1.0 / 5,  1.0 / 7,  1.0 / 9,  1.0 / 11,
                                         1.0 / 13,  1.0 / 15, 1.0 / 17, 1.0 / 19, 1.0 / 21, 1.0 / 23};
constexpr double kRoundMagic = 6755399441055744.0;  // 1.5 * 2^52: x + it - it rounds x to an integer
constexpr double kHalfPi = 1.5707963267948966;
// sin x = x + x^3 (S1 + x^2 (S2 + ... )), S_k = (-1)^k / (2k + 1)!, k = 1..8;
// cos x = 1 + x^2 (C1 + x^2 (C2 + ...)), C_k = (-1)^k / (2k)!, k = 1..9;
// for |x| <= pi/4 the first terms left out are below 2^-60.
constexpr int kSinTerms = 8;
constexpr double kSinCoeff[kSinTerms] = {-1.0 / 6,
                                         1.0 / 120,
                                         -1.0 / 5040,
                                         1.0 / 362880,
                                         -1.0 / 39916800,
                                         1.0 / 6227020800,
                                         -1.0 / 1307674368000,
                                         1.0 / 355687428096000};
constexpr int kCosTerms = 9;
constexpr double kCosCoeff[kCosTerms] = {-1.0 / 2,
                                         1.0 / 24,
                                         -1.0 / 720,
                                         1.0 / 40320,
                                         -1.0 / 3628800,
                                         1.0 / 479001600,
                                         -1.0 / 87178291200,
                                         1.0 / 20922789888000,
                                         -1.0 / 6402373705728000};

// v(w) = (w >> 12) * 2^-52 in [0, 1), exactly: 1.f - 1 with the top 52 bits as f.
inline double unit_of(uint64_t w) { return double_of((w >> 12) | kOneBits) - 1.0; }

// log(u), u in [2^-52, 1] (a positive normal double).
inline double log_unit(double u) {
  const uint64_t b = as_bits(u);
  uint64_t mb = (b & kMantissa) | kOneBits;  // m in [1, 2)
  double e = (double_of(kTwo52Bits | (b >> 52)) - kTwo52) - kBias;
  const uint64_t big = 0 - static_cast<uint64_t>(mb > kSqrt2Bits);  // m > sqrt 2: use m / 2, e + 1
  mb -= big & kExponentOne;
  e = e + double_of(big & kOneBits);
  const double m = double_of(mb);
  const double s = (m - 1.0) / (m + 1.0);
  const double z = s * s;
  double p = kLogCoeff[kLogTerms - 1];
  for (int k = kLogTerms - 2; k >= 0; --k) p = p * z + kLogCoeff[k];
  return e * kLn2Hi + (e * kLn2Lo + (2.0 * s) * p);
}

// cos and sin of 2 pi v, v in [0, 1).
inline void cos_sin_turn(double v, double* c_out, double* s_out) {
  const double t = 4.0 * v;                 // quarter turns, exact
  const double r = t + kRoundMagic;         // round(t) in the low mantissa bits
  const double f = t - (r - kRoundMagic);   // in [-1/2, 1/2], exact
  const uint64_t q = as_bits(r) & 3;        // round(t) mod 4
  const double x = f * kHalfPi;             // in [-pi/4, pi/4]
  const double x2 = x * x;
  double ps = kSinCoeff[kSinTerms - 1];
  for (int k = kSinTerms - 2; k >= 0; --k) ps = ps * x2 + kSinCoeff[k];
  double pc = kCosCoeff[kCosTerms - 1];
  for (int k = kCosTerms - 2; k >= 0; --k) pc = pc * x2 + kCosCoeff[k];
  const double sx = x + (x * x2) * ps;
  const double cx = 1.0 + x2 * pc;
  // 2 pi v = q pi/2 + x: (cos, sin) = (cx, sx), (-sx, cx), (-cx, -sx), (sx, -cx)
  // for q = 0, 1, 2, 3: swap for odd q, then flip signs by bit masks.
  const uint64_t swap = 0 - (q & 1);
  const uint64_t cb = (as_bits(cx) & ~swap) | (as_bits(sx) & swap);
  const uint64_t sb = (as_bits(sx) & ~swap) | (as_bits(cx) & swap);
  const uint64_t cos_sign = ((q ^ (q >> 1)) & 1) << 63;  // q = 1, 2
  const uint64_t sin_sign = (q >> 1) << 63;              // q = 2, 3
  *c_out = double_of(cb ^ cos_sign);
  *s_out = double_of(sb ^ sin_sign);
}

// Two Gaussian values from eight words (four Box-Muller pairs, words 2i and
// 2i + 1 for pair i): the sums of the pairs' cosine and of their sine halves,
// over 2. The two halves of one pair are independent, so each value is the
// sum of four independent standard normals over 2.
inline void gaussian_pair_of(const uint64_t w[8], double std, double* even, double* odd) {
  double r[4], c[4], s[4];
  for (int i = 0; i < 4; ++i) {
    r[i] = __builtin_sqrt(-2.0 * log_unit(2.0 - double_of((w[2 * i] >> 12) | kOneBits)));
    cos_sin_turn(unit_of(w[2 * i + 1]), &c[i], &s[i]);
  }
  *even = std * (((r[0] * c[0] + r[1] * c[1]) + (r[2] * c[2] + r[3] * c[3])) * 0.5);
  *odd = std * (((r[0] * s[0] + r[1] * s[1]) + (r[2] * s[2] + r[3] * s[3])) * 0.5);
}

}  // namespace real_math
}  // namespace detail
}  // namespace xcloud
