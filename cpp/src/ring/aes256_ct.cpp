// Constant-time portable AES-256 (FIPS 197): key expansion, block encryption
// and counter mode, for keys that are secret (ring/aes256.h, AesKeyUse).
//
// Bitsliced: a batch of blocks is held as eight words, word b carrying bit b
// of every state byte, so SubBytes becomes a fixed boolean circuit evaluated
// on all bytes at once and nothing ever indexes memory or branches by a
// value derived from the key or the state. The S-box is computed, not looked
// up: the inverse in GF(2^8) = GF(2)[x]/(x^8 + x^4 + x^3 + x + 1) (0 maps to
// 0 by itself), through the tower field GF((2^4)^2) (see sub_bytes), then
// the affine map of FIPS 197 section 5.1.1.
//
// Layout. A 64-bit lane holds four blocks: bit i of slice b is bit b of byte
// i of the four blocks laid end to end (i = 16 block + 4 column + row, the
// state's column-major order). A Word is two such lanes (a GCC/Clang vector
// of two uint64, SSE2 or NEON or plain code), so a batch is eight blocks and
// the two halves give the compiler independent work. ShiftRows moves row r
// of each 16-bit group by 4 r bit positions, MixColumns rotates within each
// 4-bit column group: shifts and masks with constant amounts.
//
// The round keys are bitsliced once per call (replicated into every block
// position) and wiped with secure_zero before returning, as are the batch
// buffers. Temporaries the compiler keeps in registers or spills to the
// stack are out of reach of C++ and are not wiped (as in the other kernels).
#include <cstring>

#include "ring/aes256.h"
#include "ring/aes256_schedule.h"
#include "ring/endian.h"
#include "ring/secure.h"

namespace xcloud {

namespace {

typedef uint64_t Word __attribute__((vector_size(16)));
constexpr size_t kLanes = sizeof(Word) / sizeof(uint64_t);
constexpr size_t kBatchBlocks = 4 * kLanes;
constexpr size_t kBatchBytes = 16 * kBatchBlocks;

// Transposes the 8x8 bit matrix in each lane: bit 8 j + b goes to 8 b + j.
template <typename T>
inline T transpose_bits(T x) {
  T t = (x ^ (x >> 7)) & 0x00AA00AA00AA00AAull;
  x = x ^ t ^ (t << 7);
  t = (x ^ (x >> 14)) & 0x0000CCCC0000CCCCull;
  x = x ^ t ^ (t << 14);
  t = (x ^ (x >> 28)) & 0x00000000F0F0F0F0ull;
  return x ^ t ^ (t << 28);
}

// Exchanges the bits of a at the positions `mask << shift` with those of b at `mask`.
inline void swap_move(Word& a, Word& b, uint64_t mask, int shift) {
  const Word t = ((a >> shift) ^ b) & mask;
  b ^= t;
  a ^= t << shift;
}

// Transposes the 8x8 byte matrix formed by the eight words (word k, byte b -> word b, byte k), per lane.
inline void transpose_bytes(Word w[8]) {
  for (int k = 0; k < 4; ++k) swap_move(w[k], w[k + 4], 0x00000000FFFFFFFFull, 32);
  for (int k : {0, 1, 4, 5}) swap_move(w[k], w[k + 2], 0x0000FFFF0000FFFFull, 16);
  for (int k = 0; k < 8; k += 2) swap_move(w[k], w[k + 1], 0x00FF00FF00FF00FFull, 8);
}

// kBatchBytes bytes -> slices: lane l takes bytes [64 l, 64 l + 64).
inline void bitslice(const uint8_t* in, Word s[8]) {
  for (int k = 0; k < 8; ++k) {
    for (size_t l = 0; l < kLanes; ++l) s[k][l] = load_le64(in + 64 * l + 8 * k);
    s[k] = transpose_bits(s[k]);
  }
  transpose_bytes(s);
}

// The inverse of bitslice (both transpositions are involutions; applied in the other order).
inline void unbitslice(Word s[8], uint8_t* out) {
  transpose_bytes(s);
  for (int k = 0; k < 8; ++k) {
    s[k] = transpose_bits(s[k]);
    for (size_t l = 0; l < kLanes; ++l) store_le64(out + 64 * l + 8 * k, s[k][l]);
  }
}

// The S-box works in the tower field GF((2^4)^2): GF(16) = GF(2)[z]/(z^4 +
// z + 1), and GF(256) = GF(16)[y]/(y^2 + y + 8) (8 = z^3 is not of the form
// t^2 + t, so the quadratic is irreducible). An element is ah y + al (al in
// bits 0-3, ah in bits 4-7), and
//   (ah y + al)^-1 = (ah y + (ah + al)) D^-1,  D = 8 ah^2 + ah al + al^2,
// which costs three GF(16) products, one GF(16) inverse and linear maps,
// a third of x^254 in GF(256) directly. The maps into and out of the tower
// basis are 8x8 matrices over GF(2): phi sends x (of the AES polynomial) to
// beta = 0x20, a root of x^8 + x^4 + x^3 + x + 1 in the tower field, and the
// way out is phi^-1 followed by the linear part of the affine map, in one
// matrix. They were derived by a short script that also checked the whole
// chain on all 256 inputs; the test of the S-box on all 256 inputs checks
// it here. Row k of a matrix is the mask of the input bits whose xor is
// output bit k.
constexpr uint8_t kToTower[8] = {0xa1, 0x04, 0xfc, 0x18, 0x70, 0xd2, 0xac, 0xa0};
constexpr uint8_t kFromTowerAffine[8] = {0x45, 0x3f, 0x69, 0x25, 0x3b, 0xee, 0xd0, 0x06};
constexpr uint8_t kSquare16[4] = {0x05, 0x04, 0x0a, 0x08};        // x -> x^2 in GF(16)
constexpr uint8_t kSquareTimes8[4] = {0x04, 0x0e, 0x02, 0x0d};    // x -> 8 x^2
constexpr uint8_t kFourthPower16[4] = {0x0f, 0x0a, 0x0c, 0x08};   // x -> x^4

// out = rows * in over GF(2), on slices. The rows are compile-time
// constants, so once unrolled the branches vanish; they never depend on data.
template <int kBits>
inline void linear(const uint8_t (&rows)[kBits], const Word* in, Word* out) {
#pragma GCC unroll 8
  for (int k = 0; k < kBits; ++k) {
    Word acc = Word{};
#pragma GCC unroll 8
    for (int j = 0; j < kBits; ++j) {
      if ((rows[k] >> j) & 1) acc ^= in[j];
    }
    out[k] = acc;
  }
}

// r = a b in GF(16): the schoolbook product, then z^k = z^(k-3) + z^(k-4) for k = 6, 5, 4.
inline void gf16_mul(const Word a[4], const Word b[4], Word r[4]) {
  Word p[7];
  for (int k = 0; k < 7; ++k) p[k] = Word{};
  for (int i = 0; i < 4; ++i) {
    for (int j = 0; j < 4; ++j) p[i + j] ^= a[i] & b[j];
  }
  for (int k = 6; k >= 4; --k) {
    p[k - 3] ^= p[k];
    p[k - 4] ^= p[k];
  }
  for (int k = 0; k < 4; ++k) r[k] = p[k];
}

// SubBytes on every byte of the batch.
void sub_bytes(Word s[8]) {
  Word t[8];
  linear<8>(kToTower, s, t);
  const Word* al = t;
  const Word* ah = t + 4;
  Word d[4], m[4], q[4];
  linear<4>(kSquareTimes8, ah, d);
  linear<4>(kSquare16, al, q);
  gf16_mul(ah, al, m);
  for (int k = 0; k < 4; ++k) d[k] ^= m[k] ^ q[k];
  // D^-1 = D^14 = D^12 D^2 (and 0 -> 0, so the byte 0 maps to 0 before the affine map).
  Word d2[4], d3[4], d12[4], di[4];
  linear<4>(kSquare16, d, d2);
  gf16_mul(d2, d, d3);
  linear<4>(kFourthPower16, d3, d12);
  gf16_mul(d12, d2, di);
  Word sum[4], inv[8];
  for (int k = 0; k < 4; ++k) sum[k] = ah[k] ^ al[k];
  gf16_mul(sum, di, inv);     // low half: (ah + al) D^-1
  gf16_mul(ah, di, inv + 4);  // high half: ah D^-1
  linear<8>(kFromTowerAffine, inv, s);
  // The affine map's constant 0x63 (bits 0, 1, 5, 6): a complement of those slices.
  s[0] = ~s[0];
  s[1] = ~s[1];
  s[5] = ~s[5];
  s[6] = ~s[6];
}

// ShiftRows: the byte at column c, row r takes the one at column c + r, i.e.
// bit position p (within a 16-bit block group) takes p + 4 r mod 16.
inline Word shift_rows1(Word x) {
  constexpr uint64_t r0 = 0x1111111111111111ull, r1 = r0 << 1, r2 = r0 << 2, r3 = r0 << 3;
  return (x & r0) | ((x >> 4) & (r1 & 0x0FFF0FFF0FFF0FFFull)) | ((x << 12) & (r1 & 0xF000F000F000F000ull)) |
         ((x >> 8) & (r2 & 0x00FF00FF00FF00FFull)) | ((x << 8) & (r2 & 0xFF00FF00FF00FF00ull)) |
         ((x >> 12) & (r3 & 0x000F000F000F000Full)) | ((x << 4) & (r3 & 0xFFF0FFF0FFF0FFF0ull));
}

// Within each column (4-bit group), row r takes row r + k mod 4.
inline Word rot_rows1(Word x) { return ((x >> 1) & 0x7777777777777777ull) | ((x << 3) & 0x8888888888888888ull); }
inline Word rot_rows2(Word x) { return ((x >> 2) & 0x3333333333333333ull) | ((x << 2) & 0xCCCCCCCCCCCCCCCCull); }

// MixColumns as in the reference: a_r ^ (a_0 ^ a_1 ^ a_2 ^ a_3) ^ xtime(a_r ^ a_(r+1)).
inline void mix_columns(Word s[8]) {
  Word t[8], all[8];
  for (int b = 0; b < 8; ++b) {
    t[b] = s[b] ^ rot_rows1(s[b]);
    all[b] = t[b] ^ rot_rows2(t[b]);
  }
  // xtime on slices: bit b of 2y is y_(b-1), and y_7 (the reduction by 0x1b) enters bits 0, 1, 3, 4.
  const Word hi = t[7];
  s[7] ^= all[7] ^ t[6];
  s[6] ^= all[6] ^ t[5];
  s[5] ^= all[5] ^ t[4];
  s[4] ^= all[4] ^ t[3] ^ hi;
  s[3] ^= all[3] ^ t[2] ^ hi;
  s[2] ^= all[2] ^ t[1];
  s[1] ^= all[1] ^ t[0] ^ hi;
  s[0] ^= all[0] ^ hi;
}

inline void add_round_key(Word s[8], const Word k[8]) {
  for (int b = 0; b < 8; ++b) s[b] ^= k[b];
}

// The round keys, bitsliced and replicated into each of the batch's blocks.
// A round key is one block, so its 16-bit pattern per slice (bit p = bit b
// of byte p) comes from two 8x8 transposes, then is copied into the four
// blocks of each lane: much cheaper than bitslicing eight copies.
struct SlicedKeys {
  Word k[15][8];
  explicit SlicedKeys(const uint8_t rk[240]) {
    for (int r = 0; r < 15; ++r) {
      const uint64_t lo = transpose_bits(load_le64(rk + 16 * r));  // byte b, bit j: bit b of key byte j
      const uint64_t hi = transpose_bits(load_le64(rk + 16 * r + 8));
      for (int b = 0; b < 8; ++b) {
        const uint64_t p = ((lo >> (8 * b)) & 0xff) | (((hi >> (8 * b)) & 0xff) << 8);
        k[r][b] = Word{} + (p | (p << 16) | (p << 32) | (p << 48));
      }
    }
  }
  ~SlicedKeys() { secure_zero(k, sizeof(k)); }
  SlicedKeys(const SlicedKeys&) = delete;
  SlicedKeys& operator=(const SlicedKeys&) = delete;
};

// Encrypts the kBatchBlocks blocks of buf in place.
void encrypt_batch(const SlicedKeys& keys, uint8_t buf[kBatchBytes]) {
  Word s[8];
  bitslice(buf, s);
  add_round_key(s, keys.k[0]);
  for (int r = 1; r < 14; ++r) {
    sub_bytes(s);
    for (int b = 0; b < 8; ++b) s[b] = shift_rows1(s[b]);
    mix_columns(s);
    add_round_key(s, keys.k[r]);
  }
  sub_bytes(s);
  for (int b = 0; b < 8; ++b) s[b] = shift_rows1(s[b]);
  add_round_key(s, keys.k[14]);
  unbitslice(s, buf);
}

// SubBytes on n <= kBatchBytes bytes in place (the key schedule, the S-box test).
void sub_bytes_of(uint8_t* bytes, size_t n) {
  uint8_t buf[kBatchBytes] = {0};
  std::memcpy(buf, bytes, n);
  Word s[8];
  bitslice(buf, s);
  sub_bytes(s);
  unbitslice(s, buf);
  std::memcpy(bytes, buf, n);
  secure_zero(s, sizeof(s));
  secure_zero(buf, sizeof(buf));
}

}  // namespace

void aes256_expand_key_ct(const uint8_t key[32], uint8_t rk[240]) {
  // SubWord through the bitsliced S-box.
  detail::aes256_schedule(key, rk, [](uint8_t t[4]) { sub_bytes_of(t, 4); });
}

void aes256_encrypt_blocks_ct(const uint8_t rk[240], const uint8_t* in, uint8_t* out, size_t blocks) {
  const SlicedKeys keys(rk);
  uint8_t buf[kBatchBytes];
  for (size_t i = 0; i < blocks; i += kBatchBlocks) {
    const size_t m = blocks - i < kBatchBlocks ? blocks - i : kBatchBlocks;
    std::memset(buf, 0, sizeof(buf));
    std::memcpy(buf, in + 16 * i, 16 * m);
    encrypt_batch(keys, buf);
    std::memcpy(out + 16 * i, buf, 16 * m);
  }
  secure_zero(buf, sizeof(buf));
}

namespace detail {

uint8_t aes256_sbox_ct(uint8_t x) {
  sub_bytes_of(&x, 1);
  return x;
}

void aes256_ctr_ct(const uint8_t rk[240], const uint8_t prefix[12], uint32_t ctr, size_t blocks, uint8_t* out) {
  const SlicedKeys keys(rk);
  uint8_t buf[kBatchBytes];
  for (size_t b = 0; b < kBatchBlocks; ++b) std::memcpy(buf + 16 * b, prefix, 12);
  for (size_t i = 0; i < blocks; i += kBatchBlocks) {
    const size_t m = blocks - i < kBatchBlocks ? blocks - i : kBatchBlocks;
    for (size_t b = 0; b < kBatchBlocks; ++b) {  // a short last batch encrypts unused counters, never stored
      const uint32_t c = ctr + static_cast<uint32_t>(i + b);
      uint8_t* cb = buf + 16 * b;
      std::memcpy(cb, prefix, 12);
      cb[12] = static_cast<uint8_t>(c >> 24);
      cb[13] = static_cast<uint8_t>(c >> 16);
      cb[14] = static_cast<uint8_t>(c >> 8);
      cb[15] = static_cast<uint8_t>(c);
    }
    encrypt_batch(keys, buf);
    std::memcpy(out + 16 * i, buf, 16 * m);
  }
  secure_zero(buf, sizeof(buf));
}

}  // namespace detail

}  // namespace xcloud
