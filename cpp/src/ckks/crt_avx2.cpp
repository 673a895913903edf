// AVX2 + FMA CRT reconstruction for two primes (the default parameters),
// four coefficients at a time (see modarith_avx2.h for the arithmetic).
//
// Exactness of the final rounding: with t' = t or t - q1 (|t'| < q1 < 2^50),
// the centred value is v + t' q0. The product t' q0 (< 2^100) is split
// exactly as h + l (h = fl(t' q0), l = fma(t', q0, -h), |l| <= 2^47); s = l + v
// is an exact integer (|s| < 2^51), so fl(h + s) is the correctly rounded
// (nearest, ties to even) double of the exact integer v + t' q0: the same
// double as the int128 -> double conversion of the scalar reference.
#include "ckks/crt_avx2.h"

#include "ring/modarith_avx2.h"

namespace xcloud {
namespace detail {

void crt2_centered_doubles_avx2(const uint64_t* r0, const uint64_t* r1, size_t n, uint64_t q0, uint64_t q1,
                                uint64_t inv, uint64_t t_half, uint64_t v_half, double scale, double* out) {
  const ModConsts c1(q1);
  const __m256d q0d = _mm256_set1_pd(static_cast<double>(q0));
  const __m256d invd = _mm256_set1_pd(static_cast<double>(inv));
  const __m256d invq = _mm256_set1_pd(static_cast<double>(inv) / static_cast<double>(q1));
  const __m256d th = _mm256_set1_pd(static_cast<double>(t_half));
  const __m256d vh = _mm256_set1_pd(static_cast<double>(v_half));
  const __m256d sc = _mm256_set1_pd(scale);
  for (size_t i = 0; i < n; i += 4) {
    const __m256d v = u64_to_pd(load_u64(r0 + i));
    const __m256d d = _mm256_sub_pd(u64_to_pd(load_u64(r1 + i)), v);  // (-q0, q1), |.| < 2^50
    // t = d * inv mod q1: balanced within (1/2 + 2^50 2^-53) q1, then [0, q1).
    const __m256d t = canon_from_signed(mul_balanced(d, invd, invq, c1), c1);
    // x > half  <=>  t > t_half, or t == t_half and v > v_half.
    const __m256d above = _mm256_or_pd(_mm256_cmp_pd(t, th, _CMP_GT_OQ),
                                       _mm256_and_pd(_mm256_cmp_pd(t, th, _CMP_EQ_OQ), _mm256_cmp_pd(v, vh, _CMP_GT_OQ)));
    const __m256d tc = _mm256_sub_pd(t, _mm256_and_pd(above, c1.q));  // t' in (-q1, q1)
    const __m256d h = _mm256_mul_pd(tc, q0d);
    const __m256d l = _mm256_fmsub_pd(tc, q0d, h);
    const __m256d x = _mm256_add_pd(h, _mm256_add_pd(l, v));
    _mm256_storeu_pd(out + i, _mm256_mul_pd(x, sc));
  }
}

void crt1_centered_doubles_avx2(const uint64_t* r0, size_t n, uint64_t q, uint64_t q_half, double scale,
                                double* out) {
  const __m256d qd = _mm256_set1_pd(static_cast<double>(q));
  const __m256d hd = _mm256_set1_pd(static_cast<double>(q_half));
  const __m256d sc = _mm256_set1_pd(scale);
  for (size_t i = 0; i < n; i += 4) {
    const __m256d v = u64_to_pd(load_u64(r0 + i));  // exact: v < 2^50
    const __m256d above = _mm256_cmp_pd(v, hd, _CMP_GT_OQ);
    const __m256d x = _mm256_sub_pd(v, _mm256_and_pd(above, qd));  // exact: |x| < 2^50
    _mm256_storeu_pd(out + i, _mm256_mul_pd(x, sc));
  }
}

namespace {
// centred((a + b) mod q) * scale for the four lanes at a + i, b + i.
inline __m256d sum_centered4(const uint64_t* a, const uint64_t* b, __m256d qd, __m256d hd, __m256d sc) {
  // exact: a, b < 2^50, so v = a + b < 2^51 and every step below is an integer below 2^52
  const __m256d v = _mm256_add_pd(u64_to_pd(load_u64(a)), u64_to_pd(load_u64(b)));
  const __m256d r = _mm256_sub_pd(v, _mm256_and_pd(_mm256_cmp_pd(v, qd, _CMP_GE_OQ), qd));  // (a + b) mod q
  const __m256d x = _mm256_sub_pd(r, _mm256_and_pd(_mm256_cmp_pd(r, hd, _CMP_GT_OQ), qd));
  return _mm256_mul_pd(x, sc);
}
}  // namespace

void crt1_sum_centered_doubles_avx2(const uint64_t* a, const uint64_t* b, size_t n, uint64_t q, uint64_t q_half,
                                    double scale, double* out) {
  const __m256d qd = _mm256_set1_pd(static_cast<double>(q));
  const __m256d hd = _mm256_set1_pd(static_cast<double>(q_half));
  const __m256d sc = _mm256_set1_pd(scale);
  for (size_t i = 0; i < n; i += 4) _mm256_storeu_pd(out + i, sum_centered4(a + i, b + i, qd, hd, sc));
}

void crt1_sum_centered_floats_avx2(const uint64_t* a, const uint64_t* b, size_t n, uint64_t q, uint64_t q_half,
                                   double scale, float* out) {
  const __m256d qd = _mm256_set1_pd(static_cast<double>(q));
  const __m256d hd = _mm256_set1_pd(static_cast<double>(q_half));
  const __m256d sc = _mm256_set1_pd(scale);
  // vcvtpd2ps rounds to nearest even (the default MXCSR mode), as static_cast<float> does.
  for (size_t i = 0; i < n; i += 4) _mm_storeu_ps(out + i, _mm256_cvtpd_ps(sum_centered4(a + i, b + i, qd, hd, sc)));
}

}  // namespace detail
}  // namespace xcloud
