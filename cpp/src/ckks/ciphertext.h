#pragma once
// A batch of CKKS ciphertexts holding one real vector split into blocks of N
// values (equation 2 of the paper: E(x) = concatenation of E(x_i)).
//
// Layout: c0 is n_blocks x L x N residues in coefficient form; c1 is either a
// 32-byte seed per block (secret-key encryption: c1 = a, expanded from the
// seed in evaluation form) or n_blocks x L x N residues in evaluation form.
// Block i decrypts to c0 + INTT(c1 * s) = Delta * encode(x_i) + noise.
// Thread safety: a batch is a plain value; concurrent reads are safe.
#include <array>
#include <cstdint>
#include <vector>

#include "ckks/keys.h"

namespace xcloud {

enum class Origin : uint8_t { kSecretKey = 1, kPublicKey = 2, kAggregate = 3 };
enum class DType : uint8_t { kFloat32 = 1, kFloat64 = 2 };

struct CiphertextBatch {
  ParamsPtr params;
  std::array<uint8_t, 16> key_id{};
  Origin origin = Origin::kSecretKey;
  DType dtype = DType::kFloat64;
  std::vector<int64_t> shape;  // the caller's array shape; product == n_values
  uint64_t n_values = 0;
  uint32_t n_blocks = 0;
  double scale = 0.0;          // decoded value = coefficient value / scale
  double bound = 0.0;          // |value| <= bound for every encrypted value
  std::vector<u64> c0;         // n_blocks * L * N
  bool seeded = true;
  std::vector<Seed> seeds;     // n_blocks, when seeded
  std::vector<u64> c1;         // n_blocks * L * N, when not seeded

  size_t poly_words() const { return params->num_primes() * params->n(); }
  const u64* c0_block(size_t b) const { return c0.data() + b * poly_words(); }
  // Bytes held in memory by the ciphertext data (not the wire size).
  size_t memory_bytes() const;
};

// Blocks needed for n values with ring degree n_ring (64-bit: callers check
// that it fits the 32-bit block count before narrowing).
inline uint64_t blocks_for(uint64_t n_values, size_t n_ring) { return (n_values + n_ring - 1) / n_ring; }

// Largest number of blocks in one batch (the wire format's 32-bit field).
constexpr uint64_t kMaxBlocks = 0xFFFFFFFFu;

}  // namespace xcloud
