#include "ring/ntt.h"

#include <stdexcept>

#include <string>

#include "ring/poly_ops.h"
#include "ring/simd.h"

namespace xcloud {

NttTables::NttTables(u64 q, size_t n) : q_(q), n_(n) {
  if (n < 4 || n > (size_t{1} << 16) || (n & (n - 1)) != 0) {
    throw std::invalid_argument("NTT degree must be a power of two in [4, 65536], got " + std::to_string(n));
  }
  if (q >= (u64{1} << kMaxPrimeBits) || !is_prime(q) || (q - 1) % (2 * n) != 0) {
    throw std::invalid_argument("NTT modulus " + std::to_string(q) + " is not a prime = 1 mod 2n below 2^" +
                                std::to_string(kMaxPrimeBits));
  }
  log_n_ = 0;
  while ((size_t{1} << log_n_) < n) ++log_n_;
  psi_ = primitive_root_2n(q, 2 * n);
  const u64 psi_inv = inv_mod(psi_, q);
  root_pow_.resize(n);
  inv_root_pow_.resize(n);
  root_pow_shoup_.resize(n);
  inv_root_pow_shoup_.resize(n);
  u64 p = 1, pi = 1;
  for (size_t k = 0; k < n; ++k) {
    const size_t r = bit_reverse(k, log_n_);
    root_pow_[r] = p;
    inv_root_pow_[r] = pi;
    p = mul_mod_slow(p, psi_, q);
    pi = mul_mod_slow(pi, psi_inv, q);
  }
  for (size_t k = 0; k < n; ++k) {
    root_pow_shoup_[k] = shoup_precompute(root_pow_[k], q);
    inv_root_pow_shoup_[k] = shoup_precompute(inv_root_pow_[k], q);
  }
  n_inv_ = inv_mod(n % q, q);
  n_inv_shoup_ = shoup_precompute(n_inv_, q);
  build_simd_tables();
}

// Layout (see ntt_avx2.h), n >= 8, each w/q the double nearest to it:
//   [0, n/2)        fwd_reg: {w_k, w_k/q} for k in [0, n/4), w_k = root_pow_[k]
//   [n/2, n)        inv_reg: likewise from inv_root_pow_
//   [n, 2n)         fwd_t2: for c in [0, n/8), with m = n/4: lanes
//                   {w(m+2c), w(m+2c), w(m+2c+1), w(m+2c+1)}, then their w/q
//   [2n, 3n)        fwd_t1: for c in [0, n/8), with m = n/2: lanes
//                   {w(m+4c), w(m+4c+1), w(m+4c+2), w(m+4c+3)}, then their w/q
//   [3n, 4n)        inv_t2: as fwd_t2 from inv_root_pow_
//   [4n, 5n)        inv_t1: from inv_root_pow_, lanes
//                   {w(m+4c), w(m+4c+2), w(m+4c+1), w(m+4c+3)}, then their w/q
void NttTables::build_simd_tables() {
  if (n_ < 8) return;
  const size_t n = n_;
  const double qd = static_cast<double>(q_);
  simd_tab_.assign(5 * n, 0.0);
  auto put = [&](double* dst, u64 w) {
    dst[0] = static_cast<double>(w);
    dst[4] = static_cast<double>(w) / qd;
  };
  for (size_t k = 0; k < n / 4; ++k) {
    simd_tab_[2 * k] = static_cast<double>(root_pow_[k]);
    simd_tab_[2 * k + 1] = static_cast<double>(root_pow_[k]) / qd;
    simd_tab_[n / 2 + 2 * k] = static_cast<double>(inv_root_pow_[k]);
    simd_tab_[n / 2 + 2 * k + 1] = static_cast<double>(inv_root_pow_[k]) / qd;
  }
  static const size_t kT2Lane[4] = {0, 0, 1, 1};
  static const size_t kT1LaneFwd[4] = {0, 1, 2, 3};
  static const size_t kT1LaneInv[4] = {0, 2, 1, 3};
  for (int inv = 0; inv < 2; ++inv) {
    const std::vector<u64>& w = inv ? inv_root_pow_ : root_pow_;
    double* t2 = simd_tab_.data() + (inv ? 3 * n : n);
    double* t1 = simd_tab_.data() + (inv ? 4 * n : 2 * n);
    const size_t* t1_lane = inv ? kT1LaneInv : kT1LaneFwd;
    for (size_t c = 0; c < n / 8; ++c) {
      for (size_t lane = 0; lane < 4; ++lane) {
        put(t2 + 8 * c + lane, w[n / 4 + 2 * c + kT2Lane[lane]]);
        put(t1 + 8 * c + lane, w[n / 2 + 4 * c + t1_lane[lane]]);
      }
    }
  }
  const u64 wn = mul_mod_slow(inv_root_pow_[1], n_inv_, q_);
  simd_inv_last_[0] = static_cast<double>(n_inv_);
  simd_inv_last_[1] = static_cast<double>(n_inv_) / qd;
  simd_inv_last_[2] = static_cast<double>(wn);
  simd_inv_last_[3] = static_cast<double>(wn) / qd;
}

detail::NttSimdView NttTables::simd_view() const {
  detail::NttSimdView v;
  const double* t = simd_tab_.data();
  v.n = n_;
  v.q = q_;
  v.fwd_reg = t;
  v.inv_reg = t + n_ / 2;
  v.fwd_t2 = t + n_;
  v.fwd_t1 = t + 2 * n_;
  v.inv_t2 = t + 3 * n_;
  v.inv_t1 = t + 4 * n_;
  for (int i = 0; i < 4; ++i) v.inv_last[i] = simd_inv_last_[i];
  return v;
}

void NttTables::forward(u64* a) const {
#ifdef XCLOUD_HAVE_AVX2
  if (n_ >= 8 && simd_enabled()) {
    detail::ntt_forward_avx2(simd_view(), a);
    return;
  }
#endif
  forward_scalar(a);
}

void NttTables::inverse_mul(u64* out, const u64* a, const u64* b, const u64* b_shoup) const {
#ifdef XCLOUD_HAVE_AVX2
  if (n_ >= 8 && simd_enabled()) {
    detail::ntt_inverse_mul_avx2(simd_view(), out, a, b);
    return;
  }
#endif
  for (size_t i = 0; i < n_; ++i) out[i] = mul_shoup(a[i], b[i], b_shoup[i], q_);
  inverse_scalar(out);
}

template <typename T>
void NttTables::inverse_mul_encode_minus_impl(u64* out, const u64* a, const u64* b, const u64* b_shoup, const T* x,
                                              size_t count, double scale, const int32_t* e) const {
#ifdef XCLOUD_HAVE_AVX2
  if (n_ >= 8 && simd_enabled()) {
    detail::ntt_inverse_mul_encode_minus_avx2(simd_view(), out, a, b, x, count, scale, e);
    return;
  }
#endif
  inverse_mul(out, a, b, b_shoup);
  poly_encode_minus(out, x, count, scale, e, out, n_, q_);
}

void NttTables::inverse_mul_encode_minus(u64* out, const u64* a, const u64* b, const u64* b_shoup, const float* x,
                                         size_t count, double scale, const int32_t* e) const {
  inverse_mul_encode_minus_impl(out, a, b, b_shoup, x, count, scale, e);
}

void NttTables::inverse_mul_encode_minus(u64* out, const u64* a, const u64* b, const u64* b_shoup, const double* x,
                                         size_t count, double scale, const int32_t* e) const {
  inverse_mul_encode_minus_impl(out, a, b, b_shoup, x, count, scale, e);
}

void NttTables::inverse(u64* a) const {
#ifdef XCLOUD_HAVE_AVX2
  if (n_ >= 8 && simd_enabled()) {
    detail::ntt_inverse_avx2(simd_view(), a);
    return;
  }
#endif
  inverse_scalar(a);
}

}  // namespace xcloud
