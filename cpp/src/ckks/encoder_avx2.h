#pragma once
// Internal interface of encoder_avx2.cpp (compiled with -mavx2, no FMA
// contraction): the encoder's FFT with two complex values per register.
//
// Every product and sum is the one the scalar reference (encoder.cpp) computes,
// in the same order and with the same rounding (a complex product is
// (ar wr - ai wi, ar wi + ai wr), no fused multiply-add), so the results are
// bit-identical. The bit-reversal permutation is folded into the first write
// of the scratch instead of a swap pass; that moves values without rounding.
#include <cstddef>
#include <cstdint>

namespace xcloud {
namespace detail {

// Tables shared with the scalar encoder, as interleaved (re, im) doubles.
struct EncoderTables {
  size_t half;              // N/2, at least 4
  const uint32_t* bitrev;   // bit reversal of log2(N/2) bits
  const double* tw_fwd;     // stage twiddles: [h + k] = exp(2 pi i k / (2h)), 1 <= h < N/2, k < h
  const double* tw_inv;     // their conjugates
  const double* twist;      // zeta^j, j < N/2
  const double* twist_conj; // conj(zeta^j)
};

template <typename T>
void encode_avx2(const EncoderTables& t, const T* x, size_t count, double* m, double* z);
template <typename T>
void decode_avx2(const EncoderTables& t, const double* m, T* x, size_t count, double* z);

}  // namespace detail
}  // namespace xcloud
