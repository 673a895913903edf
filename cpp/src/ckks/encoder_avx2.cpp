#include "ckks/encoder_avx2.h"

#include <immintrin.h>

namespace xcloud {
namespace detail {

namespace {

// Two complex products b * w, lane by lane: (br wr - bi wi, bi wr + br wi).
// The imaginary part adds the same two rounded products as the scalar
// ar wi + ai wr (addition commutes exactly).
inline __m256d cmul(__m256d b, __m256d w) {
  const __m256d wr = _mm256_movedup_pd(w);             // (wr, wr)
  const __m256d wi = _mm256_permute_pd(w, 0xF);        // (wi, wi)
  const __m256d bs = _mm256_permute_pd(b, 0x5);        // (bi, br)
  return _mm256_addsub_pd(_mm256_mul_pd(b, wr), _mm256_mul_pd(bs, wi));
}

// Radix-2 stages on a (half complex values, already bit-reversed) with the
// stage twiddles tw ([h + k]), exactly as Encoder::fft.
void fft_stages(double* a, size_t half, const double* tw) {
  // len = 2 (h = 1): butterflies (a[i], a[i+1]) and (a[i+2], a[i+3]) together.
  {
    const __m256d w = _mm256_broadcast_pd(reinterpret_cast<const __m128d*>(tw + 2));
    for (size_t i = 0; i < half; i += 4) {
      const __m256d r0 = _mm256_loadu_pd(a + 2 * i);      // a[i], a[i+1]
      const __m256d r1 = _mm256_loadu_pd(a + 2 * i + 4);  // a[i+2], a[i+3]
      const __m256d u = _mm256_permute2f128_pd(r0, r1, 0x20);
      const __m256d v = cmul(_mm256_permute2f128_pd(r0, r1, 0x31), w);
      const __m256d s = _mm256_add_pd(u, v), d = _mm256_sub_pd(u, v);
      _mm256_storeu_pd(a + 2 * i, _mm256_permute2f128_pd(s, d, 0x20));
      _mm256_storeu_pd(a + 2 * i + 4, _mm256_permute2f128_pd(s, d, 0x31));
    }
  }
  // The remaining stages two at a time (stage h, then stage 2h, on each group
  // of 4h values while it is in registers): every output gets the same
  // butterflies as in the stage-by-stage order.
  size_t h = 2;
  for (; 2 * h < half; h <<= 2) {
    const double* w1t = tw + 2 * h;
    const double* w2t = tw + 4 * h;
    for (size_t start = 0; start < half; start += 4 * h) {
      double* p0 = a + 2 * start;
      double* p1 = p0 + 2 * h;
      double* p2 = p1 + 2 * h;
      double* p3 = p2 + 2 * h;
      for (size_t k = 0; k < h; k += 2) {
        const __m256d w1 = _mm256_loadu_pd(w1t + 2 * k);
        const __m256d x0 = _mm256_loadu_pd(p0 + 2 * k), x1 = _mm256_loadu_pd(p1 + 2 * k);
        const __m256d x2 = _mm256_loadu_pd(p2 + 2 * k), x3 = _mm256_loadu_pd(p3 + 2 * k);
        const __m256d v1 = cmul(x1, w1), v3 = cmul(x3, w1);
        const __m256d y0 = _mm256_add_pd(x0, v1), y1 = _mm256_sub_pd(x0, v1);
        const __m256d y2 = _mm256_add_pd(x2, v3), y3 = _mm256_sub_pd(x2, v3);
        const __m256d v2 = cmul(y2, _mm256_loadu_pd(w2t + 2 * k));
        const __m256d v4 = cmul(y3, _mm256_loadu_pd(w2t + 2 * (k + h)));
        _mm256_storeu_pd(p0 + 2 * k, _mm256_add_pd(y0, v2));
        _mm256_storeu_pd(p2 + 2 * k, _mm256_sub_pd(y0, v2));
        _mm256_storeu_pd(p1 + 2 * k, _mm256_add_pd(y1, v4));
        _mm256_storeu_pd(p3 + 2 * k, _mm256_sub_pd(y1, v4));
      }
    }
  }
  for (; h < half; h <<= 1) {  // a last single stage when log2(half) - 1 is odd
    const double* wt = tw + 2 * h;
    for (size_t start = 0; start < half; start += 2 * h) {
      double* lo = a + 2 * start;
      double* hi = lo + 2 * h;
      for (size_t k = 0; k < h; k += 2) {
        const __m256d u = _mm256_loadu_pd(lo + 2 * k);
        const __m256d v = cmul(_mm256_loadu_pd(hi + 2 * k), _mm256_loadu_pd(wt + 2 * k));
        _mm256_storeu_pd(lo + 2 * k, _mm256_add_pd(u, v));
        _mm256_storeu_pd(hi + 2 * k, _mm256_sub_pd(u, v));
      }
    }
  }
}

inline double to_double(float v) { return static_cast<double>(v); }
inline double to_double(double v) { return v; }

}  // namespace

template <typename T>
void encode_avx2(const EncoderTables& t, const T* x, size_t count, double* m, double* z) {
  const size_t half = t.half;
  for (size_t k = 0; k < half; ++k) {
    double* d = z + 2 * static_cast<size_t>(t.bitrev[k]);
    d[0] = k < count ? to_double(x[k]) : 0.0;
    d[1] = k + half < count ? to_double(x[k + half]) : 0.0;
  }
  fft_stages(z, half, t.tw_inv);
  const double inv_half = 1.0 / static_cast<double>(half);
  const __m256d s = _mm256_set1_pd(inv_half);
  // (z_j conj(zeta^j)) * inv_half for four j at a time, then split into the
  // real parts (m[j]) and the imaginary parts (m[j + half]).
  for (size_t j = 0; j < half; j += 4) {
    const __m256d a = _mm256_mul_pd(cmul(_mm256_loadu_pd(z + 2 * j), _mm256_loadu_pd(t.twist_conj + 2 * j)), s);
    const __m256d b =
        _mm256_mul_pd(cmul(_mm256_loadu_pd(z + 2 * j + 4), _mm256_loadu_pd(t.twist_conj + 2 * j + 4)), s);
    const __m256d re = _mm256_permute4x64_pd(_mm256_unpacklo_pd(a, b), 0xD8);
    const __m256d im = _mm256_permute4x64_pd(_mm256_unpackhi_pd(a, b), 0xD8);
    _mm256_storeu_pd(m + j, re);
    _mm256_storeu_pd(m + j + half, im);
  }
}

template <typename T>
void decode_avx2(const EncoderTables& t, const double* m, T* x, size_t count, double* z) {
  const size_t half = t.half;
  for (size_t j = 0; j < half; j += 4) {
    const __m256d re = _mm256_loadu_pd(m + j), im = _mm256_loadu_pd(m + j + half);
    // Interleave to (re_j, im_j) pairs: unpacklo/hi after a 64-bit lane shuffle.
    const __m256d r = _mm256_permute4x64_pd(re, 0xD8), i = _mm256_permute4x64_pd(im, 0xD8);
    const __m256d p0 = cmul(_mm256_unpacklo_pd(r, i), _mm256_loadu_pd(t.twist + 2 * j));      // j, j+1
    const __m256d p1 = cmul(_mm256_unpackhi_pd(r, i), _mm256_loadu_pd(t.twist + 2 * j + 4));  // j+2, j+3
    alignas(32) double buf[8];
    _mm256_store_pd(buf, p0);
    _mm256_store_pd(buf + 4, p1);
    for (size_t q = 0; q < 4; ++q) {
      double* d = z + 2 * static_cast<size_t>(t.bitrev[j + q]);
      d[0] = buf[2 * q];
      d[1] = buf[2 * q + 1];
    }
  }
  fft_stages(z, half, t.tw_fwd);
  if (count >= 2 * half) {
    for (size_t k = 0; k < half; ++k) {
      x[k] = static_cast<T>(z[2 * k]);
      x[k + half] = static_cast<T>(z[2 * k + 1]);
    }
    return;
  }
  for (size_t k = 0; k < half; ++k) {
    if (k < count) x[k] = static_cast<T>(z[2 * k]);
    if (k + half < count) x[k + half] = static_cast<T>(z[2 * k + 1]);
  }
}

template void encode_avx2<float>(const EncoderTables&, const float*, size_t, double*, double*);
template void encode_avx2<double>(const EncoderTables&, const double*, size_t, double*, double*);
template void decode_avx2<float>(const EncoderTables&, const double*, float*, size_t, double*);
template void decode_avx2<double>(const EncoderTables&, const double*, double*, size_t, double*);

}  // namespace detail
}  // namespace xcloud
