// AVX2 + FMA negacyclic NTT for primes q < 2^50, four butterflies per
// instruction, with double-precision modular multiplication (see
// modarith_avx2.h for the arithmetic and its error bounds).
//
// The u64 array is transformed in place as doubles (same size): the first
// stage converts residues to doubles as it loads them, the last stage reduces
// to [0, q) and converts back as it stores. In between, values are "lazy":
// exact integers in a bounded signed range, never reduced more than needed.
// The transform is linear and every step is exact modulo q, so the output
// equals the scalar reference's bit for bit.
//
// Ranges (q < 2^50):
//   forward (Cooley-Tukey, as forward_scalar): invariant |v| <= 1.2q.
//     X is reduced to |X| <= q/2 + 1; T = w*Y has |T| <= (1/2 + 1.2q 2^-53) q
//     <= 0.65q; X + T and X - T are within 1.15q + 1. Last stage: full
//     reduction to [0, q).
//   inverse (Gentleman-Sande, as inverse_scalar): invariant |v| <= 0.8q.
//     X + Y (|.| <= 1.6q) is reduced to q/2 + 1; (X - Y) w has
//     |.| <= (1/2 + 1.6q 2^-53) q <= 0.7q. The last stage multiplies both
//     outputs by n^-1 (folded into its twiddle) and maps (-q, q) to [0, q).
// Every multiplicand stays below 2^51 in magnitude, as modarith_avx2.h needs.
#include "ring/ntt_avx2.h"

#include "ring/modarith_avx2.h"

namespace xcloud {
namespace detail {

namespace {

inline __m256d load_pd(const double* p) { return _mm256_loadu_pd(p); }
inline void store_pd(double* p, __m256d v) { _mm256_storeu_pd(p, v); }

// Forward butterfly on 4 lanes: (X, Y) -> (X' + wY, X' - wY), X' = X reduced.
inline void fwd_bfly(__m256d& x, __m256d& y, __m256d w, __m256d wq, const ModConsts& c) {
  const __m256d xr = reduce_balanced(x, c);
  const __m256d t = mul_balanced(y, w, wq, c);
  x = _mm256_add_pd(xr, t);
  y = _mm256_sub_pd(xr, t);
}

// Inverse butterfly: (X, Y) -> (reduce(X + Y), (X - Y) w).
inline void inv_bfly(__m256d& x, __m256d& y, __m256d w, __m256d wq, const ModConsts& c) {
  const __m256d s = _mm256_add_pd(x, y);
  const __m256d d = _mm256_sub_pd(x, y);
  x = reduce_balanced(s, c);
  y = mul_balanced(d, w, wq, c);
}

// One forward stage with half-length t >= 4 and m = n / (2t) groups.
// kFirst: the input is still u64 (converted on load).
template <bool kFirst>
void fwd_stage(double* d, size_t m, size_t t, const double* tw, const ModConsts& c) {
  for (size_t i = 0; i < m; ++i) {
    const __m256d w = _mm256_set1_pd(tw[2 * (m + i)]);
    const __m256d wq = _mm256_set1_pd(tw[2 * (m + i) + 1]);
    double* x = d + 2 * i * t;
    double* y = x + t;
    for (size_t j = 0; j < t; j += 4) {
      __m256d vx, vy;
      if (kFirst) {
        vx = u64_to_pd(load_u64(reinterpret_cast<const uint64_t*>(x + j)));
        vy = u64_to_pd(load_u64(reinterpret_cast<const uint64_t*>(y + j)));
      } else {
        vx = load_pd(x + j);
        vy = load_pd(y + j);
      }
      fwd_bfly(vx, vy, w, wq, c);
      store_pd(x + j, vx);
      store_pd(y + j, vy);
    }
  }
}

// One inverse stage with half-length t >= 4 and h = n / (2t) groups (h >= 2).
void inv_stage(double* d, size_t h, size_t t, const double* tw, const ModConsts& c) {
  for (size_t i = 0; i < h; ++i) {
    const __m256d w = _mm256_set1_pd(tw[2 * (h + i)]);
    const __m256d wq = _mm256_set1_pd(tw[2 * (h + i) + 1]);
    double* x = d + 2 * i * t;
    double* y = x + t;
    for (size_t j = 0; j < t; j += 4) {
      __m256d vx = load_pd(x + j), vy = load_pd(y + j);
      inv_bfly(vx, vy, w, wq, c);
      store_pd(x + j, vx);
      store_pd(y + j, vy);
    }
  }
}

// Stage t = 2: 8 values = two groups [x0 x1 y0 y1 | x0' x1' y0' y1'].
// X = [x0 x1 x0' x1'], Y = [y0 y1 y0' y1'] by 128-bit lane permutes.
template <bool kInverse>
void stage_t2(double* d, size_t n, const double* tw, const ModConsts& c) {
  for (size_t k = 0; k < n; k += 8, tw += 8) {
    const __m256d v0 = load_pd(d + k), v1 = load_pd(d + k + 4);
    __m256d x = _mm256_permute2f128_pd(v0, v1, 0x20);
    __m256d y = _mm256_permute2f128_pd(v0, v1, 0x31);
    const __m256d w = load_pd(tw), wq = load_pd(tw + 4);
    if (kInverse) {
      inv_bfly(x, y, w, wq, c);
    } else {
      fwd_bfly(x, y, w, wq, c);
    }
    store_pd(d + k, _mm256_permute2f128_pd(x, y, 0x20));
    store_pd(d + k + 4, _mm256_permute2f128_pd(x, y, 0x31));
  }
}

// Stage t = 1: 8 values = four groups [x0 y0 x1 y1 | x2 y2 x3 y3].
// X = [x0 x2 x1 x3], Y = [y0 y2 y1 y3] by unpacklo/hi (twiddles stored in
// that lane order). kFirstInverse: input still u64, read from `src` (times
// `mul` when kMul: balanced products, |.| < 3q/4 <= 0.8q as the inverse
// needs). kLastForward: reduce to [0, q) and store u64.
template <bool kInverse, bool kFirstInverse, bool kLastForward, bool kMul = false>
void stage_t1(double* d, size_t n, const double* tw, const ModConsts& c, const uint64_t* src = nullptr,
              const uint64_t* mul = nullptr) {
  for (size_t k = 0; k < n; k += 8, tw += 8) {
    __m256d v0, v1;
    if (kFirstInverse) {
      v0 = u64_to_pd(load_u64(src + k));
      v1 = u64_to_pd(load_u64(src + k + 4));
      if (kMul) {
        v0 = mul_balanced_var(v0, u64_to_pd(load_u64(mul + k)), c);
        v1 = mul_balanced_var(v1, u64_to_pd(load_u64(mul + k + 4)), c);
      }
    } else {
      v0 = load_pd(d + k);
      v1 = load_pd(d + k + 4);
    }
    __m256d x = _mm256_unpacklo_pd(v0, v1);
    __m256d y = _mm256_unpackhi_pd(v0, v1);
    const __m256d w = load_pd(tw), wq = load_pd(tw + 4);
    if (kInverse) {
      inv_bfly(x, y, w, wq, c);
    } else {
      fwd_bfly(x, y, w, wq, c);
    }
    const __m256d o0 = _mm256_unpacklo_pd(x, y), o1 = _mm256_unpackhi_pd(x, y);
    if (kLastForward) {
      store_u64(reinterpret_cast<uint64_t*>(d + k), pd_to_u64(canon_full(o0, c)));
      store_u64(reinterpret_cast<uint64_t*>(d + k + 4), pd_to_u64(canon_full(o1, c)));
    } else {
      store_pd(d + k, o0);
      store_pd(d + k + 4, o1);
    }
  }
}

}  // namespace

void ntt_forward_avx2(const NttSimdView& v, uint64_t* a) {
  const ModConsts c(v.q);
  const size_t n = v.n;
  double* d = reinterpret_cast<double*>(a);
  // Stages t = n/2 ... 4 (m = 1 ... n/8); the first converts from u64.
  fwd_stage<true>(d, 1, n / 2, v.fwd_reg, c);
  for (size_t m = 2, t = n / 4; t >= 4; m <<= 1, t >>= 1) fwd_stage<false>(d, m, t, v.fwd_reg, c);
  stage_t2<false>(d, n, v.fwd_t2, c);
  stage_t1<false, false, true>(d, n, v.fwd_t1, c);
}

namespace {

// The inverse transform after its first stage (which the callers run).
void inverse_rest(const NttSimdView& v, double* d, const ModConsts& c) {
  const size_t n = v.n;
  stage_t2<true>(d, n, v.inv_t2, c);
  for (size_t h = n / 8, t = 4; h >= 2; h >>= 1, t <<= 1) inv_stage(d, h, t, v.inv_reg, c);
  // Last stage (t = n/2, one group): X' = (X + Y) n^-1, Y' = (X - Y) w n^-1,
  // both from |.| <= 1.6q to |.| <= 0.7q, then to [0, q) and u64.
  const __m256d ni = _mm256_set1_pd(v.inv_last[0]), niq = _mm256_set1_pd(v.inv_last[1]);
  const __m256d wn = _mm256_set1_pd(v.inv_last[2]), wnq = _mm256_set1_pd(v.inv_last[3]);
  const size_t t = n / 2;
  for (size_t j = 0; j < t; j += 4) {
    const __m256d x = load_pd(d + j), y = load_pd(d + t + j);
    const __m256d s = mul_balanced(_mm256_add_pd(x, y), ni, niq, c);
    const __m256d r = mul_balanced(_mm256_sub_pd(x, y), wn, wnq, c);
    store_u64(reinterpret_cast<uint64_t*>(d + j), pd_to_u64(canon_from_signed(s, c)));
    store_u64(reinterpret_cast<uint64_t*>(d + t + j), pd_to_u64(canon_from_signed(r, c)));
  }
}

}  // namespace

void ntt_inverse_avx2(const NttSimdView& v, uint64_t* a) {
  const ModConsts c(v.q);
  double* d = reinterpret_cast<double*>(a);
  stage_t1<true, true, false>(d, v.n, v.inv_t1, c, a);
  inverse_rest(v, d, c);
}

void ntt_inverse_mul_avx2(const NttSimdView& v, uint64_t* out, const uint64_t* a, const uint64_t* b) {
  const ModConsts c(v.q);
  double* d = reinterpret_cast<double*>(out);
  stage_t1<true, true, false, true>(d, v.n, v.inv_t1, c, a, b);
  inverse_rest(v, d, c);
}

}  // namespace detail
}  // namespace xcloud
