#pragma once
// AES-256 (FIPS 197) in counter mode (NIST SP 800-38A, section 6.5). Its
// first use expands PUBLIC seeds into the uniform polynomial of a secret-key
// ciphertext (ckks/keys.h, expand_uniform_prime); a stream constructed for
// SECRET use (AesKeyUse::kSecret) may also draw secret randomness such as
// the encryption noise (sample_cbd / sample_ternary_packed overloads in
// ring/sampler.h), and then every path it can take is constant-time.
//
// Four implementations give the same keystream bytes:
//   - the portable reference (table S-box, byte-oriented rounds; aes256.cpp).
//     It is not constant-time (its loads are indexed by key and state
//     bytes), so only PUBLIC keys go through it: the seeds that travel in the
//     clear;
//   - the constant-time portable one (bitsliced, eight blocks per batch, the
//     S-box computed as the GF(2^8) inverse, through GF((2^4)^2), and the
//     affine map; aes256_ct.cpp), the portable fallback of SECRET keys: no
//     table, no branch on key or data;
//   - AES-NI, eight 128-bit blocks in flight;
//   - VAES (256-bit AES rounds, two blocks per register), sixteen in flight.
// The hardware ones are constant-time and are taken for either key use when
// the SIMD path is enabled (ring/simd.h) and the CPU reports AES (and VAES
// for the wide one). Otherwise, i.e. with XCLOUD_FORCE_SCALAR=1,
// set_force_scalar(true), aes256_force_portable(true), a build without the
// AVX2 kernels or a CPU without AES-NI, a public key takes the table
// reference and a secret key the constant-time portable path.
//
// Key expansion: public keys use the table schedule (aes256_expand_key). A
// secret key never touches it: its schedule is AESKEYGENASSIST where the
// AES-NI path is taken at construction, the constant-time software schedule
// (aes256_expand_key_ct) otherwise; the round keys are the same bytes.
//
// Counter blocks: the 16-byte initial counter block with its last four bytes
// incremented as a big-endian 32-bit integer per block (the "inc32" of SP
// 800-38D; the SP 800-38A CTR-AES256 vectors never carry past those bytes).
//
// Thread safety: an Aes256Ctr is a plain value; distinct objects may be used
// from distinct threads. The free functions are reentrant.
#include <array>
#include <cstddef>
#include <cstdint>

namespace xcloud {

// How the key of an Aes256Ctr may be treated (see above): kPublic (a seed
// sent in the clear; the fast table reference is its portable fallback) or
// kSecret (constant-time on every path; round keys and buffered keystream
// wiped on destruction).
enum class AesKeyUse { kPublic, kSecret };

// The 15 round keys (240 bytes) of a 32-byte key, in FIPS 197 byte order,
// with the table S-box: public keys only.
void aes256_expand_key(const uint8_t key[32], uint8_t round_keys[240]);

// The same round keys, constant-time (bitsliced SubWord): any key.
void aes256_expand_key_ct(const uint8_t key[32], uint8_t round_keys[240]);

// One block with the portable (table) reference: public keys only.
void aes256_encrypt_block(const uint8_t round_keys[240], const uint8_t in[16], uint8_t out[16]);

// `blocks` blocks in[16 i, 16 i + 16) -> out (ECB), constant-time; eight
// blocks per batch internally. in and out may be the same buffer.
void aes256_encrypt_blocks_ct(const uint8_t round_keys[240], const uint8_t* in, uint8_t* out, size_t blocks);

// Which implementation an Aes256Ctr of public key use takes now: "vaes",
// "aes-ni" or "portable" (the table reference).
const char* aes256_ctr_path();

// The same for the given key use; the portable fallback of kSecret is
// "portable-ct".
const char* aes256_ctr_path_for(AesKeyUse use);

// Forces the portable reference even where the SIMD path is enabled
// (true), or allows the fast ones again; returns the previous setting. For
// the differential tests of the three paths.
bool aes256_force_portable(bool force);

// Takes AES-NI where VAES would be taken (true), or allows VAES again;
// returns the previous setting. For tests and benchmarks of the AES-NI path
// on a CPU with VAES.
bool aes256_force_ni(bool force);

// The keystream of AES-256-CTR from `key` and the 16-byte initial counter
// block. The implementation is chosen per fill (above); the key use is fixed
// at construction. The default, kPublic, is the behaviour for public seeds.
class Aes256Ctr {
 public:
  Aes256Ctr(const uint8_t key[32], const uint8_t counter_block[16], AesKeyUse use = AesKeyUse::kPublic);
  ~Aes256Ctr();  // kSecret: round keys and the keystream buffer wiped (secure_zero)
  Aes256Ctr(const Aes256Ctr&) = delete;
  Aes256Ctr& operator=(const Aes256Ctr&) = delete;

  AesKeyUse key_use() const { return use_; }

  // Fills out[0, n) with the next n keystream bytes.
  // @throws std::length_error if the 32-bit counter would wrap (64 GiB).
  void fill(uint8_t* out, size_t n);

 private:
  void generate(uint8_t* out, size_t blocks);  // whole blocks from counter_
  std::array<uint8_t, 240> rk_;
  std::array<uint8_t, 12> prefix_;  // the counter block's first 12 bytes
  uint64_t counter_;                // next block's low 32 bits (64-bit to detect wrap)
  uint64_t end_;                    // 2^32: counter_ may reach it, never pass it
  std::array<uint8_t, 256> buf_;
  size_t pos_;
  AesKeyUse use_;
};

namespace detail {
// counter blocks prefix || BE32(ctr + i), i < blocks, encrypted into out.
void aes256_ctr_portable(const uint8_t rk[240], const uint8_t prefix[12], uint32_t ctr, size_t blocks, uint8_t* out);
void aes256_ctr_ni(const uint8_t rk[240], const uint8_t prefix[12], uint32_t ctr, size_t blocks, uint8_t* out);
void aes256_ctr_vaes(const uint8_t rk[240], const uint8_t prefix[12], uint32_t ctr, size_t blocks, uint8_t* out);
// The same output; they wipe their copies of the round keys before returning
// (Aes256Ctr uses them for AesKeyUse::kSecret).
void aes256_ctr_ni_secret(const uint8_t rk[240], const uint8_t prefix[12], uint32_t ctr, size_t blocks, uint8_t* out);
void aes256_ctr_vaes_secret(const uint8_t rk[240], const uint8_t prefix[12], uint32_t ctr, size_t blocks,
                            uint8_t* out);
// The constant-time portable one (aes256_ct.cpp).
void aes256_ctr_ct(const uint8_t rk[240], const uint8_t prefix[12], uint32_t ctr, size_t blocks, uint8_t* out);
// The key schedule with AESKEYGENASSIST (aes256_ni.cpp; only where the CPU has AES-NI).
void aes256_expand_key_ni(const uint8_t key[32], uint8_t round_keys[240]);
// The S-box of FIPS 197 at x: from the table (not constant-time) and from the
// bitsliced circuit of the constant-time path, for the test that compares
// them on all 256 inputs.
uint8_t aes256_sbox_table(uint8_t x);
uint8_t aes256_sbox_ct(uint8_t x);
// Whether this build and CPU can run the AES-NI / VAES kernels at all
// (whatever the forcing switches say).
bool aes256_cpu_has_aes_ni();
bool aes256_cpu_has_vaes();
}  // namespace detail

}  // namespace xcloud
