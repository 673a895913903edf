// SHA-256, written from the description in FIPS 180-4.
#include "ring/sha256.h"

#include "ring/secure.h"
#include "ring/simd.h"
#ifdef XCLOUD_HAVE_AVX2
#include "ring/sha256_ni.h"
#endif

namespace xcloud {

namespace {

// Round constants K[0..63]: the first 32 bits of the fractional parts of the
// cube roots of the first 64 primes (2, 3, 5, ..., 311), i.e.
// floor(frac(cbrt(p)) * 2^32). Regenerated with exact integer arithmetic and
// checked against FIPS 180-4 section 4.2.2.
constexpr uint32_t kRound[64] = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u,
    0x3956c25bu, 0x59f111f1u, 0x923f82a4u, 0xab1c5ed5u,
    0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u,
    0x72be5d74u, 0x80deb1feu, 0x9bdc06a7u, 0xc19bf174u,
    0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu,
    0x2de92c6fu, 0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau,
    0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u,
    0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u,
    0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu, 0x53380d13u,
    0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u,
    0xa2bfe8a1u, 0xa81a664bu, 0xc24b8b70u, 0xc76c51a3u,
    0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u,
    0x19a4c116u, 0x1e376c08u, 0x2748774cu, 0x34b0bcb5u,
    0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u,
    0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u,
    0x90befffau, 0xa4506cebu, 0xbef9a3f7u, 0xc67178f2u,
};

// Initial hash value H(0): the first 32 bits of the fractional parts of the
// square roots of the first 8 primes (FIPS 180-4 section 5.3.3).
constexpr uint32_t kInit[8] = {
    0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
    0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u,
};

inline uint32_t rotr32(uint32_t v, int s) { return (v >> s) | (v << (32 - s)); }

inline uint32_t load_be32(const uint8_t* p) {
  return (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
         (static_cast<uint32_t>(p[2]) << 8) | static_cast<uint32_t>(p[3]);
}

inline void store_be32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

}  // namespace

Sha256::Sha256() : h_(), buf_(), w_(), buf_len_(0), total_len_(0) {
  for (int i = 0; i < 8; ++i) h_[i] = kInit[i];
}

Sha256::~Sha256() {
  secure_zero(buf_.data(), buf_.size());
  secure_zero(w_.data(), sizeof(w_));
}

namespace {

bool use_ni() {
#ifdef XCLOUD_HAVE_AVX2
  return simd_enabled() && detail::sha256_cpu_has_ni();
#else
  return false;
#endif
}

}  // namespace

const char* sha256_path() { return use_ni() ? "sha-ni" : "portable"; }

// Processes `count` 64-byte message blocks (FIPS 180-4 section 6.2.2).
void Sha256::compress(const uint8_t* blocks, size_t count) {
#ifdef XCLOUD_HAVE_AVX2
  if (use_ni()) {
    detail::sha256_blocks_ni(h_.data(), blocks, count, kRound);
    return;
  }
#endif
  for (size_t b = 0; b < count; ++b) compress_portable(blocks + 64 * b);
}

// The portable compression of one block.
void Sha256::compress_portable(const uint8_t block[64]) {
  // Message schedule W[0..63], kept in the object so that the destructor can
  // wipe it (a stack array would be left behind with words of the message).
  uint32_t* const w = w_.data();
  for (int t = 0; t < 16; ++t) w[t] = load_be32(block + 4 * t);
  for (int t = 16; t < 64; ++t) {
    const uint32_t s0 = rotr32(w[t - 15], 7) ^ rotr32(w[t - 15], 18) ^ (w[t - 15] >> 3);
    const uint32_t s1 = rotr32(w[t - 2], 17) ^ rotr32(w[t - 2], 19) ^ (w[t - 2] >> 10);
    w[t] = w[t - 16] + s0 + w[t - 7] + s1;
  }

  uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3];
  uint32_t e = h_[4], f = h_[5], g = h_[6], h = h_[7];
  for (int t = 0; t < 64; ++t) {
    const uint32_t big_s1 = rotr32(e, 6) ^ rotr32(e, 11) ^ rotr32(e, 25);
    const uint32_t ch = (e & f) ^ (~e & g);
    const uint32_t t1 = h + big_s1 + ch + kRound[t] + w[t];
    const uint32_t big_s0 = rotr32(a, 2) ^ rotr32(a, 13) ^ rotr32(a, 22);
    const uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
    const uint32_t t2 = big_s0 + maj;
    h = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  h_[0] += a;
  h_[1] += b;
  h_[2] += c;
  h_[3] += d;
  h_[4] += e;
  h_[5] += f;
  h_[6] += g;
  h_[7] += h;
}

void Sha256::update(const void* data, size_t n) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  total_len_ += static_cast<uint64_t>(n);
  size_t i = 0;
  // Top up a partially filled buffer first.
  if (buf_len_ > 0) {
    while (i < n && buf_len_ < buf_.size()) buf_[buf_len_++] = p[i++];
    if (buf_len_ < buf_.size()) return;
    compress(buf_.data(), 1);
    buf_len_ = 0;
  }
  // Whole blocks straight from the input.
  const size_t whole = (n - i) / 64;
  if (whole > 0) {
    compress(p + i, whole);
    i += 64 * whole;
  }
  // Keep the tail for later.
  while (i < n) buf_[buf_len_++] = p[i++];
}

std::array<uint8_t, 32> Sha256::finish() {
  // Padding: a single 0x80 byte, zeros up to 56 mod 64, then the message
  // length in bits as a 64-bit big-endian integer.
  const uint64_t bit_len = total_len_ * 8;
  buf_[buf_len_++] = 0x80;
  if (buf_len_ > 56) {
    while (buf_len_ < 64) buf_[buf_len_++] = 0;
    compress(buf_.data(), 1);
    buf_len_ = 0;
  }
  while (buf_len_ < 56) buf_[buf_len_++] = 0;
  for (int i = 0; i < 8; ++i) {
    buf_[56 + i] = static_cast<uint8_t>(bit_len >> (56 - 8 * i));
  }
  compress(buf_.data(), 1);
  buf_len_ = 0;

  std::array<uint8_t, 32> out{};
  for (int i = 0; i < 8; ++i) store_be32(out.data() + 4 * i, h_[i]);
  return out;
}

std::array<uint8_t, 32> sha256(const void* data, size_t n) {
  Sha256 ctx;
  ctx.update(data, n);
  return ctx.finish();
}

}  // namespace xcloud
