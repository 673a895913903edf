#pragma once
// Element-wise arithmetic on residue vectors modulo one prime q < 2^50: the
// pointwise products, sums and signed-integer reductions of encryption,
// decryption and aggregation.
//
// Each function is a dispatcher (simd.h) over a portable reference (the
// *_scalar functions, written with the Shoup / Barrett primitives of
// modarith.h) and an AVX2 + FMA version (poly_ops_avx2.cpp, double-precision
// modular arithmetic, see modarith_avx2.h); both give identical outputs.
// Inputs documented as residues must be in [0, q); every output is in [0, q).
// `out` may alias any input of the same type.
// Thread safety: pure functions of their arguments.
#include <cstddef>
#include <cstdint>

#include "ring/modarith.h"

namespace xcloud {

// out[i] = a[i] * b[i] mod q; b_shoup[i] = shoup_precompute(b[i], q).
void poly_mul(u64* out, const u64* a, const u64* b, const u64* b_shoup, size_t n, u64 q);
// out[i] = out[i] + a[i] * b[i] mod q.
void poly_mul_add(u64* out, const u64* a, const u64* b, const u64* b_shoup, size_t n, u64 q);
// out[i] = out[i] + a[i] * w mod q; w in [0, q), w_shoup = shoup_precompute(w, q).
void poly_scalar_mul_add(u64* out, const u64* a, u64 w, u64 w_shoup, size_t n, u64 q);
// out[i] = (accumulate ? out[i] : 0) + sum_k in[k][i] * w[k] mod q, for k in
// [0, count): a weighted sum of `count` residue vectors (the aggregation of
// ciphertexts). w[k] in [0, q), w_shoup[k] = shoup_precompute(w[k], q). The
// SIMD path adds the products unreduced (lazily) and reduces once every few
// terms; out may not alias any in[k].
void poly_weighted_sum(u64* out, const u64* const* in, const u64* w, const u64* w_shoup, size_t count, size_t n, u64 q,
                       bool accumulate);
// out[i] = a[i] + b[i] mod q.
void poly_add(u64* out, const u64* a, const u64* b, size_t n, u64 q);
// out[i] = (m[i] + e[i]) - t[i] mod q and (m[i] + e[i]) + t[i] mod q, for
// signed m (int64) and e (int32) with |m[i] + e[i]| < 2^63, t residues.
void poly_signed_minus(u64* out, const int64_t* m, const int32_t* e, const u64* t, size_t n, u64 q);
void poly_signed_plus(u64* out, const int64_t* m, const int32_t* e, const u64* t, size_t n, u64 q);
// The modulus drop of a public-key encryption made modulo q*p (see
// encryptor.cpp): for a coefficient x = y + e modulo q*p whose residue mod p
// is xp[i] + e[i], out[i] = t[i] + (e[i] - [xp[i] + e[i]]_p) * pinv + m[i]
// mod q, where [v]_p is v centred into (-p/2, p/2) (p odd: no tie) and pinv =
// p^-1 mod q (pinv_shoup its Shoup companion). With t[i] = y * p^-1 mod q
// this is round(x / p) + m[i] mod q. t and m may be null (taken as 0). xp in
// [0, p), |e| < 2^31, |m| < 2^50, t in [0, q), p < 2^50, p != q. No
// data-dependent branch: the centring is a mask (scalar) or a balanced
// reduction (SIMD); both give the one centred representative.
void poly_rescale_aux(u64* out, const u64* t, const int32_t* e, const u64* xp, const int64_t* m, size_t n, u64 q,
                      u64 p, u64 pinv, u64 pinv_shoup);
// out[i] = v[i] mod q for small signed integers.
void poly_from_int32(u64* out, const int32_t* v, size_t n, u64 q);
void poly_from_int8(u64* out, const int8_t* v, size_t n, u64 q);

// Encoding helpers on real vectors (same dispatch):
// The index of the first x[i] with !(|x[i]| <= bound) (out of range or NaN),
// or n if there is none.
size_t find_out_of_range(const float* x, size_t n, double bound);
size_t find_out_of_range(const double* x, size_t n, double bound);
// out[i] = int64(nearbyint(m[i] * scale)) (rounding in the current mode, ties
// to even by default); |m[i] * scale| < 2^63.
void round_scaled(int64_t* out, const double* m, double scale, size_t n);
// The same from float32 values, widened to double first (exactly), so
// out[i] = int64(nearbyint(double(x[i]) * scale)): the coefficient encoding's
// one pass from an update to its integer plaintext.
void round_scaled(int64_t* out, const float* x, double scale, size_t n);
// The coefficient encoding's secret-key encryption after a*s, in one pass
// (round_scaled followed by poly_signed_minus, without the integer vector):
// out[i] = m_i + e[i] - t[i] mod q for i in [0, n), m_i =
// int64(nearbyint(double(x[i]) * scale)) for i < count and 0 for the block's
// tail (count <= n; x is read only below count). x finite with
// |x[i] * scale| < 2^62 (the caller's range check), |e[i]| < 2^31, t
// residues. Portable code only: its SIMD form is the inverse NTT's last
// stage (NttTables::inverse_mul_encode_minus), which this is the reference of.
void poly_encode_minus(u64* out, const float* x, size_t count, double scale, const int32_t* e, const u64* t, size_t n,
                       u64 q);
void poly_encode_minus(u64* out, const double* x, size_t count, double scale, const int32_t* e, const u64* t, size_t n,
                       u64 q);

// The portable references (always scalar), for tests and benchmarks.
namespace detail {
template <typename T>
size_t find_out_of_range_scalar(const T* x, size_t n, double bound);
void round_scaled_scalar(int64_t* out, const double* m, double scale, size_t n);
void round_scaled_scalar(int64_t* out, const float* x, double scale, size_t n);
void poly_mul_scalar(u64* out, const u64* a, const u64* b, const u64* b_shoup, size_t n, u64 q);
void poly_mul_add_scalar(u64* out, const u64* a, const u64* b, const u64* b_shoup, size_t n, u64 q);
void poly_scalar_mul_add_scalar(u64* out, const u64* a, u64 w, u64 w_shoup, size_t n, u64 q);
void poly_add_scalar(u64* out, const u64* a, const u64* b, size_t n, u64 q);
void poly_weighted_sum_scalar(u64* out, const u64* const* in, const u64* w, const u64* w_shoup, size_t count, size_t n,
                              u64 q, bool accumulate);
void poly_signed_minus_scalar(u64* out, const int64_t* m, const int32_t* e, const u64* t, size_t n, u64 q);
void poly_signed_plus_scalar(u64* out, const int64_t* m, const int32_t* e, const u64* t, size_t n, u64 q);
void poly_from_int32_scalar(u64* out, const int32_t* v, size_t n, u64 q);
void poly_rescale_aux_scalar(u64* out, const u64* t, const int32_t* e, const u64* xp, const int64_t* m, size_t n,
                             u64 q, u64 p, u64 pinv, u64 pinv_shoup);
void poly_from_int8_scalar(u64* out, const int8_t* v, size_t n, u64 q);
}  // namespace detail

}  // namespace xcloud
