// ChaCha20 block function and keystream reader, written from RFC 8439.
#include "ring/chacha20.h"

#include <cstring>
#include <stdexcept>

#include "ring/chacha20_avx2.h"
#include "ring/secure.h"
#include "ring/simd.h"

namespace xcloud {

namespace {

// The four constant words are the ASCII string "expand 32-byte k" read as
// little-endian 32-bit integers.
constexpr uint32_t kSigma0 = 0x61707865u;
constexpr uint32_t kSigma1 = 0x3320646eu;
constexpr uint32_t kSigma2 = 0x79622d32u;
constexpr uint32_t kSigma3 = 0x6b206574u;

// Number of 64-byte blocks a 32-bit counter can address in total.
constexpr uint64_t kCounterLimit = uint64_t{1} << 32;

inline uint32_t load_le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}

inline void store_le32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
  p[2] = static_cast<uint8_t>(v >> 16);
  p[3] = static_cast<uint8_t>(v >> 24);
}

inline uint32_t rotl32(uint32_t v, int s) { return (v << s) | (v >> (32 - s)); }

// One quarter round on words a, b, c, d of the working state (RFC 8439 2.1).
inline void quarter_round(uint32_t x[16], int a, int b, int c, int d) {
  x[a] += x[b];
  x[d] = rotl32(x[d] ^ x[a], 16);
  x[c] += x[d];
  x[b] = rotl32(x[b] ^ x[c], 12);
  x[a] += x[b];
  x[d] = rotl32(x[d] ^ x[a], 8);
  x[c] += x[d];
  x[b] = rotl32(x[b] ^ x[c], 7);
}

// Lays out the 16-word input state: constants, key, counter, nonce.
void init_state(uint32_t st[16], const uint8_t key[32], uint32_t counter,
                const uint8_t nonce[12]) {
  st[0] = kSigma0;
  st[1] = kSigma1;
  st[2] = kSigma2;
  st[3] = kSigma3;
  for (int i = 0; i < 8; ++i) st[4 + i] = load_le32(key + 4 * i);
  st[12] = counter;
  for (int i = 0; i < 3; ++i) st[13 + i] = load_le32(nonce + 4 * i);
}

// Runs the 20 rounds (10 column/diagonal double rounds) on a copy of `in`,
// adds `in` back, and serializes the result little-endian into out.
void block_from_state(const uint32_t in[16], uint8_t out[64]) {
  uint32_t x[16];
  for (int i = 0; i < 16; ++i) x[i] = in[i];
  for (int r = 0; r < 10; ++r) {
    // Column round.
    quarter_round(x, 0, 4, 8, 12);
    quarter_round(x, 1, 5, 9, 13);
    quarter_round(x, 2, 6, 10, 14);
    quarter_round(x, 3, 7, 11, 15);
    // Diagonal round.
    quarter_round(x, 0, 5, 10, 15);
    quarter_round(x, 1, 6, 11, 12);
    quarter_round(x, 2, 7, 8, 13);
    quarter_round(x, 3, 4, 9, 14);
  }
  for (int i = 0; i < 16; ++i) store_le32(out + 4 * i, x[i] + in[i]);
  secure_zero(x, sizeof(x));  // the permuted state: with the output, it gives the key
}

}  // namespace

void chacha20_block(const uint8_t key[32], uint32_t counter, const uint8_t nonce[12],
                    uint8_t out[64]) {
  uint32_t st[16];
  init_state(st, key, counter, nonce);
  block_from_state(st, out);
  secure_zero(st, sizeof(st));
}

ChaCha20Stream::ChaCha20Stream(const uint8_t key[32], const uint8_t nonce[12],
                               uint32_t counter)
    : key_(), nonce_(), counter_(counter), buf_(), pos_(0) {
  for (size_t i = 0; i < key_.size(); ++i) key_[i] = key[i];
  for (size_t i = 0; i < nonce_.size(); ++i) nonce_[i] = nonce[i];
  pos_ = buf_.size();  // buffer starts empty
}

ChaCha20Stream::~ChaCha20Stream() {
  secure_zero(key_.data(), key_.size());
  secure_zero(nonce_.data(), nonce_.size());
  secure_zero(buf_.data(), buf_.size());
}

void ChaCha20Stream::generate(uint8_t* out, size_t blocks) {
  uint32_t st[16];
  init_state(st, key_.data(), static_cast<uint32_t>(counter_), nonce_.data());
  size_t b = 0;
#ifdef XCLOUD_HAVE_AVX2
  if (blocks >= 8 && simd_enabled()) {
    b = blocks & ~size_t{7};
    detail::chacha20_blocks8_avx2(st, out, b / 8);
  }
#endif
  for (; b < blocks; ++b) {
    st[12] = static_cast<uint32_t>(counter_ + b);
    block_from_state(st, out + 64 * b);
  }
  secure_zero(st, sizeof(st));
  counter_ += blocks;
}

// Produces up to eight fresh blocks. Normally all eight fill the buffer; near
// the end of the counter space only the remaining k blocks are generated and
// they are placed at the tail of buf_, with pos_ pointing at the first one,
// so the consumer never sees bytes from a wrapped counter.
void ChaCha20Stream::refill() {
  const size_t kBlocks = buf_.size() / 64;
  const uint64_t remaining = kCounterLimit - counter_;
  const size_t k = remaining < kBlocks ? static_cast<size_t>(remaining) : kBlocks;
  if (k == 0) throw std::length_error("ChaCha20Stream: block counter exhausted");
  const size_t start = (kBlocks - k) * 64;
  generate(buf_.data() + start, k);
  pos_ = start;
}

void ChaCha20Stream::fill(uint8_t* out, size_t n) {
  // Refuse up front (before producing anything) if the request would need
  // blocks beyond counter 2^32 - 1. counter_ <= 2^32, so this cannot overflow.
  const uint64_t buffered = buf_.size() - pos_;
  const uint64_t available = buffered + (kCounterLimit - counter_) * 64;
  if (static_cast<uint64_t>(n) > available) {
    throw std::length_error("ChaCha20Stream: request would wrap the 32-bit block counter");
  }
  size_t done = 0;
  while (done < n) {
    if (pos_ == buf_.size()) {
      // Whole blocks go straight to the output (the check above guarantees
      // they stay below the counter limit); the rest through the buffer.
      const size_t direct = (n - done) / 64;
      if (direct > 0) {
        generate(out + done, direct);
        done += 64 * direct;
        continue;
      }
      refill();
    }
    size_t take = buf_.size() - pos_;
    if (take > n - done) take = n - done;
    std::memcpy(out + done, buf_.data() + pos_, take);
    pos_ += take;
    done += take;
  }
}

uint64_t ChaCha20Stream::next_u64() {
  uint8_t b[8];
  const uint8_t* src = b;
  if (buf_.size() - pos_ >= sizeof(b)) {
    // Fast path: the 8 bytes are already buffered.
    src = buf_.data() + pos_;
    pos_ += sizeof(b);
  } else {
    fill(b, sizeof(b));
  }
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | src[i];
  if (src == b) secure_zero(b, sizeof(b));  // the slow path's copy of the keystream
  return v;
}

}  // namespace xcloud
