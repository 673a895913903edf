#pragma once
// Internal interface of real_sampler_avx2.cpp (compiled with -mavx2).
#include <cstddef>
#include <cstdint>

namespace xcloud {
namespace detail {

// gaussian_from_words_scalar (ring/real_sampler.h) eight values at a time
// (four pairs, one per lane), for the first n - n % 8 values; the same bits.
void gaussian_from_words_avx2(const uint8_t* words, double std, double* out, size_t n);

}  // namespace detail
}  // namespace xcloud
