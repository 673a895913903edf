#include "ckks/crt.h"

#include "ckks/crt_avx2.h"
#include "ring/poly_ops.h"
#include "ring/simd.h"

namespace xcloud {

CrtReconstructor::CrtReconstructor(const CkksParams& params) : primes_(params.primes()) {
  const size_t L = primes_.size();
  inv_ = params.garner_inverses();
  inv_shoup_.resize(inv_.size());
  lift_.assign(L * L, 0);
  for (size_t i = 0; i < L; ++i) {
    for (size_t j = 0; j < i; ++j) {
      inv_shoup_[i * L + j] = shoup_precompute(inv_[i * L + j], primes_[i]);
      lift_[i * L + j] = primes_[i] * ((primes_[j] + primes_[i] - 1) / primes_[i]);
    }
  }
  radix_.resize(L);
  u128 prod = 1;
  for (size_t i = 0; i < L; ++i) {
    radix_[i] = prod;
    prod *= primes_[i];
  }
  q_total_ = prod;
  q_half_ = prod >> 1;
}

// Mixed-radix digits: v_0 = r_0, v_i = (((r_i - v_0) q_0^-1 - v_1) q_1^-1 - ...) mod q_i,
// so x = sum v_i * radix_i lies in [0, Q). Each digit is in [0, q_i).
// One step, without division: t in [0, q_i) and v_j in [0, q_j), so
// t + lift - v_j is in [1, q_i + lift) (below 2^52) and congruent to t - v_j;
// the lazy Shoup product of any word is in [0, 2 q_i), reduced to [0, q_i).
i128 CrtReconstructor::centered(const u64* r, size_t stride) const {
  const size_t L = primes_.size();
  u64 v[8];
  u128 x = 0;
  for (size_t i = 0; i < L; ++i) {
    const u64 q = primes_[i];
    u64 t = r[i * stride];
    for (size_t j = 0; j < i; ++j) {
      t = mul_shoup(t + lift_[i * L + j] - v[j], inv_[i * L + j], inv_shoup_[i * L + j], q);
    }
    v[i] = t;
    x += static_cast<u128>(t) * radix_[i];
  }
  return x > q_half_ ? static_cast<i128>(x) - static_cast<i128>(q_total_) : static_cast<i128>(x);
}

void CrtReconstructor::centered_doubles_scalar(const u64* r, size_t n, double scale, double* out) const {
  for (size_t i = 0; i < n; ++i) {
    const i128 x = centered(r + i, n);
    // Both conversions round to nearest (ties to even); the int64 one is a
    // single instruction instead of a libgcc call.
    const bool small = x >= INT64_MIN && x <= INT64_MAX;
    const double d = small ? static_cast<double>(static_cast<int64_t>(x)) : static_cast<double>(x);
    out[i] = d * scale;
  }
}

void CrtReconstructor::centered_doubles_of_sum(const u64* a, const u64* b, u64* r, size_t n, double scale,
                                               double* out) const {
  const size_t L = primes_.size();
#ifdef XCLOUD_HAVE_AVX2
  if (L == 1 && primes_[0] < (u64{1} << kMaxPrimeBits) && simd_enabled()) {
    const size_t done = n & ~size_t{3};
    detail::crt1_sum_centered_doubles_avx2(a, b, done, primes_[0], static_cast<u64>(q_half_), scale, out);
    if (done == n) return;
    poly_add(r + done, a + done, b + done, n - done, primes_[0]);
    centered_doubles_scalar(r + done, n - done, scale, out + done);
    return;
  }
#endif
  for (size_t j = 0; j < L; ++j) poly_add(r + j * n, a + j * n, b + j * n, n, primes_[j]);
  centered_doubles(r, n, scale, out);
}

#ifdef XCLOUD_HAVE_AVX2
namespace {
void crt1_sum_centered_simd(const u64* a, const u64* b, size_t n, u64 q, u64 q_half, double scale, float* out) {
  detail::crt1_sum_centered_floats_avx2(a, b, n, q, q_half, scale, out);
}
void crt1_sum_centered_simd(const u64* a, const u64* b, size_t n, u64 q, u64 q_half, double scale, double* out) {
  detail::crt1_sum_centered_doubles_avx2(a, b, n, q, q_half, scale, out);
}
}  // namespace
#endif

template <typename T>
void CrtReconstructor::centered_values_of_sum_impl(const u64* a, const u64* b, u64* r, size_t n, size_t count,
                                                   double scale, T* out, double* tmp) const {
#ifdef XCLOUD_HAVE_AVX2
  if (primes_.size() == 1 && primes_[0] < (u64{1} << kMaxPrimeBits) && simd_enabled()) {
    const size_t done = count & ~size_t{3};
    crt1_sum_centered_simd(a, b, done, primes_[0], static_cast<u64>(q_half_), scale, out);
    if (done == count) return;
    // The last count % 4 values: centered_doubles_of_sum's own tail (one
    // prime, so rows of any length are valid).
    centered_doubles_of_sum(a + done, b + done, r + done, count - done, scale, tmp);
    for (size_t i = done; i < count; ++i) out[i] = static_cast<T>(tmp[i - done]);
    return;
  }
#endif
  centered_doubles_of_sum(a, b, r, n, scale, tmp);
  for (size_t i = 0; i < count; ++i) out[i] = static_cast<T>(tmp[i]);
}

void CrtReconstructor::centered_values_of_sum(const u64* a, const u64* b, u64* r, size_t n, size_t count,
                                              double scale, float* out, double* tmp) const {
  centered_values_of_sum_impl(a, b, r, n, count, scale, out, tmp);
}

void CrtReconstructor::centered_values_of_sum(const u64* a, const u64* b, u64* r, size_t n, size_t count,
                                              double scale, double* out, double* tmp) const {
  centered_values_of_sum_impl(a, b, r, n, count, scale, out, tmp);
}

void CrtReconstructor::centered_doubles(const u64* r, size_t n, double scale, double* out) const {
  size_t done = 0;
#ifdef XCLOUD_HAVE_AVX2
  if (primes_.size() == 1 && primes_[0] < (u64{1} << kMaxPrimeBits) && simd_enabled()) {
    done = n & ~size_t{3};
    detail::crt1_centered_doubles_avx2(r, done, primes_[0], static_cast<u64>(q_half_), scale, out);
  }
  if (primes_.size() == 2 && primes_[0] < (u64{1} << kMaxPrimeBits) && primes_[1] < (u64{1} << kMaxPrimeBits) &&
      simd_enabled()) {
    done = n & ~size_t{3};
    const u128 th = q_half_ / primes_[0];
    const u64 vh = static_cast<u64>(q_half_ - th * primes_[0]);
    detail::crt2_centered_doubles_avx2(r, r + n, done, primes_[0], primes_[1], inv_[1 * 2 + 0],
                                       static_cast<u64>(th), vh, scale, out);
  }
#endif
  for (size_t i = done; i < n; ++i) {
    const i128 x = centered(r + i, n);
    const bool small = x >= INT64_MIN && x <= INT64_MAX;
    out[i] = (small ? static_cast<double>(static_cast<int64_t>(x)) : static_cast<double>(x)) * scale;
  }
}

}  // namespace xcloud
