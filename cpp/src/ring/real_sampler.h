#pragma once
// Uniform and Gaussian reals from a secret AES-256-CTR keystream: the
// randomness of differential privacy (the Gaussian noise of DP-SGD and of
// client-level DP, and the Poisson choice of each step's records;
// python/xcloud/privacy). It is not key material, but whoever could predict
// it could subtract the noise or replay which records a step used, so it
// comes from a stream cipher under a key from the OS CSPRNG, not from a
// general-purpose generator such as PyTorch's Mersenne Twister.
//
// Keystream: AES-256-CTR (ring/aes256.h, AesKeyUse::kSecret: constant-time on
// every path) under the sampler's 32-byte key, from counter block
// "XDP\0" || LE64(segment) || BE32(0). A segment holds 2^32 blocks (64 GiB);
// the next one starts where it ends, so the stream never wraps.
//
// Values, from little-endian 8-byte keystream words w (in keystream order):
//   - uniform: v(w) = (w >> 12) * 2^-52, in [0, 1) (one word each);
//   - gaussian: eight words (u1, v1, ..., u4, v4) for each two values: four
//     Box-Muller pairs, r_i = sqrt(-2 log(1 - v(u_i))) and theta_i = 2 pi
//     v(v_i); value 2k is std * (sum of r_i cos theta_i) / 2 and value 2k + 1
//     std * (sum of r_i sin theta_i) / 2. The cosine and sine halves of a pair
//     are independent standard normals, so each value is the sum of four
//     independent standard normals over 2, again standard normal. Summing 2n
//     samples is the defence of Holohan and Braghin (2021, section 5.1)
//     against the floating-point attacks on Gaussian samplers (Jin et al.,
//     2021), the one Opacus's secure_mode takes, with n = 2. |value| <= 4 *
//     sqrt(2 * 52 * ln 2) / 2 * std = 16.98 std (the tail beyond has
//     probability below 10^-60). A call of n values draws 64 ceil(n / 2)
//     bytes (an odd last value drops its sine half), so calls of even sizes
//     continue one stream exactly.
// log, cos and sin are polynomials evaluated without a branch (log: the
// atanh series of the mantissa, to 2^-52 relative; sin and cos: Taylor
// series on [-pi/4, pi/4] after an exact reduction by quarter turns), so the
// time taken does not depend on the values (on CPUs whose division and
// square root take a fixed time, as current x86 cores' do). The AVX2 path
// computes the same operations in the same order as the scalar reference,
// eight values at a time, and gives the same bits (both compiled without
// contraction).
//
// Thread safety: one sampler may be used from several threads (a mutex
// serialises its calls); distinct samplers are independent.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>

#include "ring/aes256.h"
#include "ring/secure_vector.h"

namespace xcloud {

class RealSampler {
 public:
  // The key is copied; the copy, the cipher state and the buffered keystream
  // are wiped on destruction.
  explicit RealSampler(const uint8_t key[32]);
  // A fresh key from the OS CSPRNG (os_random_bytes), never seen outside.
  RealSampler();
  ~RealSampler();
  RealSampler(const RealSampler&) = delete;
  RealSampler& operator=(const RealSampler&) = delete;

  // The next n uniform values in [0, 1).
  void uniform(double* out, size_t n);

  // The next n Gaussian values of mean 0 and standard deviation `std`.
  // @throws std::invalid_argument if std is negative or not finite.
  void gaussian(double std, double* out, size_t n);

  // Keystream bytes drawn so far (8 per uniform value, 64 per two Gaussian ones).
  uint64_t bytes_drawn() const;

 private:
  void keystream(uint8_t* out, size_t n);  // caller holds mu_
  std::array<uint8_t, 32> key_;
  uint64_t segment_ = 0;  // of the stream now open
  uint64_t left_ = 0;     // keystream bytes left in it
  uint64_t drawn_ = 0;
  std::unique_ptr<Aes256Ctr> ctr_;
  SecureVector<uint8_t> buf_;
  mutable std::mutex mu_;
};

namespace detail {

// The per-value functions of the gaussian transform (scalar reference), for
// the tests against libm: log(u) for u in [2^-52, 1], and cos and sin of
// 2 pi v for v in [0, 1).
double real_sampler_log(double u);
void real_sampler_cos_sin(double v, double* c, double* s);

// The transform of `n` values from 8 ceil(n / 2) keystream words (words
// [8 k, 8 k + 8) for values 2k and 2k + 1), scalar reference.
void gaussian_from_words_scalar(const uint8_t* words, double std, double* out, size_t n);

}  // namespace detail
}  // namespace xcloud
