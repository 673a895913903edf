#pragma once
// Internal interface of poly_ops_avx2.cpp (compiled with -mavx2 -mfma): the
// AVX2 bodies of the poly_ops.h dispatchers. Each processes the first
// n - n % 4 elements; the dispatcher finishes the rest with the scalar
// reference. Ranges and aliasing as in poly_ops.h; q < 2^50.
#include <cstddef>
#include <cstdint>

namespace xcloud {
namespace detail {

void poly_mul_avx2(uint64_t* out, const uint64_t* a, const uint64_t* b, size_t n, uint64_t q);
void poly_mul_add_avx2(uint64_t* out, const uint64_t* a, const uint64_t* b, size_t n, uint64_t q);
void poly_scalar_mul_add_avx2(uint64_t* out, const uint64_t* a, uint64_t w, size_t n, uint64_t q);
void poly_weighted_sum_avx2(uint64_t* out, const uint64_t* const* in, const uint64_t* w, size_t count, size_t n,
                            uint64_t q, bool accumulate);
void poly_add_avx2(uint64_t* out, const uint64_t* a, const uint64_t* b, size_t n, uint64_t q);
void poly_signed_avx2(uint64_t* out, const int64_t* m, const int32_t* e, const uint64_t* t, bool plus, size_t n,
                      uint64_t q);
void poly_from_int32_avx2(uint64_t* out, const int32_t* v, size_t n, uint64_t q);
void poly_rescale_aux_avx2(uint64_t* out, const uint64_t* t, const int32_t* e, const uint64_t* xp, const int64_t* m,
                           size_t n, uint64_t q, uint64_t p, uint64_t pinv);
void poly_from_int8_avx2(uint64_t* out, const int8_t* v, size_t n, uint64_t q);
// True if every |x[i]| <= bound (no NaN), i < n - n % 8.
bool all_in_range_avx2(const float* x, size_t n, double bound);
bool all_in_range_avx2(const double* x, size_t n, double bound);
void round_scaled_avx2(int64_t* out, const double* m, double scale, size_t n);
void round_scaled_avx2(int64_t* out, const float* x, double scale, size_t n);

}  // namespace detail
}  // namespace xcloud
