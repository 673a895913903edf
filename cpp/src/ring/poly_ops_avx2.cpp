// AVX2 + FMA bodies of poly_ops.h (see modarith_avx2.h for the arithmetic).
// Ranges: residue inputs in [0, q), q < 2^50; every output in [0, q).
#include "ring/poly_ops_avx2.h"

#include "ring/modarith_avx2.h"

namespace xcloud {
namespace detail {

// a*b from [0, q)^2: balanced |.| < 3q/4, then [0, q).
void poly_mul_avx2(uint64_t* out, const uint64_t* a, const uint64_t* b, size_t n, uint64_t q) {
  const ModConsts c(q);
  for (size_t i = 0; i < n; i += 4) {
    const __m256d p = mul_balanced_var(u64_to_pd(load_u64(a + i)), u64_to_pd(load_u64(b + i)), c);
    store_u64(out + i, pd_to_u64(canon_from_signed(p, c)));
  }
}

// out + a*b: [0, q) + (-3q/4, 3q/4) = (-3q/4, 7q/4) -> [0, q) in two steps.
void poly_mul_add_avx2(uint64_t* out, const uint64_t* a, const uint64_t* b, size_t n, uint64_t q) {
  const ModConsts c(q);
  for (size_t i = 0; i < n; i += 4) {
    const __m256d p = mul_balanced_var(u64_to_pd(load_u64(a + i)), u64_to_pd(load_u64(b + i)), c);
    const __m256d s = _mm256_add_pd(u64_to_pd(load_u64(out + i)), p);
    store_u64(out + i, pd_to_u64(canon_from_2q(canon_from_signed(s, c), c)));
  }
}

// out + a*w: a*w balanced within (1/2 + q 2^-53) q <= 5q/8; sum in
// (-5q/8, 13q/8) -> [0, q) in two steps.
void poly_scalar_mul_add_avx2(uint64_t* out, const uint64_t* a, uint64_t w, size_t n, uint64_t q) {
  const ModConsts c(q);
  const __m256d wd = _mm256_set1_pd(static_cast<double>(w));
  const __m256d wq = _mm256_set1_pd(static_cast<double>(w) / static_cast<double>(q));
  for (size_t i = 0; i < n; i += 4) {
    const __m256d p = mul_balanced(u64_to_pd(load_u64(a + i)), wd, wq, c);
    const __m256d s = _mm256_add_pd(u64_to_pd(load_u64(out + i)), p);
    store_u64(out + i, pd_to_u64(canon_from_2q(canon_from_signed(s, c), c)));
  }
}

// sum_k in[k] * w[k], lazily: each product is balanced within
// (1/2 + q 2^-53) q <= 5q/8 (canonical inputs); `per_reduce` products are
// added before one reduction, chosen so that |acc| stays below 2^53 (exact).
// The reduction rounds acc / q with vroundpd (no magnitude limit, unlike
// the magic-constant rounding): |acc - k q| <= q/2 + |acc| 2^-52 < q/2 + q,
// exact. Final: (-q, q) -> [0, q).
void poly_weighted_sum_avx2(uint64_t* out, const uint64_t* const* in, const uint64_t* w, size_t count, size_t n,
                            uint64_t q, bool accumulate) {
  const ModConsts c(q);
  const double qd = static_cast<double>(q);
  // acc starts within q (a canonical out, or q/2 + 1 after a reduction, or 0).
  double room = (9007199254740992.0 - 2.0 * qd) / (0.625 * qd);  // 2^53
  const size_t per_reduce = room >= 64.0 ? 64 : (room < 1.0 ? 1 : static_cast<size_t>(room));
  constexpr size_t kMaxTerms = 16;
  __m256d wd[kMaxTerms], wq[kMaxTerms];
  for (size_t k0 = 0; k0 < count; k0 += kMaxTerms) {
    const size_t m = count - k0 < kMaxTerms ? count - k0 : kMaxTerms;
    for (size_t k = 0; k < m; ++k) {
      wd[k] = _mm256_set1_pd(static_cast<double>(w[k0 + k]));
      wq[k] = _mm256_set1_pd(static_cast<double>(w[k0 + k]) / qd);
    }
    const bool acc_in = accumulate || k0 > 0;
    for (size_t i = 0; i < n; i += 4) {
      __m256d acc = acc_in ? u64_to_pd(load_u64(out + i)) : c.zero;
      size_t since = 0;
      for (size_t k = 0; k < m; ++k) {
        acc = _mm256_add_pd(acc, mul_balanced(u64_to_pd(load_u64(in[k0 + k] + i)), wd[k], wq[k], c));
        if (++since == per_reduce) {
          const __m256d t = _mm256_round_pd(_mm256_mul_pd(acc, c.qinv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
          acc = _mm256_fnmadd_pd(t, c.q, acc);
          since = 0;
        }
      }
      const __m256d t = _mm256_round_pd(_mm256_mul_pd(acc, c.qinv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      store_u64(out + i, pd_to_u64(canon_from_signed(_mm256_fnmadd_pd(t, c.q, acc), c)));
    }
  }
}

// a + b in [0, 2q) -> [0, q), in 64-bit integer lanes (signed compares are
// safe: every value is below 2^51).
void poly_add_avx2(uint64_t* out, const uint64_t* a, const uint64_t* b, size_t n, uint64_t q) {
  const __m256i qv = _mm256_set1_epi64x(static_cast<int64_t>(q));
  const __m256i qm1 = _mm256_set1_epi64x(static_cast<int64_t>(q - 1));
  for (size_t i = 0; i < n; i += 4) {
    const __m256i s = _mm256_add_epi64(load_u64(a + i), load_u64(b + i));
    const __m256i ge = _mm256_cmpgt_epi64(s, qm1);
    store_u64(out + i, _mm256_sub_epi64(s, _mm256_and_si256(ge, qv)));
  }
}

// v = m + e (|v| < 2^51 on the fast path, else per-lane fallback), v mod q in
// [0, q), then + t in [0, 2q) or - t in (-q, q), then [0, q).
void poly_signed_avx2(uint64_t* out, const int64_t* m, const int32_t* e, const uint64_t* t, bool plus, size_t n,
                      uint64_t q) {
  const ModConsts c(q);
  for (size_t i = 0; i < n; i += 4) {
    const __m256i mv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(m + i));
    const __m256i ev = _mm256_cvtepi32_epi64(_mm_loadu_si128(reinterpret_cast<const __m128i*>(e + i)));
    const __m256i v = _mm256_add_epi64(mv, ev);
    __m256d r;
    if (all_below_2p51(v)) {
      r = canon_full(i64_to_pd(v), c);
    } else {
      alignas(32) uint64_t tmp[4];
      for (int k = 0; k < 4; ++k) tmp[k] = signed_mod_slow(m[i + k] + e[i + k], q);
      r = u64_to_pd(_mm256_load_si256(reinterpret_cast<const __m256i*>(tmp)));
    }
    const __m256d td = u64_to_pd(load_u64(t + i));
    const __m256d s = plus ? canon_from_2q(_mm256_add_pd(r, td), c) : canon_from_signed(_mm256_sub_pd(r, td), c);
    store_u64(out + i, pd_to_u64(s));
  }
}

void poly_from_int32_avx2(uint64_t* out, const int32_t* v, size_t n, uint64_t q) {
  const ModConsts c(q);
  for (size_t i = 0; i < n; i += 4) {
    const __m256d x = _mm256_cvtepi32_pd(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v + i)));
    store_u64(out + i, pd_to_u64(canon_full(x, c)));
  }
}

// xp + e (|.| < 2^51) balanced mod p: exactly the centred representative
// (|out| <= p/2 + 1/4, an integer, p odd); e minus it, |.| < 2^50, to [0, q)
// (canon_full); times p^-1 balanced (|.| <= 5q/8), -> [0, q); plus t
// ([0, 2q) -> [0, q)) and m (|m| < 2^50, canon_full; likewise). All values
// are exact integer doubles.
void poly_rescale_aux_avx2(uint64_t* out, const uint64_t* t, const int32_t* e, const uint64_t* xp, const int64_t* m,
                           size_t n, uint64_t q, uint64_t p, uint64_t pinv) {
  const ModConsts c(q), cp(p);
  const __m256d wd = _mm256_set1_pd(static_cast<double>(pinv));
  const __m256d wq = _mm256_set1_pd(static_cast<double>(pinv) / static_cast<double>(q));
  for (size_t i = 0; i < n; i += 4) {
    const __m256d ev = _mm256_cvtepi32_pd(_mm_loadu_si128(reinterpret_cast<const __m128i*>(e + i)));
    const __m256d centred = reduce_balanced(_mm256_add_pd(u64_to_pd(load_u64(xp + i)), ev), cp);
    const __m256d d = canon_full(_mm256_sub_pd(ev, centred), c);
    __m256d r = canon_from_signed(mul_balanced(d, wd, wq, c), c);
    if (t) r = canon_from_2q(_mm256_add_pd(r, u64_to_pd(load_u64(t + i))), c);
    if (m) {
      const __m256i mv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(m + i));
      r = canon_from_2q(_mm256_add_pd(r, canon_full(i64_to_pd(mv), c)), c);
    }
    store_u64(out + i, pd_to_u64(r));
  }
}

void poly_from_int8_avx2(uint64_t* out, const int8_t* v, size_t n, uint64_t q) {
  const ModConsts c(q);
  for (size_t i = 0; i < n; i += 4) {
    int32_t four;
    __builtin_memcpy(&four, v + i, 4);
    const __m128i x32 = _mm_cvtepi8_epi32(_mm_cvtsi32_si128(four));
    store_u64(out + i, pd_to_u64(canon_full(_mm256_cvtepi32_pd(x32), c)));
  }
}

bool all_in_range_avx2(const float* x, size_t n, double bound) {
  const __m256d b = _mm256_set1_pd(bound);
  const __m256d abs_mask = _mm256_castsi256_pd(_mm256_set1_epi64x(INT64_MAX));
  __m256d ok = _mm256_castsi256_pd(_mm256_set1_epi64x(-1));
  for (size_t i = 0; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256d lo = _mm256_and_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), abs_mask);
    const __m256d hi = _mm256_and_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), abs_mask);
    // Ordered compares: false for NaN.
    ok = _mm256_and_pd(ok, _mm256_and_pd(_mm256_cmp_pd(lo, b, _CMP_LE_OQ), _mm256_cmp_pd(hi, b, _CMP_LE_OQ)));
  }
  return _mm256_movemask_pd(ok) == 0xf;
}

bool all_in_range_avx2(const double* x, size_t n, double bound) {
  const __m256d b = _mm256_set1_pd(bound);
  const __m256d abs_mask = _mm256_castsi256_pd(_mm256_set1_epi64x(INT64_MAX));
  __m256d ok = _mm256_castsi256_pd(_mm256_set1_epi64x(-1));
  for (size_t i = 0; i + 8 <= n; i += 8) {
    const __m256d lo = _mm256_and_pd(_mm256_loadu_pd(x + i), abs_mask);
    const __m256d hi = _mm256_and_pd(_mm256_loadu_pd(x + i + 4), abs_mask);
    ok = _mm256_and_pd(ok, _mm256_and_pd(_mm256_cmp_pd(lo, b, _CMP_LE_OQ), _mm256_cmp_pd(hi, b, _CMP_LE_OQ)));
  }
  return _mm256_movemask_pd(ok) == 0xf;
}

// m * scale (one rounding, as the scalar product), rounded to an integer in
// the current rounding mode without raising inexact (as nearbyint), then to
// int64 exactly: by the magic-number conversion when |.| < 2^51, else (never
// for encoder outputs at the supported scales) lane by lane.
namespace {

template <typename T>
void round_scaled_avx2_impl(int64_t* out, const T* m, double scale, size_t n) {
  const __m256d sc = _mm256_set1_pd(scale);
  const __m256d magic = _mm256_set1_pd(kRoundMagic);
  const __m256d limit = _mm256_set1_pd(2251799813685248.0);  // 2^51
  const __m256d abs_mask = _mm256_castsi256_pd(_mm256_set1_epi64x(INT64_MAX));
  for (size_t i = 0; i < n; i += 4) {
    const __m256d r = _mm256_round_pd(_mm256_mul_pd(load4_pd(m + i), sc), _MM_FROUND_CUR_DIRECTION | _MM_FROUND_NO_EXC);
    const __m256d small = _mm256_cmp_pd(_mm256_and_pd(r, abs_mask), limit, _CMP_LT_OQ);
    if (_mm256_movemask_pd(small) == 0xf) {
      const __m256i v = _mm256_sub_epi64(_mm256_castpd_si256(_mm256_add_pd(r, magic)), _mm256_castpd_si256(magic));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), v);
    } else {
      alignas(32) double tmp[4];
      _mm256_store_pd(tmp, r);
      for (int k = 0; k < 4; ++k) out[i + k] = static_cast<int64_t>(tmp[k]);
    }
  }
}

}  // namespace

void round_scaled_avx2(int64_t* out, const double* m, double scale, size_t n) { round_scaled_avx2_impl(out, m, scale, n); }
void round_scaled_avx2(int64_t* out, const float* x, double scale, size_t n) { round_scaled_avx2_impl(out, x, scale, n); }

}  // namespace detail
}  // namespace xcloud
