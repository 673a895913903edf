#pragma once
// Reconstruction of an integer from its residues modulo the RNS primes
// (Garner's mixed-radix algorithm), centred in (-Q/2, Q/2].
// Valid because log2 Q <= 120, so every value fits a signed 128-bit integer.
// Thread safety: immutable after construction.
#include <vector>

#include "ckks/params.h"

namespace xcloud {

class CrtReconstructor {
 public:
  explicit CrtReconstructor(const CkksParams& params);

  // r[j * stride] is the residue mod q_j, each in [0, q_j). Returns the
  // centred integer they represent.
  i128 centered(const u64* r, size_t stride) const;
  double centered_double(const u64* r, size_t stride) const { return static_cast<double>(centered(r, stride)); }

  // out[i] = centered_double(r + i, n) * scale for i in [0, n): r holds L
  // rows of n residues (r[j * n + i] mod q_j, in [0, q_j)). Dispatches (see
  // ring/simd.h) to an AVX2 kernel for L = 2 (crt_avx2.cpp), with the same
  // output bit for bit: the double nearest to the exact centred integer
  // (round to nearest even, as the int128 conversion), times scale.
  void centered_doubles(const u64* r, size_t n, double scale, double* out) const;
  // out[i] = the same for the residues (a + b) mod q_j, a and b holding L
  // rows of n residues each in [0, q_j) (decryption: c0 + c1*s). For L = 1
  // with AVX2 one fused pass (the sum, its reduction and the centring in
  // exact double arithmetic, crt1_sum_centered_doubles_avx2); otherwise the
  // reference: the rows added into `r` (L * n words) with poly_add, then
  // centered_doubles. Same output bit for bit on either path.
  void centered_doubles_of_sum(const u64* a, const u64* b, u64* r, size_t n, double scale, double* out) const;
  // out[i] = T(the same value) for i in [0, count), count <= n: decryption
  // under the coefficient encoding, which stores the first count values of a
  // block straight into the caller's array. For L = 1 with AVX2 one fused
  // pass that converts and stores them (crt1_sum_centered_floats_avx2 for
  // float32); otherwise centered_doubles_of_sum into `tmp` (n doubles; `r`
  // L * n words), then the conversion. Same output bit for bit on either path.
  void centered_values_of_sum(const u64* a, const u64* b, u64* r, size_t n, size_t count, double scale, float* out,
                              double* tmp) const;
  void centered_values_of_sum(const u64* a, const u64* b, u64* r, size_t n, size_t count, double scale, double* out,
                              double* tmp) const;
  // The portable reference of centered_doubles.
  void centered_doubles_scalar(const u64* r, size_t n, double scale, double* out) const;

 private:
  template <typename T>
  void centered_values_of_sum_impl(const u64* a, const u64* b, u64* r, size_t n, size_t count, double scale, T* out,
                                   double* tmp) const;

  std::vector<u64> primes_;
  std::vector<u64> inv_;        // inv_[i * L + j] = q_j^-1 mod q_i for j < i
  std::vector<u64> inv_shoup_;  // Shoup companions of inv_
  std::vector<u64> lift_;       // lift_[i * L + j] = q_i * ceil(q_j / q_i), j < i: a multiple of q_i >= q_j
  std::vector<u128> radix_;     // radix_[i] = q_0 * ... * q_(i-1)
  u128 q_total_, q_half_;
};

}  // namespace xcloud
