#include "ckks/encoder.h"

#include <cmath>
#include <stdexcept>

#include "ckks/encoder_avx2.h"
#include "ring/ntt.h"
#include "ring/simd.h"

namespace xcloud {

Encoder::Encoder(size_t n) : n_(n) {
  if (n < 4 || (n & (n - 1)) != 0) throw std::invalid_argument("encoder degree must be a power of two >= 4");
  const size_t half = n / 2;
  log_half_ = 0;
  while ((size_t{1} << log_half_) < half) ++log_half_;
  roots_.resize(half / 2 > 0 ? half / 2 : 1);
  for (size_t k = 0; k < roots_.size(); ++k) {
    const double ang = 2.0 * M_PI * static_cast<double>(k) / static_cast<double>(half);
    roots_[k] = cplx(std::cos(ang), std::sin(ang));
  }
  twist_.resize(half);
  for (size_t j = 0; j < half; ++j) {
    const double ang = M_PI * static_cast<double>(j) / static_cast<double>(n);
    twist_[j] = cplx(std::cos(ang), std::sin(ang));
  }
  bitrev_.resize(half);
  for (size_t j = 0; j < half; ++j) bitrev_[j] = static_cast<uint32_t>(bit_reverse(j, log_half_));
  tw_fwd_.assign(half, cplx(0.0, 0.0));
  tw_inv_.assign(half, cplx(0.0, 0.0));
  for (size_t h = 1; h < half; h <<= 1) {
    const size_t step = half / (2 * h);
    for (size_t k = 0; k < h; ++k) {
      tw_fwd_[h + k] = roots_[k * step];
      tw_inv_[h + k] = std::conj(roots_[k * step]);
    }
  }
  twist_conj_.resize(half);
  for (size_t j = 0; j < half; ++j) twist_conj_[j] = std::conj(twist_[j]);
}

namespace {

#ifdef XCLOUD_HAVE_AVX2
detail::EncoderTables avx2_tables(size_t half, const std::vector<uint32_t>& bitrev, const std::vector<cplx>& fwd,
                                  const std::vector<cplx>& inv, const std::vector<cplx>& twist,
                                  const std::vector<cplx>& twist_conj) {
  auto d = [](const std::vector<cplx>& v) { return reinterpret_cast<const double*>(v.data()); };
  return detail::EncoderTables{half, bitrev.data(), d(fwd), d(inv), d(twist), d(twist_conj)};
}
#endif

}  // namespace

// Iterative radix-2 DFT of size N/2: out_k = sum_j a_j exp(+-2 pi i jk/(N/2)).
// Bit-reversal permutation first, then log2(N/2) butterfly stages.
void Encoder::fft(cplx* a, bool inverse) const {
  const size_t half = n_ / 2;
  for (size_t j = 0; j < half; ++j) {
    const size_t r = bitrev_[j];
    if (j < r) std::swap(a[j], a[r]);
  }
  for (size_t len = 2; len <= half; len <<= 1) {
    const size_t step = half / len;  // roots_[k * step] = exp(2 pi i k / len)
    const size_t h = len / 2;
    for (size_t start = 0; start < half; start += len) {
      for (size_t k = 0; k < h; ++k) {
        cplx w = roots_[k * step];
        if (inverse) w = std::conj(w);
        const cplx u = a[start + k];
        const cplx v = a[start + k + h] * w;
        a[start + k] = u + v;
        a[start + k + h] = u - v;
      }
    }
  }
}

template <typename T>
void Encoder::encode(const T* x, size_t count, double* m, cplx* z) const {
  const size_t half = n_ / 2;
#ifdef XCLOUD_HAVE_AVX2
  if (half >= 4 && simd_enabled()) {
    const auto t = avx2_tables(half, bitrev_, tw_fwd_, tw_inv_, twist_, twist_conj_);
    return detail::encode_avx2(t, x, count, m, reinterpret_cast<double*>(z));
  }
#endif
  for (size_t k = 0; k < half; ++k) {
    const double re = k < count ? static_cast<double>(x[k]) : 0.0;
    const double im = k + half < count ? static_cast<double>(x[k + half]) : 0.0;
    z[k] = cplx(re, im);
  }
  fft(z, /*inverse=*/true);
  const double inv_half = 1.0 / static_cast<double>(half);
  for (size_t j = 0; j < half; ++j) {
    const cplx w = z[j] * std::conj(twist_[j]) * inv_half;
    m[j] = w.real();
    m[j + half] = w.imag();
  }
}

template <typename T>
void Encoder::decode(const double* m, T* x, size_t count, cplx* z) const {
  const size_t half = n_ / 2;
#ifdef XCLOUD_HAVE_AVX2
  if (half >= 4 && simd_enabled()) {
    const auto t = avx2_tables(half, bitrev_, tw_fwd_, tw_inv_, twist_, twist_conj_);
    return detail::decode_avx2(t, m, x, count, reinterpret_cast<double*>(z));
  }
#endif
  for (size_t j = 0; j < half; ++j) z[j] = cplx(m[j], m[j + half]) * twist_[j];
  fft(z, /*inverse=*/false);
  for (size_t k = 0; k < half; ++k) {
    if (k < count) x[k] = static_cast<T>(z[k].real());
    if (k + half < count) x[k + half] = static_cast<T>(z[k].imag());
  }
}

template void Encoder::encode<float>(const float*, size_t, double*, cplx*) const;
template void Encoder::encode<double>(const double*, size_t, double*, cplx*) const;
template void Encoder::decode<float>(const double*, float*, size_t, cplx*) const;
template void Encoder::decode<double>(const double*, double*, size_t, cplx*) const;

}  // namespace xcloud
