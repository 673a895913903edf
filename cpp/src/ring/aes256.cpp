// AES-256-CTR: the table reference (public keys), the run-time choice
// between the implementations and the Aes256Ctr keystream reader
// (ring/aes256.h). The constant-time portable path is in aes256_ct.cpp, the
// AES-NI and VAES kernels in aes256_ni.cpp and aes256_vaes.cpp.
#include "ring/aes256.h"

#include <atomic>
#include <cstring>
#include <stdexcept>

#include "ring/aes256_schedule.h"
#include "ring/secure.h"
#include "ring/simd.h"

namespace xcloud {

namespace {

// The S-box of FIPS 197, figure 7.
constexpr uint8_t kSbox[256] = {
    0x63, 0x7c, 0x77, 0x7b, 0xf2, 0x6b, 0x6f, 0xc5, 0x30, 0x01, 0x67, 0x2b, 0xfe, 0xd7, 0xab, 0x76, 0xca, 0x82, 0xc9,
    0x7d, 0xfa, 0x59, 0x47, 0xf0, 0xad, 0xd4, 0xa2, 0xaf, 0x9c, 0xa4, 0x72, 0xc0, 0xb7, 0xfd, 0x93, 0x26, 0x36, 0x3f,
    0xf7, 0xcc, 0x34, 0xa5, 0xe5, 0xf1, 0x71, 0xd8, 0x31, 0x15, 0x04, 0xc7, 0x23, 0xc3, 0x18, 0x96, 0x05, 0x9a, 0x07,
    0x12, 0x80, 0xe2, 0xeb, 0x27, 0xb2, 0x75, 0x09, 0x83, 0x2c, 0x1a, 0x1b, 0x6e, 0x5a, 0xa0, 0x52, 0x3b, 0xd6, 0xb3,
    0x29, 0xe3, 0x2f, 0x84, 0x53, 0xd1, 0x00, 0xed, 0x20, 0xfc, 0xb1, 0x5b, 0x6a, 0xcb, 0xbe, 0x39, 0x4a, 0x4c, 0x58,
    0xcf, 0xd0, 0xef, 0xaa, 0xfb, 0x43, 0x4d, 0x33, 0x85, 0x45, 0xf9, 0x02, 0x7f, 0x50, 0x3c, 0x9f, 0xa8, 0x51, 0xa3,
    0x40, 0x8f, 0x92, 0x9d, 0x38, 0xf5, 0xbc, 0xb6, 0xda, 0x21, 0x10, 0xff, 0xf3, 0xd2, 0xcd, 0x0c, 0x13, 0xec, 0x5f,
    0x97, 0x44, 0x17, 0xc4, 0xa7, 0x7e, 0x3d, 0x64, 0x5d, 0x19, 0x73, 0x60, 0x81, 0x4f, 0xdc, 0x22, 0x2a, 0x90, 0x88,
    0x46, 0xee, 0xb8, 0x14, 0xde, 0x5e, 0x0b, 0xdb, 0xe0, 0x32, 0x3a, 0x0a, 0x49, 0x06, 0x24, 0x5c, 0xc2, 0xd3, 0xac,
    0x62, 0x91, 0x95, 0xe4, 0x79, 0xe7, 0xc8, 0x37, 0x6d, 0x8d, 0xd5, 0x4e, 0xa9, 0x6c, 0x56, 0xf4, 0xea, 0x65, 0x7a,
    0xae, 0x08, 0xba, 0x78, 0x25, 0x2e, 0x1c, 0xa6, 0xb4, 0xc6, 0xe8, 0xdd, 0x74, 0x1f, 0x4b, 0xbd, 0x8b, 0x8a, 0x70,
    0x3e, 0xb5, 0x66, 0x48, 0x03, 0xf6, 0x0e, 0x61, 0x35, 0x57, 0xb9, 0x86, 0xc1, 0x1d, 0x9e, 0xe1, 0xf8, 0x98, 0x11,
    0x69, 0xd9, 0x8e, 0x94, 0x9b, 0x1e, 0x87, 0xe9, 0xce, 0x55, 0x28, 0xdf, 0x8c, 0xa1, 0x89, 0x0d, 0xbf, 0xe6, 0x42,
    0x68, 0x41, 0x99, 0x2d, 0x0f, 0xb0, 0x54, 0xbb, 0x16};

inline uint8_t xtime(uint8_t b) { return static_cast<uint8_t>((b << 1) ^ ((b >> 7) * 0x1b)); }

// State as 16 bytes, column-major: s[4c + r] is row r of column c.
void sub_shift(uint8_t s[16]) {
  uint8_t t[16];
  for (int c = 0; c < 4; ++c) {
    for (int r = 0; r < 4; ++r) t[4 * c + r] = kSbox[s[4 * ((c + r) & 3) + r]];
  }
  std::memcpy(s, t, 16);
}

void mix_columns(uint8_t s[16]) {
  for (int c = 0; c < 4; ++c) {
    uint8_t* col = s + 4 * c;
    const uint8_t a0 = col[0], a1 = col[1], a2 = col[2], a3 = col[3];
    const uint8_t all = a0 ^ a1 ^ a2 ^ a3;
    col[0] = static_cast<uint8_t>(a0 ^ all ^ xtime(a0 ^ a1));
    col[1] = static_cast<uint8_t>(a1 ^ all ^ xtime(a1 ^ a2));
    col[2] = static_cast<uint8_t>(a2 ^ all ^ xtime(a2 ^ a3));
    col[3] = static_cast<uint8_t>(a3 ^ all ^ xtime(a3 ^ a0));
  }
}

inline void add_round_key(uint8_t s[16], const uint8_t* k) {
  for (int i = 0; i < 16; ++i) s[i] ^= k[i];
}

bool detect_aes() {
#if defined(XCLOUD_HAVE_AVX2) && (defined(__x86_64__) || defined(__i386__))
  __builtin_cpu_init();
  return __builtin_cpu_supports("aes") && __builtin_cpu_supports("sse4.1");
#else
  return false;
#endif
}

bool detect_vaes() {
#if defined(XCLOUD_HAVE_AVX2) && (defined(__x86_64__) || defined(__i386__))
  __builtin_cpu_init();
  return detect_aes() && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("vaes");
#else
  return false;
#endif
}

std::atomic<bool> g_force_portable{false};
std::atomic<bool> g_force_ni{false};

enum class Path { kPortable, kNi, kVaes };

Path current_path() {
  static const bool aes = detect_aes();
  static const bool vaes = detect_vaes();  // implies aes
  if (!simd_enabled() || g_force_portable.load(std::memory_order_relaxed) || !aes) return Path::kPortable;
  return vaes && !g_force_ni.load(std::memory_order_relaxed) ? Path::kVaes : Path::kNi;
}

}  // namespace

void aes256_expand_key(const uint8_t key[32], uint8_t rk[240]) {
  // SubWord by table lookups: public keys only (aes256.h).
  detail::aes256_schedule(key, rk, [](uint8_t t[4]) {
    for (int k = 0; k < 4; ++k) t[k] = kSbox[t[k]];
  });
}

void aes256_encrypt_block(const uint8_t rk[240], const uint8_t in[16], uint8_t out[16]) {
  uint8_t s[16];
  std::memcpy(s, in, 16);
  add_round_key(s, rk);
  for (int r = 1; r < 14; ++r) {
    sub_shift(s);
    mix_columns(s);
    add_round_key(s, rk + 16 * r);
  }
  sub_shift(s);
  add_round_key(s, rk + 16 * 14);
  std::memcpy(out, s, 16);
}

namespace {

// The classic 32-bit table form of one round (SubBytes, ShiftRows and
// MixColumns together). A column is a little-endian word (byte r = row r);
// a byte x of row 0 contributes (2 S[x], S[x], S[x], 3 S[x]) to its column,
// rows 1..3 the same rotated by 8, 16, 24 bits. Gives the bytes of
// aes256_encrypt_block (the test compares them); not constant-time, which
// only public seeds may rely on (see the header).
inline uint32_t rotl(uint32_t v, int k) { return (v << k) | (v >> (32 - k)); }

struct TTable {
  uint32_t t[4][256];  // t[r]: the contribution of a row-r byte, rotated by 8 r bits
  TTable() {
    for (int x = 0; x < 256; ++x) {
      const uint8_t sx = kSbox[x], s2 = xtime(sx), s3 = static_cast<uint8_t>(s2 ^ sx);
      const uint32_t w = uint32_t{s2} | (uint32_t{sx} << 8) | (uint32_t{sx} << 16) | (uint32_t{s3} << 24);
      t[0][x] = w;
      for (int r = 1; r < 4; ++r) t[r][x] = rotl(w, 8 * r);
    }
  }
};
const TTable kT;
inline uint32_t le32(const uint8_t* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}

void encrypt_block_tables(const uint32_t rkw[60], const uint8_t in[16], uint8_t out[16]) {
  uint32_t w[4];
  for (int c = 0; c < 4; ++c) w[c] = le32(in + 4 * c) ^ rkw[c];
  for (int r = 1; r < 14; ++r) {
    uint32_t n[4];
    for (int c = 0; c < 4; ++c) {
      n[c] = kT.t[0][w[c] & 0xff] ^ kT.t[1][(w[(c + 1) & 3] >> 8) & 0xff] ^ kT.t[2][(w[(c + 2) & 3] >> 16) & 0xff] ^
             kT.t[3][w[(c + 3) & 3] >> 24] ^ rkw[4 * r + c];
    }
    std::memcpy(w, n, sizeof(w));
  }
  for (int c = 0; c < 4; ++c) {
    const uint32_t v = (uint32_t{kSbox[w[c] & 0xff]}) | (uint32_t{kSbox[(w[(c + 1) & 3] >> 8) & 0xff]} << 8) |
                       (uint32_t{kSbox[(w[(c + 2) & 3] >> 16) & 0xff]} << 16) |
                       (uint32_t{kSbox[w[(c + 3) & 3] >> 24]} << 24);
    const uint32_t o = v ^ rkw[56 + c];
    for (int b = 0; b < 4; ++b) out[4 * c + b] = static_cast<uint8_t>(o >> (8 * b));
  }
}

}  // namespace

const char* aes256_ctr_path() { return aes256_ctr_path_for(AesKeyUse::kPublic); }

const char* aes256_ctr_path_for(AesKeyUse use) {
  switch (current_path()) {
    case Path::kVaes:
      return "vaes";
    case Path::kNi:
      return "aes-ni";
    default:
      return use == AesKeyUse::kSecret ? "portable-ct" : "portable";
  }
}

bool aes256_force_portable(bool force) { return g_force_portable.exchange(force, std::memory_order_relaxed); }

bool aes256_force_ni(bool force) { return g_force_ni.exchange(force, std::memory_order_relaxed); }

namespace detail {

uint8_t aes256_sbox_table(uint8_t x) { return kSbox[x]; }

bool aes256_cpu_has_aes_ni() {
  static const bool aes = detect_aes();
  return aes;
}

bool aes256_cpu_has_vaes() {
  static const bool vaes = detect_vaes();
  return vaes;
}

void aes256_ctr_portable(const uint8_t rk[240], const uint8_t prefix[12], uint32_t ctr, size_t blocks, uint8_t* out) {
  uint32_t rkw[60];
  for (int i = 0; i < 60; ++i) rkw[i] = le32(rk + 4 * i);
  uint8_t cb[16];
  std::memcpy(cb, prefix, 12);
  for (size_t i = 0; i < blocks; ++i) {
    const uint32_t c = ctr + static_cast<uint32_t>(i);
    cb[12] = static_cast<uint8_t>(c >> 24);
    cb[13] = static_cast<uint8_t>(c >> 16);
    cb[14] = static_cast<uint8_t>(c >> 8);
    cb[15] = static_cast<uint8_t>(c);
    encrypt_block_tables(rkw, cb, out + 16 * i);
  }
}

}  // namespace detail

Aes256Ctr::Aes256Ctr(const uint8_t key[32], const uint8_t counter_block[16], AesKeyUse use)
    : pos_(sizeof(buf_)), use_(use) {
  if (use == AesKeyUse::kPublic) {
    aes256_expand_key(key, rk_.data());
  } else {
    // A secret key never meets the table S-box: AESKEYGENASSIST where the
    // hardware path is taken, the bitsliced schedule otherwise.
#ifdef XCLOUD_HAVE_AVX2
    if (current_path() != Path::kPortable) {
      detail::aes256_expand_key_ni(key, rk_.data());
    } else {
      aes256_expand_key_ct(key, rk_.data());
    }
#else
    aes256_expand_key_ct(key, rk_.data());
#endif
  }
  std::memcpy(prefix_.data(), counter_block, 12);
  counter_ = (uint64_t{counter_block[12]} << 24) | (uint64_t{counter_block[13]} << 16) |
             (uint64_t{counter_block[14]} << 8) | uint64_t{counter_block[15]};
  end_ = uint64_t{1} << 32;  // the low 32 bits must not wrap
}

Aes256Ctr::~Aes256Ctr() {
  if (use_ == AesKeyUse::kSecret) {
    secure_zero(rk_.data(), rk_.size());
    secure_zero(buf_.data(), buf_.size());
  }
}

void Aes256Ctr::generate(uint8_t* out, size_t blocks) {
  if (counter_ + blocks > end_) throw std::length_error("AES-256-CTR: the 32-bit block counter would wrap");
  const uint32_t c = static_cast<uint32_t>(counter_);
  switch (current_path()) {
#ifdef XCLOUD_HAVE_AVX2
    case Path::kVaes:
      (use_ == AesKeyUse::kSecret ? detail::aes256_ctr_vaes_secret : detail::aes256_ctr_vaes)(rk_.data(),
                                                                                             prefix_.data(), c,
                                                                                             blocks, out);
      break;
    case Path::kNi:
      (use_ == AesKeyUse::kSecret ? detail::aes256_ctr_ni_secret : detail::aes256_ctr_ni)(rk_.data(), prefix_.data(),
                                                                                         c, blocks, out);
      break;
#endif
    default:
      if (use_ == AesKeyUse::kSecret) {
        detail::aes256_ctr_ct(rk_.data(), prefix_.data(), c, blocks, out);
      } else {
        detail::aes256_ctr_portable(rk_.data(), prefix_.data(), c, blocks, out);
      }
  }
  counter_ += blocks;
}

void Aes256Ctr::fill(uint8_t* out, size_t n) {
  while (n > 0) {
    if (pos_ < buf_.size()) {
      const size_t k = n < buf_.size() - pos_ ? n : buf_.size() - pos_;
      std::memcpy(out, buf_.data() + pos_, k);
      pos_ += k;
      out += k;
      n -= k;
      continue;
    }
    if (n >= 16) {  // whole blocks straight into the caller's buffer
      const size_t blocks = n / 16;
      generate(out, blocks);
      out += 16 * blocks;
      n -= 16 * blocks;
      continue;
    }
    const size_t left = (end_ - counter_) < buf_.size() / 16 ? static_cast<size_t>(end_ - counter_) : buf_.size() / 16;
    if (left == 0) throw std::length_error("AES-256-CTR: the 32-bit block counter would wrap");
    generate(buf_.data() + buf_.size() - 16 * left, left);
    pos_ = buf_.size() - 16 * left;
  }
}

}  // namespace xcloud
