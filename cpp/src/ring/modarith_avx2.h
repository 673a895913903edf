#pragma once
// Modular arithmetic on 4 residues at a time with AVX2 + FMA double-precision
// arithmetic, for primes q < 2^50. Include only from translation units
// compiled with -mavx2 -mfma -ffp-contract=off (the *_avx2.cpp files): every
// function here has internal linkage, so none can leak into portable code.
//
// Representation: a residue is held as a double with an exact integer value.
// Integers of magnitude below 2^53 are exact in a double, so with q < 2^50
// there are three spare bits for lazy (signed, unreduced) values.
//
// The product a*w is split exactly as h + l (h = fl(a*w), l = fma(a, w, -h),
// integers since a*w is one); a quotient estimate k = round(a * (w/q)) is
// taken with a precomputed double w/q; then a*w - k*q = fma(-k, q, h) + l is
// computed exactly (both terms are integers of magnitude below 2^53). If
// |a| <= A < 2^51 then |k - a*w/q| <= 1/2 + A * 2^-53, so the result lies in
// [-(1/2 + A * 2^-53) q, (1/2 + A * 2^-53) q]: a "balanced" residue.
// The rounding to an integer adds 1.5 * 2^52 and subtracts it again, which is
// exact only for |a * w/q| < 2^51: hence every bound A below is < 2^51.
// -ffp-contract=off keeps the compiler from fusing the separate multiplies
// and adds of this analysis into FMAs with different rounding.
#ifndef __AVX2__
#error "modarith_avx2.h needs -mavx2 -mfma"
#endif
#include <immintrin.h>

#include <cstdint>

namespace xcloud {
namespace {

// 1.5 * 2^52: adding it to a double x with |x| < 2^51 rounds x to the
// nearest integer (the sum lies in (2^52, 2^53), where the spacing is 1);
// subtracting it again gives that integer exactly.
constexpr double kRoundMagic = 6755399441055744.0;
// 2^52, for u64 <-> double conversion of values in [0, 2^52).
constexpr double kTwo52 = 4503599627370496.0;

struct ModConsts {
  __m256d q, neg_q, qinv, magic, zero;
  explicit ModConsts(uint64_t q64)
      : q(_mm256_set1_pd(static_cast<double>(q64))),
        neg_q(_mm256_set1_pd(-static_cast<double>(q64))),
        qinv(_mm256_set1_pd(1.0 / static_cast<double>(q64))),
        magic(_mm256_set1_pd(kRoundMagic)),
        zero(_mm256_setzero_pd()) {}
};

// u64 lanes in [0, 2^52) to exact doubles: OR the value into the mantissa of
// 2^52, then subtract 2^52.
inline __m256d u64_to_pd(__m256i v) {
  const __m256d two52 = _mm256_set1_pd(kTwo52);
  return _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(v, _mm256_castpd_si256(two52))), two52);
}

// Exact integer doubles in [0, 2^52) (also -0.0) to u64: add 2^52, XOR its
// bit pattern away.
inline __m256i pd_to_u64(__m256d v) {
  const __m256d two52 = _mm256_set1_pd(kTwo52);
  return _mm256_xor_si256(_mm256_castpd_si256(_mm256_add_pd(v, two52)), _mm256_castpd_si256(two52));
}

// int64 lanes with |v| < 2^51 to exact doubles (magic-number conversion).
inline __m256d i64_to_pd(__m256i v) {
  const __m256d magic = _mm256_set1_pd(kRoundMagic);
  return _mm256_sub_pd(_mm256_castsi256_pd(_mm256_add_epi64(v, _mm256_castpd_si256(magic))), magic);
}

// All ones in the lanes where |v| < 2^51 (v int64), i.e. i64_to_pd is exact.
inline bool all_below_2p51(__m256i v) {
  const __m256i biased = _mm256_add_epi64(v, _mm256_set1_epi64x(int64_t{1} << 51));  // in [0, 2^52) iff ok
  return _mm256_testz_si256(biased, _mm256_set1_epi64x(~((int64_t{1} << 52) - 1))) != 0;
}

// x - q * round(x / q): input an exact integer with |x| < 2^51; output exact,
// in [-(q/2 + |x| 2^-53), q/2 + |x| 2^-53], so |out| <= q/2 + 1/4.
inline __m256d reduce_balanced(__m256d x, const ModConsts& c) {
  const __m256d k = _mm256_sub_pd(_mm256_fmadd_pd(x, c.qinv, c.magic), c.magic);
  return _mm256_fnmadd_pd(k, c.q, x);
}

// a * w mod q, balanced. w in [0, q), wq = w/q (nearest double); a an exact
// integer with |a| <= A < 2^51. Output exact, |out| <= (1/2 + A 2^-53) q.
inline __m256d mul_balanced(__m256d a, __m256d w, __m256d wq, const ModConsts& c) {
  const __m256d h = _mm256_mul_pd(a, w);
  const __m256d l = _mm256_fmsub_pd(a, w, h);  // a*w - h, exact
  const __m256d k = _mm256_sub_pd(_mm256_fmadd_pd(a, wq, c.magic), c.magic);
  return _mm256_add_pd(_mm256_fnmadd_pd(k, c.q, h), l);
}

// a * b mod q with both operands variable, balanced: a, b in [0, q) (or
// |a|, |b| <= q). Quotient estimate from h * (1/q): |k - ab/q| <= 1/2 +
// q 2^-52 <= 3/4, so |out| < 3q/4.
inline __m256d mul_balanced_var(__m256d a, __m256d b, const ModConsts& c) {
  const __m256d h = _mm256_mul_pd(a, b);
  const __m256d l = _mm256_fmsub_pd(a, b, h);
  const __m256d k = _mm256_sub_pd(_mm256_fmadd_pd(h, c.qinv, c.magic), c.magic);
  return _mm256_add_pd(_mm256_fnmadd_pd(k, c.q, h), l);
}

// Input in (-q, q), output in [0, q): adds q to the negative lanes (-0.0
// compares equal to 0 and is left alone; pd_to_u64 maps it to 0).
inline __m256d canon_from_signed(__m256d x, const ModConsts& c) {
  const __m256d neg = _mm256_cmp_pd(x, c.zero, _CMP_LT_OQ);
  return _mm256_add_pd(x, _mm256_and_pd(neg, c.q));
}

// Input in [0, 2q), output in [0, q).
inline __m256d canon_from_2q(__m256d x, const ModConsts& c) {
  const __m256d big = _mm256_cmp_pd(x, c.q, _CMP_GE_OQ);
  return _mm256_sub_pd(x, _mm256_and_pd(big, c.q));
}

// Any |x| < 2^51 to [0, q): reduce_balanced then canon_from_signed.
inline __m256d canon_full(__m256d x, const ModConsts& c) { return canon_from_signed(reduce_balanced(x, c), c); }

inline __m256i load_u64(const uint64_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
inline void store_u64(uint64_t* p, __m256i v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }

// (v mod q) in [0, q) for any int64 v, one lane at a time: the rare
// fallbacks of the vector paths in poly_ops_avx2.cpp and ntt_avx2.cpp.
inline uint64_t signed_mod_slow(int64_t v, uint64_t q) {
  const int64_t r = v % static_cast<int64_t>(q);
  return static_cast<uint64_t>(r < 0 ? r + static_cast<int64_t>(q) : r);
}

// x[0..3] widened to double (float32 exactly).
inline __m256d load4_pd(const double* x) { return _mm256_loadu_pd(x); }
inline __m256d load4_pd(const float* x) { return _mm256_cvtps_pd(_mm_loadu_ps(x)); }

}  // namespace
}  // namespace xcloud
