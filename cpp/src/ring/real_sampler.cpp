// Uniform and Gaussian reals from a secret AES-256-CTR keystream
// (ring/real_sampler.h).
#include "ring/real_sampler.h"

#include <cmath>
#include <cstring>
#include <stdexcept>

#include "ring/endian.h"
#include "ring/real_sampler_math.h"
#include "ring/secure.h"
#include "ring/simd.h"
#ifdef XCLOUD_HAVE_AVX2
#include "ring/real_sampler_avx2.h"
#endif

namespace xcloud {

namespace {

constexpr uint64_t kSegmentBytes = uint64_t{16} << 32;  // 2^32 AES blocks
constexpr size_t kChunk = 512;                          // Gaussian values per keystream fill (16 KiB; even)

}  // namespace

namespace detail {

double real_sampler_log(double u) { return real_math::log_unit(u); }

void real_sampler_cos_sin(double v, double* c, double* s) { real_math::cos_sin_turn(v, c, s); }

void gaussian_from_words_scalar(const uint8_t* words, double std, double* out, size_t n) {
  uint64_t w[8];
  double odd = 0;
  for (size_t i = 0; i < n; i += 2) {
    for (int k = 0; k < 8; ++k) w[k] = load_le64(words + 32 * i + 8 * k);
    real_math::gaussian_pair_of(w, std, out + i, &odd);
    if (i + 1 < n) out[i + 1] = odd;
  }
  secure_zero(w, sizeof(w));
  wipe_vector_registers();
}

}  // namespace detail

RealSampler::RealSampler(const uint8_t key[32]) : key_(), buf_(32 * kChunk) { std::memcpy(key_.data(), key, 32); }

RealSampler::RealSampler() : key_(), buf_(32 * kChunk) { os_random_bytes(key_.data(), key_.size()); }

RealSampler::~RealSampler() { secure_zero(key_.data(), key_.size()); }

uint64_t RealSampler::bytes_drawn() const {
  std::lock_guard<std::mutex> lock(mu_);
  return drawn_;
}

void RealSampler::keystream(uint8_t* out, size_t n) {
  while (n > 0) {
    if (left_ == 0) {
      uint8_t cb[16] = {'X', 'D', 'P', 0};
      store_le64(cb + 4, segment_);  // cb[12, 16): the block counter, from 0
      ctr_ = std::make_unique<Aes256Ctr>(key_.data(), cb, AesKeyUse::kSecret);
      secure_zero(cb, sizeof(cb));
      ++segment_;
      left_ = kSegmentBytes;
    }
    const size_t take = static_cast<uint64_t>(n) < left_ ? n : static_cast<size_t>(left_);
    ctr_->fill(out, take);
    out += take;
    n -= take;
    left_ -= take;
    drawn_ += take;
  }
}

void RealSampler::uniform(double* out, size_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  uint8_t* buf = buf_.data();
  for (size_t done = 0; done < n;) {
    const size_t c = n - done < 4 * kChunk ? n - done : 4 * kChunk;
    keystream(buf, 8 * c);
    for (size_t i = 0; i < c; ++i) out[done + i] = detail::real_math::unit_of(load_le64(buf + 8 * i));
    secure_zero(buf, 8 * c);
    done += c;
  }
}

void RealSampler::gaussian(double std, double* out, size_t n) {
  if (!(std >= 0.0) || !std::isfinite(std)) throw std::invalid_argument("gaussian: std must be finite and non-negative");
  std::lock_guard<std::mutex> lock(mu_);
  uint8_t* buf = buf_.data();
#ifdef XCLOUD_HAVE_AVX2
  const bool simd = simd_enabled();
#endif
  for (size_t done = 0; done < n;) {
    const size_t c = n - done < kChunk ? n - done : kChunk;
    const size_t words_bytes = 32 * (c + (c & 1));  // an odd last value still draws its pair's 64 bytes
    keystream(buf, words_bytes);
    size_t i = 0;
#ifdef XCLOUD_HAVE_AVX2
    if (simd) {
      detail::gaussian_from_words_avx2(buf, std, out + done, c);
      i = c - c % 8;
    }
#endif
    detail::gaussian_from_words_scalar(buf + 32 * i, std, out + done + i, c - i);
    secure_zero(buf, words_bytes);
    done += c;
  }
}

}  // namespace xcloud
