// The portable reference NTT (Shoup butterflies on u64 residues); the
// dispatcher and the tables are in ntt.cpp, the AVX2 kernels in ntt_avx2.cpp.
#include "ring/ntt.h"

namespace xcloud {

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
