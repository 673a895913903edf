#include "ring/ntt.h"

#include <stdexcept>
#include <string>

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
}

void NttTables::forward(u64* a) const { forward_scalar(a); }
void NttTables::inverse(u64* a) const { inverse_scalar(a); }

// Cooley-Tukey, decimation in time: at stage m (m = 1, 2, 4, ... n/2) the
// array holds m independent sub-transforms of length 2t; each butterfly maps
// (x, y) -> (x + w y, x - w y) with w = psi^br(m + i).
// Input in [0, q), every intermediate value kept in [0, q), output in [0, q).
void NttTables::forward_scalar(u64* a) const {
  const u64 q = q_;
  size_t t = n_;
  for (size_t m = 1; m < n_; m <<= 1) {
    t >>= 1;
    for (size_t i = 0; i < m; ++i) {
      const u64 w = root_pow_[m + i];
      const u64 ws = root_pow_shoup_[m + i];
      u64* x = a + 2 * i * t;
      u64* y = x + t;
      for (size_t j = 0; j < t; ++j) {
        const u64 u = x[j];
        const u64 v = mul_shoup(y[j], w, ws, q);
        x[j] = add_mod(u, v, q);
        y[j] = sub_mod(u, v, q);
      }
    }
  }
}

// Gentleman-Sande, decimation in frequency: the stages of forward_scalar in
// reverse, each butterfly (x, y) -> (x + y, (x - y) w^-1), then a final
// multiplication by n^-1. Input in [0, q), output in [0, q).
void NttTables::inverse_scalar(u64* a) const {
  const u64 q = q_;
  size_t t = 1;
  for (size_t m = n_; m > 1; m >>= 1) {
    const size_t h = m >> 1;
    for (size_t i = 0; i < h; ++i) {
      const u64 w = inv_root_pow_[h + i];
      const u64 ws = inv_root_pow_shoup_[h + i];
      u64* x = a + 2 * i * t;
      u64* y = x + t;
      for (size_t j = 0; j < t; ++j) {
        const u64 u = x[j];
        const u64 v = y[j];
        x[j] = add_mod(u, v, q);
        y[j] = mul_shoup(u + q - v, w, ws, q);
      }
    }
    t <<= 1;
  }
  for (size_t j = 0; j < n_; ++j) a[j] = mul_shoup(a[j], n_inv_, n_inv_shoup_, q);
}

}  // namespace xcloud
