// Known-answer tests for ChaCha20 (RFC 8439), AES-256 (FIPS 197) and
// AES-256-CTR (NIST SP 800-38A) on each of its implementations, SHA-256
// (FIPS 180-4), the OS randomness / wiping helpers and the division-free
// modular helpers for secret operands (against the plain formulas). Plain
// main(); non-zero exit on failure.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "ckks/byte_io.h"
#include "ring/aes256.h"
#include "ring/chacha20.h"
#include "ring/modarith.h"
#include "ring/real_sampler.h"
#include "ring/secure.h"
#include "ring/sha256.h"
#include "ring/simd.h"

using namespace xcloud;

namespace {

int g_failures = 0;

void check(bool ok, const std::string& what) {
  if (!ok) {
    ++g_failures;
    std::printf("FAIL: %s\n", what.c_str());
  } else {
    std::printf("ok:   %s\n", what.c_str());
  }
}

std::vector<uint8_t> from_hex(const char* s) {
  std::vector<uint8_t> out;
  int hi = -1;
  for (size_t i = 0; s[i] != '\0'; ++i) {
    const char c = s[i];
    int v;
    if (c >= '0' && c <= '9') v = c - '0';
    else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
    else continue;  // skip spaces and newlines
    if (hi < 0) {
      hi = v;
    } else {
      out.push_back(static_cast<uint8_t>(hi * 16 + v));
      hi = -1;
    }
  }
  return out;
}

bool equal_bytes(const uint8_t* a, const std::vector<uint8_t>& b, size_t n) {
  return b.size() == n && std::memcmp(a, b.data(), n) == 0;
}

struct BlockVector {
  const char* name;
  const char* key;
  const char* nonce;
  uint32_t counter;
  const char* block;
};

const BlockVector kBlockVectors[] = {
    {"RFC 8439 2.3.2 block",
     "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
     "000000090000004a00000000", 1,
     "10f1e7e4d13b5915500fdd1fa32071c4c7d1f4c733c068030422aa9ac3d46c4e"
     "d2826446079faa0914c2d705d98b02a2b5129cd1de164eb9cbd083e8a2503c4e"},
    {"RFC 8439 A.1 #1 block",
     "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", 0,
     "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7"
     "da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586"},
    {"RFC 8439 A.1 #2 block",
     "0000000000000000000000000000000000000000000000000000000000000000",
     "000000000000000000000000", 1,
     "9f07e7be5551387a98ba977c732d080dcb0f29a048e3656912c6533e32ee7aed"
     "29b721769ce64e43d57133b074d839d531ed1f28510afb45ace10a1f4b794d6f"},
};

const char kLadiesPlain[] =
    "Ladies and Gentlemen of the class of '99: If I could offer you only one "
    "tip for the future, sunscreen would be it.";
const char kLadiesCipher[] =
    "6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0b"
    "f91b65c5524733ab8f593dabcd62b3571639d624e65152ab8f530c359f0861d8"
    "07ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab7793736"
    "5af90bbf74a35be6b40b8eedf2785e42874d";

void test_chacha_blocks() {
  for (const BlockVector& v : kBlockVectors) {
    const std::vector<uint8_t> key = from_hex(v.key);
    const std::vector<uint8_t> nonce = from_hex(v.nonce);
    uint8_t out[64];
    chacha20_block(key.data(), v.counter, nonce.data(), out);
    check(equal_bytes(out, from_hex(v.block), 64), v.name);

    // The stream started at the same counter must begin with the same block.
    ChaCha20Stream s(key.data(), nonce.data(), v.counter);
    uint8_t sout[64];
    s.fill(sout, 64);
    check(std::memcmp(out, sout, 64) == 0, std::string(v.name) + " via stream");
  }
}

void test_chacha_encrypt() {
  const std::vector<uint8_t> key =
      from_hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
  const std::vector<uint8_t> nonce = from_hex("000000000000004a00000000");
  const std::vector<uint8_t> expect = from_hex(kLadiesCipher);
  const size_t n = std::strlen(kLadiesPlain);
  check(n == 114 && expect.size() == 114, "RFC 8439 2.4.2 vector lengths are 114");

  ChaCha20Stream s(key.data(), nonce.data(), 1);
  std::vector<uint8_t> ks(n);
  s.fill(ks.data(), n);
  std::vector<uint8_t> ct(n);
  for (size_t i = 0; i < n; ++i) ct[i] = static_cast<uint8_t>(kLadiesPlain[i]) ^ ks[i];
  check(equal_bytes(ct.data(), expect, n), "RFC 8439 2.4.2 encryption (stream XOR)");

  // Chunked reads must reproduce one large read, across buffer refills.
  const size_t total = 1 + 7 + 63 + 200 + 1 + 300 + 8;
  std::vector<uint8_t> big(total), pieces(total);
  ChaCha20Stream a(key.data(), nonce.data(), 1);
  a.fill(big.data(), total);
  ChaCha20Stream b(key.data(), nonce.data(), 1);
  const size_t chunks[] = {1, 7, 63, 200, 1, 300, 8};
  size_t off = 0;
  for (size_t c : chunks) {
    b.fill(pieces.data() + off, c);
    off += c;
  }
  check(big == pieces, "ChaCha20Stream odd-sized chunks equal one big read");
  check(std::memcmp(big.data(), ks.data(), n) == 0,
        "ChaCha20Stream big read starts with 2.4.2 keystream");

  // next_u64 is the little-endian view of the same keystream, at any offset.
  ChaCha20Stream c(key.data(), nonce.data(), 1);
  uint8_t first;
  c.fill(&first, 1);
  bool u64_ok = first == big[0];
  for (size_t pos = 1; pos + 8 <= total; pos += 8) {
    const uint64_t v = c.next_u64();
    uint64_t ref = 0;
    for (int i = 7; i >= 0; --i) ref = (ref << 8) | big[pos + i];
    if (v != ref) u64_ok = false;
  }
  check(u64_ok, "ChaCha20Stream next_u64 matches little-endian keystream");
}

void test_chacha_wrap() {
  const uint8_t key[32] = {0};
  const uint8_t nonce[12] = {0};
  uint8_t last[64], prev[64];
  chacha20_block(key, 0xFFFFFFFFu, nonce, last);
  chacha20_block(key, 0xFFFFFFFEu, nonce, prev);

  ChaCha20Stream s(key, nonce, 0xFFFFFFFEu);
  uint8_t got[128];
  s.fill(got, 128);
  check(std::memcmp(got, prev, 64) == 0 && std::memcmp(got + 64, last, 64) == 0,
        "ChaCha20Stream last two blocks before counter wrap");
  bool threw = false;
  try {
    uint8_t one;
    s.fill(&one, 1);
  } catch (const std::length_error&) {
    threw = true;
  }
  check(threw, "ChaCha20Stream throws length_error at counter wrap");

  ChaCha20Stream t(key, nonce, 0xFFFFFFFFu);
  threw = false;
  try {
    uint8_t buf[65];
    t.fill(buf, 65);
  } catch (const std::length_error&) {
    threw = true;
  }
  check(threw, "ChaCha20Stream rejects a request that straddles the wrap");
  uint8_t buf[64];
  t.fill(buf, 64);  // the refused request must not have consumed anything
  check(std::memcmp(buf, last, 64) == 0, "ChaCha20Stream usable after refused request");
}


// FIPS 197 appendix C.3 (one block) and SP 800-38A F.5.5 CTR-AES256.Encrypt
// (four blocks), on the portable, AES-NI and VAES implementations.
void test_aes() {
  const std::vector<uint8_t> k3 = from_hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
  const std::vector<uint8_t> p3 = from_hex("00112233445566778899aabbccddeeff");
  uint8_t rk[240], out[16];
  aes256_expand_key(k3.data(), rk);
  aes256_encrypt_block(rk, p3.data(), out);
  check(equal_bytes(out, from_hex("8ea2b7ca516745bfeafc49904b496089"), 16), "FIPS 197 C.3 AES-256 block");

  const std::vector<uint8_t> key = from_hex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
  const std::vector<uint8_t> ctr = from_hex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
  const std::vector<uint8_t> plain = from_hex(
      "6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51"
      "30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710");
  const std::vector<uint8_t> cipher = from_hex(
      "601ec313775789a5b7a7f504bbf3d228 f443e3ca4d62b59aca84e990cacaf5c5"
      "2b0930daa23de94ce87017ba2d84988d dfc9c58db67aada613c2dd08457941a6");
  aes256_expand_key(key.data(), rk);
  const uint32_t c0 = 0xfcfdfeffu;
  using Fn = void (*)(const uint8_t*, const uint8_t*, uint32_t, size_t, uint8_t*);
  struct Impl {
    const char* name;
    Fn fn;
    bool ok;
  };
  bool have_ni = false, have_vaes = false;
#if defined(XCLOUD_HAVE_AVX2)
  __builtin_cpu_init();
  have_ni = __builtin_cpu_supports("aes") && __builtin_cpu_supports("sse4.1");
  have_vaes = have_ni && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("vaes");
#endif
  std::vector<Impl> impls = {{"portable", detail::aes256_ctr_portable, true}};
#if defined(XCLOUD_HAVE_AVX2)
  impls.push_back({"aes-ni", detail::aes256_ctr_ni, have_ni});
  impls.push_back({"vaes", detail::aes256_ctr_vaes, have_vaes});
  impls.push_back({"aes-ni, secret (wipes its round keys)", detail::aes256_ctr_ni_secret, have_ni});
  impls.push_back({"vaes, secret (wipes its round keys)", detail::aes256_ctr_vaes_secret, have_vaes});
#endif
  // A long reference keystream from the portable path, for the differential checks.
  const size_t long_blocks = 16 * 9 + 5;
  std::vector<uint8_t> ref(16 * long_blocks);
  detail::aes256_ctr_portable(rk, ctr.data(), c0, long_blocks, ref.data());
  for (const auto& im : impls) {
    if (!im.ok) {
      std::printf("skip: %s AES (not supported by this CPU)\n", im.name);
      continue;
    }
    uint8_t ks[64];
    im.fn(rk, ctr.data(), c0, 4, ks);
    for (int i = 0; i < 64; ++i) ks[i] ^= plain[i];
    check(equal_bytes(ks, cipher, 64), std::string("SP 800-38A F.5.5 CTR-AES256 (") + im.name + ")");
    bool same = true;
    for (size_t blocks = 1; blocks <= long_blocks; blocks += (blocks < 40 ? 1 : 13)) {
      std::vector<uint8_t> got(16 * blocks);
      im.fn(rk, ctr.data(), c0, blocks, got.data());
      same &= std::memcmp(got.data(), ref.data(), got.size()) == 0;
    }
    check(same, std::string("AES-256-CTR ") + im.name + " equals the portable keystream for 1.." +
                    std::to_string(long_blocks) + " blocks");
  }
  // The stream: odd-sized reads equal one read, on whatever path is active.
  Aes256Ctr a(key.data(), ctr.data());
  std::vector<uint8_t> big(ref.size());
  a.fill(big.data(), big.size());
  check(big == ref, std::string("Aes256Ctr one read (") + aes256_ctr_path() + ")");
  Aes256Ctr b(key.data(), ctr.data());
  std::vector<uint8_t> pieces(ref.size());
  const size_t chunks[] = {1, 15, 16, 17, 255, 256, 3, 900};
  size_t off = 0;
  for (size_t c : chunks) {
    const size_t m = c < pieces.size() - off ? c : pieces.size() - off;
    b.fill(pieces.data() + off, m);
    off += m;
  }
  b.fill(pieces.data() + off, pieces.size() - off);
  check(pieces == ref, "Aes256Ctr odd-sized reads equal one read");
  // The 32-bit counter must not wrap.
  const std::vector<uint8_t> end = from_hex("000000000000000000000000fffffffe");
  Aes256Ctr w(key.data(), end.data());
  uint8_t two[32];
  w.fill(two, 32);
  bool threw = false;
  try {
    w.fill(two, 1);
  } catch (const std::length_error&) {
    threw = true;
  }
  check(threw, "Aes256Ctr throws length_error at counter wrap");
}

std::string to_hex(const std::array<uint8_t, 32>& d) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (uint8_t b : d) {
    s.push_back(digits[b >> 4]);
    s.push_back(digits[b & 15]);
  }
  return s;
}

void test_sha256() {
  struct Vec {
    std::string msg;
    const char* digest;
    const char* name;
  };
  const Vec vecs[] = {
      {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
       "SHA-256 \"abc\""},
      {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       "SHA-256 empty"},
      {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
       "SHA-256 448-bit message"},
      {std::string(1000000, 'a'),
       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
       "SHA-256 one million 'a'"},
  };
  for (const Vec& v : vecs) {
    const std::string got = to_hex(sha256(v.msg.data(), v.msg.size()));
    check(got == v.digest, std::string(v.name) + (got == v.digest ? "" : " got " + got));

    // Incremental hashing in odd-sized pieces (1, 3, 5, ..., 127, repeating).
    Sha256 ctx;
    size_t off = 0, step = 1;
    while (off < v.msg.size()) {
      size_t take = v.msg.size() - off < step ? v.msg.size() - off : step;
      ctx.update(v.msg.data() + off, take);
      off += take;
      step = step >= 127 ? 1 : step + 2;
    }
    check(to_hex(ctx.finish()) == v.digest, std::string(v.name) + " incremental");
  }

  // Padding edge cases: lengths around the 55/56/64-byte boundaries, one-shot
  // versus byte-at-a-time.
  bool edges_ok = true;
  for (size_t len = 50; len <= 130; ++len) {
    std::string m(len, 'x');
    for (size_t i = 0; i < len; ++i) m[i] = static_cast<char>('a' + i % 26);
    Sha256 ctx;
    for (size_t i = 0; i < len; ++i) ctx.update(&m[i], 1);
    if (ctx.finish() != sha256(m.data(), m.size())) edges_ok = false;
  }
  check(edges_ok, "SHA-256 byte-at-a-time equals one-shot for lengths 50..130");

  // The SHA-NI path against the portable one: every length up to 300 bytes
  // and one of 1 MiB + 3, one-shot and in uneven pieces (so that the buffered
  // and the direct blocks mix).
  if (simd_supported()) {
    std::vector<uint8_t> m((1u << 20) + 3);
    for (size_t i = 0; i < m.size(); ++i) m[i] = static_cast<uint8_t>(i * 167 + (i >> 9));
    auto digests = [&](bool scalar) {
      const bool before = set_force_scalar(scalar);
      std::vector<std::array<uint8_t, 32>> out;
      for (size_t len = 0; len <= 300; ++len) out.push_back(sha256(m.data(), len));
      out.push_back(sha256(m.data(), m.size()));
      Sha256 ctx;
      for (size_t off = 0, step = 1; off < m.size(); step = step * 3 % 1021 + 1) {
        const size_t take = std::min(step, m.size() - off);
        ctx.update(m.data() + off, take);
        off += take;
      }
      out.push_back(ctx.finish());
      set_force_scalar(before);
      return out;
    };
    const bool before = set_force_scalar(false);
    const std::string path = sha256_path();
    set_force_scalar(before);
    check(digests(true) == digests(false), "SHA-256: the " + path + " path (with SIMD enabled) equals the portable one on 303 messages");
  }
}

void test_secure() {
  uint8_t a[32], b[32];
  std::memset(a, 0, sizeof(a));
  std::memset(b, 0, sizeof(b));
  os_random_bytes(a, sizeof(a));
  os_random_bytes(b, sizeof(b));
  check(std::memcmp(a, b, sizeof(a)) != 0, "os_random_bytes two calls differ");
  static const uint8_t zero[32] = {0};
  check(std::memcmp(a, zero, sizeof(a)) != 0, "os_random_bytes output not all zero");

  std::vector<uint8_t> large(1 << 20, 0);
  os_random_bytes(large.data(), large.size());
  size_t zeros = 0;
  for (uint8_t x : large) zeros += (x == 0);
  check(zeros < large.size() / 64, "os_random_bytes fills a 1 MiB buffer");

  secure_zero(a, sizeof(a));
  check(std::memcmp(a, zero, sizeof(a)) == 0, "secure_zero zeroes a buffer");
  secure_zero(nullptr, 0);
}

// SecretShoup and small_signed_to_residue (no division on secret operands)
// equal shoup_precompute and signed_to_residue, on the edges and on random
// inputs, for NTT primes of 20 to 50 bits and odd moduli of up to 62.
void test_secret_modarith() {
  uint64_t x = 0x9e3779b97f4a7c15ull;
  auto next = [&x]() {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  for (int bits : {20, 30, 36, 47, 50, 55, 60, 62}) {
    // NTT primes up to the library's 50 bits; above, odd moduli (the identity needs q odd and below 2^63 only).
    const u64 q = bits <= 50 ? generate_ntt_primes(bits, 2 * 4096, 1, {})[0]
                             : ((next() >> (64 - bits)) | (u64{1} << (bits - 1)) | 1);
    const SecretShoup shoup(q);
    bool ok = true;
    for (u64 w : {u64{0}, u64{1}, u64{2}, q / 2, q - 2, q - 1}) ok &= shoup(w) == shoup_precompute(w, q);
    for (int i = 0; i < 200000; ++i) {
      const u64 w = next() % q;
      ok &= shoup(w) == shoup_precompute(w, q);
    }
    check(ok, "SecretShoup equals shoup_precompute for a " + std::to_string(bits) + "-bit modulus");
    bool ok_res = true;
    for (int64_t v : {int64_t{-1}, int64_t{0}, int64_t{1}, int64_t{-21}, int64_t{21}}) {
      ok_res &= small_signed_to_residue(v, q) == signed_to_residue(v, q);
    }
    for (int i = 0; i < 200000; ++i) {
      const auto v = static_cast<int64_t>(next() % (2 * q - 1)) - static_cast<int64_t>(q - 1);  // |v| < q
      ok_res &= small_signed_to_residue(v, q) == signed_to_residue(v, q);
    }
    check(ok_res, "small_signed_to_residue equals signed_to_residue for a " + std::to_string(bits) + "-bit modulus");
  }
}

}  // namespace

// The DP sampler (ring/real_sampler.h): its log, cos and sin against libm,
// and the AVX2 transform against the scalar reference, bit for bit.
void test_real_sampler() {
  double worst_log = 0, worst_trig = 0;
  for (int i = 0; i <= 100000; ++i) {
    const double u = std::ldexp(1.0, -(i % 53)) * (1.0 - (i % 997) * 0x1p-11);
    if (u < 0x1p-52 || u > 1.0) continue;
    const double ref = std::log(u);
    if (ref != 0) worst_log = std::max(worst_log, std::fabs(detail::real_sampler_log(u) - ref) / std::fabs(ref));
    const double v = (i % 65536) / 65536.0 + 0x1p-40 * (i % 7);
    double c, s;
    detail::real_sampler_cos_sin(v, &c, &s);
    worst_trig = std::max({worst_trig, std::fabs(c - std::cos(6.283185307179586 * v)),
                           std::fabs(s - std::sin(6.283185307179586 * v))});
  }
  check(worst_log <= 4 * 0x1p-52, "real sampler: log within 4 ulp of libm");
  check(worst_trig <= 2e-15, "real sampler: cos and sin of 2 pi v within 2e-15 of libm");
  const uint8_t key[32] = {42};
  std::vector<double> a(4099), b(4099);
  const bool before = set_force_scalar(true);
  RealSampler(key).gaussian(0.75, a.data(), a.size());
  set_force_scalar(false);
  RealSampler(key).gaussian(0.75, b.data(), b.size());
  set_force_scalar(before);
  check(std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0,
        "real sampler: the SIMD path's Gaussian values equal the scalar reference's");
  bool threw = false;
  try {
    RealSampler(key).gaussian(-1.0, a.data(), 1);
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  check(threw, "real sampler: a negative std is refused");
}

// pack_bits / unpack_bits (the wire's residue packing: groups of eight,
// then a word at a time, then bytes) against a bit-by-bit reference, for
// every width and lengths around the group and word boundaries, and their
// refusals.
void test_bit_packing() {
  bool same = true, round_trip = true;
  uint64_t state = 0x9e3779b97f4a7c15ull;
  auto next = [&] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  for (int bits = 1; bits <= 57; ++bits) {
    for (size_t n : {size_t{0}, size_t{1}, size_t{2}, size_t{7}, size_t{8}, size_t{9}, size_t{15}, size_t{16},
                     size_t{17}, size_t{23}, size_t{24}, size_t{25}, size_t{63}, size_t{64}, size_t{65},
                     size_t{4095}, size_t{4096}, size_t{4097}}) {
      std::vector<uint64_t> v(n), back(n);
      for (auto& x : v) x = next() & ((uint64_t{1} << bits) - 1);
      std::vector<uint8_t> got(packed_size(n, bits), 0xAA), want(packed_size(n, bits), 0);
      pack_bits(v.data(), n, bits, got.data());
      for (size_t i = 0; i < n; ++i) {
        for (int b = 0; b < bits; ++b) {
          const size_t bit = i * static_cast<size_t>(bits) + static_cast<size_t>(b);
          if ((v[i] >> b) & 1) want[bit >> 3] = static_cast<uint8_t>(want[bit >> 3] | (1u << (bit & 7)));
        }
      }
      if (got != want) same = false;
      unpack_bits(got.data(), n, bits, uint64_t{1} << bits, back.data(), "test");
      if (back != v) round_trip = false;
    }
  }
  check(same, "pack_bits equals the bit-by-bit reference for widths 1..57");
  check(round_trip, "unpack_bits inverts pack_bits for widths 1..57");
  // A residue at or above the bound, and a set padding bit, are refused.
  std::vector<uint64_t> v(100, 5), back(100);
  v[97] = 1000;
  std::vector<uint8_t> bytes(packed_size(100, 47));
  pack_bits(v.data(), 100, 47, bytes.data());
  bool high = false, pad = false;
  try {
    unpack_bits(bytes.data(), 100, 47, 1000, back.data(), "test");
  } catch (const IntegrityError&) {
    high = true;
  }
  v[97] = 5;
  pack_bits(v.data(), 100, 47, bytes.data());
  bytes.back() = static_cast<uint8_t>(bytes.back() | 0x80);  // 4700 bits: the last byte uses 4
  try {
    unpack_bits(bytes.data(), 100, 47, 1000, back.data(), "test");
  } catch (const IntegrityError&) {
    pad = true;
  }
  v[99] = 1000;  // the last value, unpacked a byte at a time
  pack_bits(v.data(), 100, 47, bytes.data());
  bool last = false;
  try {
    unpack_bits(bytes.data(), 100, 47, 1000, back.data(), "test");
  } catch (const IntegrityError&) {
    last = true;
  }
  check(high && pad && last, "unpack_bits refuses a residue above its bound (word and byte paths) and non-zero padding");
}

int main() {
  try {
    test_chacha_blocks();
    test_chacha_encrypt();
    test_chacha_wrap();
    test_aes();
    test_sha256();
    test_secure();
    test_secret_modarith();
    test_real_sampler();
    test_bit_packing();
  } catch (const std::exception& e) {
    std::printf("FAIL: unexpected exception: %s\n", e.what());
    return 2;
  }
  if (g_failures != 0) {
    std::printf("%d check(s) FAILED\n", g_failures);
    return 1;
  }
  std::printf("all primitive tests passed\n");
  return 0;
}
