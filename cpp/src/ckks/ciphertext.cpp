#include "ckks/ciphertext.h"

#include <stdexcept>

#include "ring/modarith.h"
#include "ring/poly_ops.h"

namespace xcloud {

namespace {

// Seeds expanded per weighted-sum pass (the scratch holds this many polynomials).
constexpr size_t kExpandChunk = 8;

}  // namespace

size_t CiphertextBatch::memory_bytes() const {
  return c0.size() * sizeof(u64) + c1.size() * sizeof(u64) + seeds.size() * sizeof(Seed) +
         seed_weights.size() * sizeof(u64);
}

SeededC1::SeededC1(const CiphertextBatch& ct) : ct_(ct), k_(ct.seeds_per_block) {
  if (!ct.seeded()) throw std::invalid_argument("this ciphertext batch has a full c1, not a seeded one");
  const size_t L = ct.params->num_primes();
  const size_t want_k = ct.c1_form == C1Form::kSeeded ? 1 : k_;
  if (k_ == 0 || k_ != want_k || ct.seeds.size() != static_cast<size_t>(ct.n_blocks) * k_) {
    throw std::invalid_argument("seeded ciphertext batch has an inconsistent seed count");
  }
  if (ct.c1_form == C1Form::kSeededSum) {
    if (ct.seed_weights.size() != L * k_) {
      throw std::invalid_argument("seeded-sum batch has an inconsistent weight count");
    }
    w_shoup_.resize(L * k_);
    for (size_t j = 0; j < L; ++j) {
      const u64 q = ct.params->primes()[j];
      for (size_t k = 0; k < k_; ++k) {
        const u64 w = ct.seed_weights[j * k_ + k];
        if (w >= q) throw std::invalid_argument("seeded-sum weight is not a residue below its prime");
        w_shoup_[j * k_ + k] = shoup_precompute(w, q);
      }
    }
  }
}

size_t SeededC1::scratch_words() const {
  return ct_.c1_form == C1Form::kSeededSum ? kExpandChunk * ct_.params->n() : 0;
}

void SeededC1::expand(size_t b, size_t j, u64* out, u64* scratch) const {
  const CkksParams& params = *ct_.params;
  if (ct_.c1_form == C1Form::kSeeded) {
    expand_uniform_prime(params, ct_.seeds[b], j, out);
    return;
  }
  // c1 = sum_k w[j][k] * a_k, kExpandChunk expansions per pass; poly_weighted_sum
  // returns [0, q_j) whatever the grouping, so the residues equal the full form's.
  const size_t n = params.n();
  const u64 q = params.primes()[j];
  const Seed* seeds = ct_.seeds.data() + b * k_;
  const u64* w = ct_.seed_weights.data() + j * k_;
  const u64* w_shoup = w_shoup_.data() + j * k_;
  const u64* polys[kExpandChunk];
  for (size_t k0 = 0; k0 < k_; k0 += kExpandChunk) {
    const size_t m = k_ - k0 < kExpandChunk ? k_ - k0 : kExpandChunk;
    for (size_t k = 0; k < m; ++k) {
      expand_uniform_prime(params, seeds[k0 + k], j, scratch + k * n);
      polys[k] = scratch + k * n;
    }
    poly_weighted_sum(out, polys, w + k0, w_shoup + k0, m, n, q, k0 > 0);
  }
}

}  // namespace xcloud
