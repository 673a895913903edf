// Dispatchers and portable references of poly_ops.h.
#include "ring/poly_ops.h"

#include <algorithm>
#include <cmath>

#include "ring/poly_ops_avx2.h"
#include "ring/simd.h"

namespace xcloud {

namespace detail {

// Input ranges as poly_ops.h; each step names its own (modarith.h).
void poly_mul_scalar(u64* out, const u64* a, const u64* b, const u64* b_shoup, size_t n, u64 q) {
  for (size_t i = 0; i < n; ++i) out[i] = mul_shoup(a[i], b[i], b_shoup[i], q);
}

void poly_mul_add_scalar(u64* out, const u64* a, const u64* b, const u64* b_shoup, size_t n, u64 q) {
  for (size_t i = 0; i < n; ++i) out[i] = add_mod(out[i], mul_shoup(a[i], b[i], b_shoup[i], q), q);
}

void poly_scalar_mul_add_scalar(u64* out, const u64* a, u64 w, u64 w_shoup, size_t n, u64 q) {
  for (size_t i = 0; i < n; ++i) out[i] = add_mod(out[i], mul_shoup(a[i], w, w_shoup, q), q);
}

void poly_weighted_sum_scalar(u64* out, const u64* const* in, const u64* w, const u64* w_shoup, size_t count, size_t n,
                              u64 q, bool accumulate) {
  if (!accumulate) {
    for (size_t i = 0; i < n; ++i) out[i] = 0;
  }
  for (size_t k = 0; k < count; ++k) poly_scalar_mul_add_scalar(out, in[k], w[k], w_shoup[k], n, q);
}

void poly_add_scalar(u64* out, const u64* a, const u64* b, size_t n, u64 q) {
  for (size_t i = 0; i < n; ++i) out[i] = add_mod(a[i], b[i], q);
}

void poly_signed_minus_scalar(u64* out, const int64_t* m, const int32_t* e, const u64* t, size_t n, u64 q) {
  const u64 ratio = barrett_ratio(q);
  for (size_t i = 0; i < n; ++i) out[i] = sub_mod(reduce_signed(m[i] + e[i], q, ratio), t[i], q);
}

void poly_signed_plus_scalar(u64* out, const int64_t* m, const int32_t* e, const u64* t, size_t n, u64 q) {
  const u64 ratio = barrett_ratio(q);
  for (size_t i = 0; i < n; ++i) out[i] = add_mod(t[i], reduce_signed(m[i] + e[i], q, ratio), q);
}

void poly_from_int32_scalar(u64* out, const int32_t* v, size_t n, u64 q) {
  const u64 ratio = barrett_ratio(q);
  for (size_t i = 0; i < n; ++i) out[i] = reduce_signed(v[i], q, ratio);
}

void poly_rescale_aux_scalar(u64* out, const u64* t, const int32_t* e, const u64* xp, const int64_t* m, size_t n,
                             u64 q, u64 p, u64 pinv, u64 pinv_shoup) {
  const u64 ratio_q = barrett_ratio(q), ratio_p = barrett_ratio(p);
  const u64 half = p >> 1;  // (p - 1) / 2: v > half <=> v - p is the centred value
  for (size_t i = 0; i < n; ++i) {
    const u64 v = reduce_signed(static_cast<int64_t>(xp[i]) + e[i], p, ratio_p);  // [0, p)
    const u64 above = static_cast<u64>(0) - ((half - v) >> 63);                   // all ones iff v > half (v < 2^50)
    const int64_t c = static_cast<int64_t>(v) - static_cast<int64_t>(above & p);  // [xp + e]_p
    u64 r = mul_shoup(reduce_signed(e[i] - c, q, ratio_q), pinv, pinv_shoup, q);
    // Branches on the pointers only, never on data.
    if (t) r = add_mod(r, t[i], q);
    if (m) r = add_mod(r, reduce_signed(m[i], q, ratio_q), q);
    out[i] = r;
  }
}

void poly_from_int8_scalar(u64* out, const int8_t* v, size_t n, u64 q) {
  const u64 ratio = barrett_ratio(q);
  for (size_t i = 0; i < n; ++i) out[i] = reduce_signed(v[i], q, ratio);
}

template <typename T>
size_t find_out_of_range_scalar(const T* x, size_t n, double bound) {
  for (size_t i = 0; i < n; ++i) {
    if (!(std::fabs(static_cast<double>(x[i])) <= bound)) return i;
  }
  return n;
}
template size_t find_out_of_range_scalar<float>(const float*, size_t, double);
template size_t find_out_of_range_scalar<double>(const double*, size_t, double);

void round_scaled_scalar(int64_t* out, const double* m, double scale, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<int64_t>(std::nearbyint(m[i] * scale));
}

void round_scaled_scalar(int64_t* out, const float* x, double scale, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<int64_t>(std::nearbyint(static_cast<double>(x[i]) * scale));
}

}  // namespace detail

namespace {

// Elements the AVX2 body handles (a multiple of 4), or 0 for the scalar path.
inline size_t simd_part(size_t n, u64 q) {
#ifdef XCLOUD_HAVE_AVX2
  if (q < (u64{1} << kMaxPrimeBits) && simd_enabled()) return n & ~size_t{3};
#else
  (void)q;
#endif
  (void)n;
  return 0;
}

}  // namespace

void poly_mul(u64* out, const u64* a, const u64* b, const u64* b_shoup, size_t n, u64 q) {
  const size_t v = simd_part(n, q);
#ifdef XCLOUD_HAVE_AVX2
  if (v) detail::poly_mul_avx2(out, a, b, v, q);
#endif
  detail::poly_mul_scalar(out + v, a + v, b + v, b_shoup + v, n - v, q);
}

void poly_mul_add(u64* out, const u64* a, const u64* b, const u64* b_shoup, size_t n, u64 q) {
  const size_t v = simd_part(n, q);
#ifdef XCLOUD_HAVE_AVX2
  if (v) detail::poly_mul_add_avx2(out, a, b, v, q);
#endif
  detail::poly_mul_add_scalar(out + v, a + v, b + v, b_shoup + v, n - v, q);
}

void poly_scalar_mul_add(u64* out, const u64* a, u64 w, u64 w_shoup, size_t n, u64 q) {
  const size_t v = simd_part(n, q);
#ifdef XCLOUD_HAVE_AVX2
  if (v) detail::poly_scalar_mul_add_avx2(out, a, w, v, q);
#endif
  detail::poly_scalar_mul_add_scalar(out + v, a + v, w, w_shoup, n - v, q);
}

void poly_weighted_sum(u64* out, const u64* const* in, const u64* w, const u64* w_shoup, size_t count, size_t n, u64 q,
                       bool accumulate) {
  if (count == 0) {  // the AVX2 kernel writes nothing then; the contract says out = 0
    if (!accumulate) std::fill(out, out + n, u64{0});
    return;
  }
  const size_t v = simd_part(n, q);
#ifdef XCLOUD_HAVE_AVX2
  if (v) detail::poly_weighted_sum_avx2(out, in, w, count, v, q, accumulate);
#endif
  if (v == n) return;
  // The ragged tail (n % 4 elements) on the scalar path.
  if (!accumulate) {
    for (size_t i = v; i < n; ++i) out[i] = 0;
  }
  for (size_t k = 0; k < count; ++k) detail::poly_scalar_mul_add_scalar(out + v, in[k] + v, w[k], w_shoup[k], n - v, q);
}

void poly_add(u64* out, const u64* a, const u64* b, size_t n, u64 q) {
  const size_t v = simd_part(n, q);
#ifdef XCLOUD_HAVE_AVX2
  if (v) detail::poly_add_avx2(out, a, b, v, q);
#endif
  detail::poly_add_scalar(out + v, a + v, b + v, n - v, q);
}

void poly_signed_minus(u64* out, const int64_t* m, const int32_t* e, const u64* t, size_t n, u64 q) {
  const size_t v = simd_part(n, q);
#ifdef XCLOUD_HAVE_AVX2
  if (v) detail::poly_signed_avx2(out, m, e, t, false, v, q);
#endif
  detail::poly_signed_minus_scalar(out + v, m + v, e + v, t + v, n - v, q);
}

void poly_signed_plus(u64* out, const int64_t* m, const int32_t* e, const u64* t, size_t n, u64 q) {
  const size_t v = simd_part(n, q);
#ifdef XCLOUD_HAVE_AVX2
  if (v) detail::poly_signed_avx2(out, m, e, t, true, v, q);
#endif
  detail::poly_signed_plus_scalar(out + v, m + v, e + v, t + v, n - v, q);
}

void poly_from_int32(u64* out, const int32_t* v32, size_t n, u64 q) {
  const size_t v = simd_part(n, q);
#ifdef XCLOUD_HAVE_AVX2
  if (v) detail::poly_from_int32_avx2(out, v32, v, q);
#endif
  detail::poly_from_int32_scalar(out + v, v32 + v, n - v, q);
}

void poly_rescale_aux(u64* out, const u64* t, const int32_t* e, const u64* xp, const int64_t* m, size_t n, u64 q,
                      u64 p, u64 pinv, u64 pinv_shoup) {
  size_t v = simd_part(n, q);
  if (p >= (u64{1} << kMaxPrimeBits)) v = 0;
#ifdef XCLOUD_HAVE_AVX2
  if (v) detail::poly_rescale_aux_avx2(out, t, e, xp, m, v, q, p, pinv);
#endif
  detail::poly_rescale_aux_scalar(out + v, t ? t + v : nullptr, e + v, xp + v, m ? m + v : nullptr, n - v, q, p, pinv,
                                  pinv_shoup);
}

void poly_from_int8(u64* out, const int8_t* v8, size_t n, u64 q) {
  const size_t v = simd_part(n, q);
#ifdef XCLOUD_HAVE_AVX2
  if (v) detail::poly_from_int8_avx2(out, v8, v, q);
#endif
  detail::poly_from_int8_scalar(out + v, v8 + v, n - v, q);
}

namespace {

template <typename T>
size_t find_out_of_range_impl(const T* x, size_t n, double bound) {
#ifdef XCLOUD_HAVE_AVX2
  // The vector check only says whether all are fine; the scalar scan finds
  // the first offender (for the error message).
  if (simd_enabled()) {
    const size_t v = n & ~size_t{7};
    if (detail::all_in_range_avx2(x, v, bound)) {
      const size_t r = detail::find_out_of_range_scalar(x + v, n - v, bound);
      return r == n - v ? n : v + r;
    }
  }
#endif
  return detail::find_out_of_range_scalar(x, n, bound);
}

}  // namespace

size_t find_out_of_range(const float* x, size_t n, double bound) { return find_out_of_range_impl(x, n, bound); }
size_t find_out_of_range(const double* x, size_t n, double bound) { return find_out_of_range_impl(x, n, bound); }

namespace {
// The dispatcher of both round_scaled overloads (double and float input).
template <typename T>
void round_scaled_impl(int64_t* out, const T* m, double scale, size_t n) {
  size_t v = 0;
#ifdef XCLOUD_HAVE_AVX2
  if (simd_enabled()) {
    v = n & ~size_t{3};
    detail::round_scaled_avx2(out, m, scale, v);
  }
#endif
  detail::round_scaled_scalar(out + v, m + v, scale, n - v);
}

template <typename T>
void poly_encode_minus_impl(u64* out, const T* x, size_t count, double scale, const int32_t* e, const u64* t, size_t n,
                            u64 q) {
  const u64 ratio = barrett_ratio(q);
  for (size_t i = 0; i < n; ++i) {
    const int64_t m = i < count ? static_cast<int64_t>(std::nearbyint(static_cast<double>(x[i]) * scale)) : 0;
    out[i] = sub_mod(reduce_signed(m + e[i], q, ratio), t[i], q);
  }
}
}  // namespace

void round_scaled(int64_t* out, const double* m, double scale, size_t n) { round_scaled_impl(out, m, scale, n); }
void round_scaled(int64_t* out, const float* x, double scale, size_t n) { round_scaled_impl(out, x, scale, n); }

void poly_encode_minus(u64* out, const float* x, size_t count, double scale, const int32_t* e, const u64* t, size_t n,
                       u64 q) {
  poly_encode_minus_impl(out, x, count, scale, e, t, n, q);
}
void poly_encode_minus(u64* out, const double* x, size_t count, double scale, const int32_t* e, const u64* t, size_t n,
                       u64 q) {
  poly_encode_minus_impl(out, x, count, scale, e, t, n, q);
}

}  // namespace xcloud
