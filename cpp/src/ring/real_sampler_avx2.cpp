// The Gaussian transform of ring/real_sampler.h on four lanes: the
// operations of real_sampler_math.h in the same order, so the same bits.
// Compiled with -mavx2 -ffp-contract=off (no FMA: each product rounds).
#include <immintrin.h>

#include "ring/real_sampler_avx2.h"
#include "ring/real_sampler_math.h"

namespace xcloud {
namespace detail {

namespace {

using namespace real_math;

inline __m256d pd(__m256i x) { return _mm256_castsi256_pd(x); }
inline __m256i si(__m256d x) { return _mm256_castpd_si256(x); }
inline __m256i c64(uint64_t v) { return _mm256_set1_epi64x(static_cast<long long>(v)); }

// 1 - v(w) for four words: in (0, 1].
inline __m256d one_minus_unit4(__m256i w) {
  return _mm256_sub_pd(_mm256_set1_pd(2.0), pd(_mm256_or_si256(_mm256_srli_epi64(w, 12), c64(kOneBits))));
}

inline __m256d unit4(__m256i w) {
  return _mm256_sub_pd(pd(_mm256_or_si256(_mm256_srli_epi64(w, 12), c64(kOneBits))), _mm256_set1_pd(1.0));
}

inline __m256d log_unit4(__m256d u) {
  const __m256i b = si(u);
  __m256i mb = _mm256_or_si256(_mm256_and_si256(b, c64(kMantissa)), c64(kOneBits));
  __m256d e = _mm256_sub_pd(_mm256_sub_pd(pd(_mm256_or_si256(c64(kTwo52Bits), _mm256_srli_epi64(b, 52))),
                                          _mm256_set1_pd(kTwo52)),
                            _mm256_set1_pd(kBias));
  // Both operands are below 2^63, so the signed compare is the unsigned one.
  const __m256i big = _mm256_cmpgt_epi64(mb, c64(kSqrt2Bits));
  mb = _mm256_sub_epi64(mb, _mm256_and_si256(big, c64(kExponentOne)));
  e = _mm256_add_pd(e, pd(_mm256_and_si256(big, c64(kOneBits))));
  const __m256d m = pd(mb);
  const __m256d one = _mm256_set1_pd(1.0);
  const __m256d s = _mm256_div_pd(_mm256_sub_pd(m, one), _mm256_add_pd(m, one));
  const __m256d z = _mm256_mul_pd(s, s);
  __m256d p = _mm256_set1_pd(kLogCoeff[kLogTerms - 1]);
  for (int k = kLogTerms - 2; k >= 0; --k) p = _mm256_add_pd(_mm256_mul_pd(p, z), _mm256_set1_pd(kLogCoeff[k]));
  const __m256d lm = _mm256_mul_pd(_mm256_mul_pd(_mm256_set1_pd(2.0), s), p);
  return _mm256_add_pd(_mm256_mul_pd(e, _mm256_set1_pd(kLn2Hi)),
                       _mm256_add_pd(_mm256_mul_pd(e, _mm256_set1_pd(kLn2Lo)), lm));
}

inline void cos_sin_turn4(__m256d v, __m256d* c_out, __m256d* s_out) {
  const __m256d magic = _mm256_set1_pd(kRoundMagic);
  const __m256d t = _mm256_mul_pd(_mm256_set1_pd(4.0), v);
  const __m256d r = _mm256_add_pd(t, magic);
  const __m256d f = _mm256_sub_pd(t, _mm256_sub_pd(r, magic));
  const __m256i q = _mm256_and_si256(si(r), c64(3));
  const __m256d x = _mm256_mul_pd(f, _mm256_set1_pd(kHalfPi));
  const __m256d x2 = _mm256_mul_pd(x, x);
  __m256d ps = _mm256_set1_pd(kSinCoeff[kSinTerms - 1]);
  for (int k = kSinTerms - 2; k >= 0; --k) ps = _mm256_add_pd(_mm256_mul_pd(ps, x2), _mm256_set1_pd(kSinCoeff[k]));
  __m256d pc = _mm256_set1_pd(kCosCoeff[kCosTerms - 1]);
  for (int k = kCosTerms - 2; k >= 0; --k) pc = _mm256_add_pd(_mm256_mul_pd(pc, x2), _mm256_set1_pd(kCosCoeff[k]));
  const __m256d sx = _mm256_add_pd(x, _mm256_mul_pd(_mm256_mul_pd(x, x2), ps));
  const __m256d cx = _mm256_add_pd(_mm256_set1_pd(1.0), _mm256_mul_pd(x2, pc));
  const __m256i swap = _mm256_sub_epi64(_mm256_setzero_si256(), _mm256_and_si256(q, c64(1)));
  const __m256i cb = _mm256_or_si256(_mm256_andnot_si256(swap, si(cx)), _mm256_and_si256(swap, si(sx)));
  const __m256i sb = _mm256_or_si256(_mm256_andnot_si256(swap, si(sx)), _mm256_and_si256(swap, si(cx)));
  const __m256i cos_sign = _mm256_slli_epi64(_mm256_and_si256(_mm256_xor_si256(q, _mm256_srli_epi64(q, 1)), c64(1)), 63);
  const __m256i sin_sign = _mm256_slli_epi64(_mm256_srli_epi64(q, 1), 63);
  *c_out = pd(_mm256_xor_si256(cb, cos_sign));
  *s_out = pd(_mm256_xor_si256(sb, sin_sign));
}

// Words 0-3 of the four lanes' groups at `p` (lane k's group starts at p + 64 k):
// a 4 x 4 transpose of 64-bit words.
inline void transpose4(const uint8_t* p, __m256i* w0, __m256i* w1, __m256i* w2, __m256i* w3) {
  const __m256i r0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  const __m256i r1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 64));
  const __m256i r2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 128));
  const __m256i r3 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 192));
  const __m256i t0 = _mm256_unpacklo_epi64(r0, r1), t1 = _mm256_unpackhi_epi64(r0, r1);
  const __m256i t2 = _mm256_unpacklo_epi64(r2, r3), t3 = _mm256_unpackhi_epi64(r2, r3);
  *w0 = _mm256_permute2x128_si256(t0, t2, 0x20);
  *w1 = _mm256_permute2x128_si256(t1, t3, 0x20);
  *w2 = _mm256_permute2x128_si256(t0, t2, 0x31);
  *w3 = _mm256_permute2x128_si256(t1, t3, 0x31);
}

}  // namespace

void gaussian_from_words_avx2(const uint8_t* words, double std, double* out, size_t n) {
  const __m256d sd = _mm256_set1_pd(std);
  const __m256d half = _mm256_set1_pd(0.5);
  const __m256d minus_two = _mm256_set1_pd(-2.0);
  for (size_t i = 0; i + 8 <= n; i += 8) {
    // Lane k computes values i + 2k and i + 2k + 1 from the 8 words at
    // words + 32 (i + 2k): pairs (u, v) = words (0, 1), (2, 3), (4, 5), (6, 7).
    const uint8_t* p = words + 32 * i;
    __m256i w[8];
    transpose4(p, &w[0], &w[1], &w[2], &w[3]);
    transpose4(p + 32, &w[4], &w[5], &w[6], &w[7]);
    __m256d r[4], c[4], s[4];
    for (int k = 0; k < 4; ++k) {
      r[k] = _mm256_sqrt_pd(_mm256_mul_pd(minus_two, log_unit4(one_minus_unit4(w[2 * k]))));
      cos_sin_turn4(unit4(w[2 * k + 1]), &c[k], &s[k]);
    }
    const __m256d even = _mm256_mul_pd(
        sd, _mm256_mul_pd(_mm256_add_pd(_mm256_add_pd(_mm256_mul_pd(r[0], c[0]), _mm256_mul_pd(r[1], c[1])),
                                        _mm256_add_pd(_mm256_mul_pd(r[2], c[2]), _mm256_mul_pd(r[3], c[3]))),
                          half));
    const __m256d odd = _mm256_mul_pd(
        sd, _mm256_mul_pd(_mm256_add_pd(_mm256_add_pd(_mm256_mul_pd(r[0], s[0]), _mm256_mul_pd(r[1], s[1])),
                                        _mm256_add_pd(_mm256_mul_pd(r[2], s[2]), _mm256_mul_pd(r[3], s[3]))),
                          half));
    // Interleave: (e0 o0 e1 o1) and (e2 o2 e3 o3).
    const __m256d lo = _mm256_unpacklo_pd(even, odd), hi = _mm256_unpackhi_pd(even, odd);
    _mm256_storeu_pd(out + i, _mm256_permute2f128_pd(lo, hi, 0x20));
    _mm256_storeu_pd(out + i + 4, _mm256_permute2f128_pd(lo, hi, 0x31));
  }
  _mm256_zeroall();  // the registers held the keystream and the noise
}

}  // namespace detail
}  // namespace xcloud
