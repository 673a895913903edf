#pragma once
// Internal interface of the AVX2 + FMA negacyclic NTT (ntt_avx2.cpp, the one
// translation unit compiled with -mavx2 -mfma). Only plain data and raw
// pointers cross it, so no inline function or template instantiated for AVX2
// there can be picked by the linker for the portable code.
#include <cstddef>
#include <cstdint>

namespace xcloud {
namespace detail {

// Twiddle factors as doubles, laid out for 4-lane vectors; built by
// NttTables from its integer tables (see ntt.cpp, build_simd_tables) and
// read-only afterwards. Every "w/q" entry is the double nearest to w/q
// (computed as double(w) / double(q), both exact since q < 2^50).
struct NttSimdView {
  size_t n;                // ring degree, a power of two >= 8
  uint64_t q;              // prime < 2^50
  // Stages with half-length t >= 4: pairs {w, w/q} for table index k in
  // [0, n/4): fwd_reg[2k], fwd_reg[2k+1] = psi^br(k); inv_reg likewise with psi^-br(k).
  const double* fwd_reg;
  const double* inv_reg;
  // Stages t = 2 and t = 1: per group of 4 lanes, 4 twiddles then their 4
  // w/q values (8 doubles), lanes ordered as the kernel's shuffles need them
  // (see ntt.cpp, build_simd_tables; fwd_t1 and inv_t1 differ in order).
  const double* fwd_t2;
  const double* fwd_t1;
  const double* inv_t2;
  const double* inv_t1;
  // Last inverse stage (t = n/2), with the scaling by n^-1 folded in:
  // {n^-1, n^-1/q, psi^-br(1) * n^-1 mod q, its /q}.
  double inv_last[4];
};

// In place; input and output u64 residues in [0, q). Bit-identical to
// NttTables::forward_scalar / inverse_scalar.
void ntt_forward_avx2(const NttSimdView& v, uint64_t* a);
void ntt_inverse_avx2(const NttSimdView& v, uint64_t* a);
// out = inverse(a * b) (pointwise product mod q first, fused into the first
// stage); a, b in [0, q); out may alias a.
void ntt_inverse_mul_avx2(const NttSimdView& v, uint64_t* out, const uint64_t* a, const uint64_t* b);
// out = (round(x * scale) + e) - inverse(a * b) mod q over n coefficients,
// x zero-padded beyond count (poly_encode_minus of poly_ops.h fused into the
// last stage); out may alias a.
void ntt_inverse_mul_encode_minus_avx2(const NttSimdView& v, uint64_t* out, const uint64_t* a, const uint64_t* b,
                                       const float* x, size_t count, double scale, const int32_t* e);
void ntt_inverse_mul_encode_minus_avx2(const NttSimdView& v, uint64_t* out, const uint64_t* a, const uint64_t* b,
                                       const double* x, size_t count, double scale, const int32_t* e);

}  // namespace detail
}  // namespace xcloud
