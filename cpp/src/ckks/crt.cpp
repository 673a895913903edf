#include "ckks/crt.h"

namespace xcloud {

CrtReconstructor::CrtReconstructor(const CkksParams& params) : primes_(params.primes()) {
  const size_t L = primes_.size();
  inv_ = params.garner_inverses();
  inv_shoup_.resize(inv_.size());
  for (size_t i = 0; i < L; ++i) {
    for (size_t j = 0; j < i; ++j) inv_shoup_[i * L + j] = shoup_precompute(inv_[i * L + j], primes_[i]);
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
i128 CrtReconstructor::centered(const u64* r, size_t stride) const {
  const size_t L = primes_.size();
  u64 v[8];
  u128 x = 0;
  for (size_t i = 0; i < L; ++i) {
    const u64 q = primes_[i];
    u64 t = r[i * stride];
    for (size_t j = 0; j < i; ++j) {
      t = sub_mod(t, v[j] % q, q);
      t = mul_shoup(t, inv_[i * L + j], inv_shoup_[i * L + j], q);
    }
    v[i] = t;
    x += static_cast<u128>(t) * radix_[i];
  }
  return x > q_half_ ? static_cast<i128>(x) - static_cast<i128>(q_total_) : static_cast<i128>(x);
}

}  // namespace xcloud
