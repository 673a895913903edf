#pragma once
// Internal interface of crt_avx2.cpp (compiled with -mavx2 -mfma).
#include <cstddef>
#include <cstdint>

namespace xcloud {
namespace detail {

// Two primes q0, q1 < 2^50. For i in [0, n - n % 4): with v = r0[i] in
// [0, q0), t = (r1[i] - v) * inv mod q1 in [0, q1) (inv = q0^-1 mod q1),
// x = v + t q0 in [0, q0 q1), centred to x - q0 q1 when x > half (half =
// t_half q0 + v_half, v_half < q0): out[i] = double(x) * scale, with double(x)
// the nearest double (ties to even).
void crt2_centered_doubles_avx2(const uint64_t* r0, const uint64_t* r1, size_t n, uint64_t q0, uint64_t q1,
                                uint64_t inv, uint64_t t_half, uint64_t v_half, double scale, double* out);

// One prime q < 2^50 (the compact preset): for i in [0, n - n % 4), with
// r = r0[i] in [0, q), out[i] = double(r > q_half ? r - q : r) * scale. Every
// step is exact but the final product, which rounds as the scalar one.
void crt1_centered_doubles_avx2(const uint64_t* r0, size_t n, uint64_t q, uint64_t q_half, double scale,
                                double* out);
// out[i] = centred((a[i] + b[i]) mod q) * scale, for a[i], b[i] in [0, q),
// q < 2^50 (so a + b < 2^51 is exact as a double); n a multiple of 4.
void crt1_sum_centered_doubles_avx2(const uint64_t* a, const uint64_t* b, size_t n, uint64_t q, uint64_t q_half,
                                    double scale, double* out);
// The same, rounded to float32 (nearest, ties to even) as it is stored.
void crt1_sum_centered_floats_avx2(const uint64_t* a, const uint64_t* b, size_t n, uint64_t q, uint64_t q_half,
                                   double scale, float* out);

}  // namespace detail
}  // namespace xcloud
