#pragma once
// CKKS encoding of real vectors: N reals <-> a real polynomial of degree < N.
//
// Slots: the N/2 complex values z_k = m(zeta^(4k+1)), zeta = exp(i*pi/N). Since
// (zeta^(4k+1))^(N/2) = i, m(zeta^(4k+1)) = sum_{j<N/2} (m_j + i m_{j+N/2})
// zeta^j omega^(jk) with omega = zeta^4, an N/2-point DFT of the twisted
// complex vector w_j = m_j + i m_{j+N/2}. The roots zeta^(4k+1) meet each
// conjugate pair of primitive 2N-th roots once, so the map is a bijection.
// Two reals share a slot: z_k = x_k + i x_{k+N/2}.
// Bound: |m_j| <= max_k |z_k| <= sqrt(2) max |x|.
//
// Two paths (ring/simd.h): the scalar reference below and an AVX2 one
// (encoder_avx2.h) that computes the same rounded operations, so both give
// the same bits.
//
// Thread safety: an Encoder is immutable after construction; encode/decode
// take caller-provided scratch, so many threads may share one Encoder.
#include <complex>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace xcloud {

using cplx = std::complex<double>;

class Encoder {
 public:
  Encoder() = default;
  explicit Encoder(size_t n);  // n: ring degree, a power of two >= 4

  size_t degree() const { return n_; }

  // Encodes x[0, count) (count <= N; missing values are 0) into real
  // coefficients m[0, N). scratch must hold N/2 complex values.
  template <typename T>
  void encode(const T* x, size_t count, double* m, cplx* scratch) const;

  // Inverse of encode: coefficients m[0, N) to values x[0, count).
  template <typename T>
  void decode(const double* m, T* x, size_t count, cplx* scratch) const;

 private:
  void fft(cplx* a, bool inverse) const;  // in-place, size N/2, unnormalised
  size_t n_ = 0;
  int log_half_ = 0;
  std::vector<cplx> roots_;  // exp(2 pi i k / (N/2)), k < N/4: computed directly with cos/sin
  std::vector<cplx> twist_;  // zeta^j = exp(i pi j / N), j < N/2: computed directly with cos/sin
  std::vector<uint32_t> bitrev_;
  // For the AVX2 path (encoder_avx2.h): the twiddles of each FFT stage laid
  // out contiguously, and the conjugates (the same doubles, the imaginary
  // part negated, as the scalar path computes them).
  std::vector<cplx> tw_fwd_, tw_inv_, twist_conj_;
};

}  // namespace xcloud
