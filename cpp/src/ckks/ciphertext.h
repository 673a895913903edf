#pragma once
// A batch of CKKS ciphertexts holding one real vector split into blocks of N
// values (equation 2 of the paper: E(x) = concatenation of E(x_i)).
//
// Layout: c0 is n_blocks x L x N residues in coefficient form. c1 (evaluation
// form) takes one of three forms:
//   kSeeded     a 32-byte seed per block (secret-key encryption: c1 = a,
//               expanded from the seed by expand_uniform_prime);
//   kFull       n_blocks x L x N residues;
//   kSeededSum  K seeds per block and K public weights, stored once as
//               residues: c1 of block b at prime j is
//               sum_k weight[j][k] * expand(seed[b][k], j) mod q_j (an
//               aggregate of seeded ciphertexts, see aggregate.h).
// Block i decrypts to c0 + INTT(c1 * s) = Delta * encode(x_i) + noise.
// Thread safety: a batch is a plain value; concurrent reads are safe.
#include <array>
#include <cstdint>
#include <vector>

#include "ckks/keys.h"
#include "parallel/memory.h"

namespace xcloud {

enum class Origin : uint8_t { kSecretKey = 1, kPublicKey = 2, kAggregate = 3 };
enum class DType : uint8_t { kFloat32 = 1, kFloat64 = 2 };
// The values are the wire format's c1 form byte (wire.h).
enum class C1Form : uint8_t { kSeeded = 0, kFull = 1, kSeededSum = 2 };

// Most seeds a kSeededSum block may carry (the wire format's bound as well).
// Decrypting such a block expands every seed: the cost grows with the count.
constexpr uint32_t kMaxSeedsPerBlock = 256;

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
  WordVector c0;               // n_blocks * L * N (resize() leaves new words unwritten: parallel/memory.h)
  C1Form c1_form = C1Form::kSeeded;
  uint32_t seeds_per_block = 1;   // K: 1 for kSeeded, 0 for kFull, [1, kMaxSeedsPerBlock] for kSeededSum
  std::vector<Seed> seeds;        // n_blocks * K, block-major (seeds[b * K + k]), unless kFull
  std::vector<u64> seed_weights;  // kSeededSum: L * K residues, [j * K + k] in [0, q_j)
  WordVector c1;                  // n_blocks * L * N, when kFull

  // True when c1 is regenerated from seeds (kSeeded or kSeededSum).
  bool seeded() const { return c1_form != C1Form::kFull; }
  size_t poly_words() const { return params->num_primes() * params->n(); }
  const u64* c0_block(size_t b) const { return c0.data() + b * poly_words(); }
  // Bytes held in memory by the ciphertext data (not the wire size).
  size_t memory_bytes() const;
};

// Regenerates the c1 of a seeded batch (kSeeded or kSeededSum), one block and
// one prime at a time, with the encryptor's own expansion
// (expand_uniform_prime). A kSeededSum block costs K expansions plus a
// weighted sum; the result equals, residue for residue, the c1 that a full
// aggregate of the same inputs holds.
// Thread safety: immutable after construction; expand() may run concurrently
// with distinct scratch buffers. The batch must outlive the expander.
class SeededC1 {
 public:
  // @throws std::invalid_argument if the batch has a full c1 or inconsistent
  //         seed or weight counts.
  explicit SeededC1(const CiphertextBatch& ct);
  // Words of scratch expand() needs.
  size_t scratch_words() const;
  // out[0, N) = c1 of block b at prime j, in [0, q_j). out may not alias
  // scratch, which holds at least scratch_words() words.
  void expand(size_t b, size_t j, u64* out, u64* scratch) const;

 private:
  const CiphertextBatch& ct_;
  size_t k_;                     // seeds per block
  std::vector<u64> w_shoup_;     // Shoup companions of ct_.seed_weights, same layout
};

// Blocks needed for n values with ring degree n_ring (64-bit: callers check
// that it fits the 32-bit block count before narrowing).
inline uint64_t blocks_for(uint64_t n_values, size_t n_ring) { return (n_values + n_ring - 1) / n_ring; }

// Largest number of blocks in one batch (the wire format's 32-bit field).
constexpr uint64_t kMaxBlocks = 0xFFFFFFFFu;

}  // namespace xcloud
