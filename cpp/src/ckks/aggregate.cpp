#include "ckks/aggregate.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "ckks/wire.h"
#include "parallel/memory.h"
#include "parallel/parallel_for.h"
#include "ring/poly_ops.h"

namespace xcloud {

namespace {

constexpr int kMaxWeightBits = 30;

// A batch's c1 fields agree with its form (ciphertext.h).
void check_c1_form(const CiphertextBatch& c, const std::string& at) {
  const size_t K = c.seeds_per_block, L = c.params->num_primes();
  bool ok = true;
  switch (c.c1_form) {
    case C1Form::kSeeded:
      ok = K == 1 && c.seeds.size() == c.n_blocks;
      break;
    case C1Form::kSeededSum:
      ok = K >= 1 && K <= kMaxSeedsPerBlock && c.seeds.size() == static_cast<size_t>(c.n_blocks) * K &&
           c.seed_weights.size() == L * K;
      break;
    case C1Form::kFull:
      ok = c.c1.size() == c.c0.size();
      break;
    default:
      ok = false;
  }
  if (!ok) throw std::invalid_argument("ciphertext batch has an inconsistent c1" + at);
}

void check_inputs(const std::vector<const CiphertextBatch*>& inputs, const std::vector<double>& weights) {
  if (inputs.empty()) throw std::invalid_argument("aggregate needs at least one ciphertext batch");
  if (weights.size() != inputs.size()) {
    throw std::invalid_argument("got " + std::to_string(weights.size()) + " weights for " +
                                std::to_string(inputs.size()) + " ciphertext batches");
  }
  const CiphertextBatch& first = *inputs[0];
  for (size_t i = 0; i < inputs.size(); ++i) {
    const CiphertextBatch& c = *inputs[i];
    const std::string at = " (input " + std::to_string(i) + ")";
    if (!std::isfinite(weights[i])) throw std::invalid_argument("weight is not finite" + at);
    if (c.params->fingerprint() != first.params->fingerprint()) {
      throw std::invalid_argument("ciphertexts from different parameter sets cannot be aggregated" + at);
    }
    if (c.key_id != first.key_id) throw std::invalid_argument("ciphertexts under different keys cannot be aggregated" + at);
    if (c.n_values != first.n_values || c.shape != first.shape) {
      throw std::invalid_argument("ciphertexts of different shapes cannot be aggregated" + at);
    }
    if (c.scale != first.scale) throw std::invalid_argument("ciphertexts at different scales cannot be aggregated" + at);
    if (c.dtype != first.dtype) {
      // The aggregate decrypts to one dtype: the result must not depend on the order of the inputs.
      throw std::invalid_argument("ciphertexts of float32 and float64 values cannot be aggregated together" + at);
    }
    check_c1_form(c, at);
  }
}

double bound_after(const std::vector<const CiphertextBatch*>& inputs, const std::vector<int64_t>& w, int k) {
  double b = 0.0;
  for (size_t i = 0; i < inputs.size(); ++i) b += std::fabs(static_cast<double>(w[i])) * inputs[i]->bound;
  return std::ldexp(b, -k);
}

std::vector<int64_t> quantize(const std::vector<double>& weights, int k) {
  std::vector<int64_t> w(weights.size());
  for (size_t i = 0; i < weights.size(); ++i) w[i] = static_cast<int64_t>(std::nearbyint(std::ldexp(weights[i], k)));
  return w;
}

bool fits(const std::vector<const CiphertextBatch*>& inputs, const std::vector<double>& weights, int k) {
  for (double x : weights) {
    if (std::fabs(std::ldexp(x, k)) >= 9.0e15) return false;  // keep weights exact in int64/double
  }
  const auto w = quantize(weights, k);
  const double bound = bound_after(inputs, w, k);
  // deserialize()'s rule with one bit to spare, so that every aggregate can be
  // written and read back (the scale test also keeps the output scale finite:
  // a tampered scale near the top of the double range would overflow here).
  return within_modulus(std::log2(inputs[0]->scale) + k, bound, inputs[0]->params->log2_q(), 1.0);
}

}  // namespace

int aggregate_weight_bits(const std::vector<const CiphertextBatch*>& inputs, const std::vector<double>& weights) {
  check_inputs(inputs, weights);
  int k = kMaxWeightBits;
  for (int t = 0; t <= kMaxWeightBits; ++t) {
    bool exact = true;
    for (double x : weights) exact &= (std::ldexp(x, t) == std::nearbyint(std::ldexp(x, t)));
    if (exact) {
      k = t;
      break;
    }
  }
  while (k > 0 && !fits(inputs, weights, k)) --k;
  if (!fits(inputs, weights, k)) {
    std::ostringstream os;
    os << "the weighted sum could overflow the ciphertext modulus (sum of |weight| * bound = "
       << bound_after(inputs, quantize(weights, 0), 0) << " at scale 2^" << std::log2(inputs[0]->scale)
       << "); use smaller weights";
    throw std::invalid_argument(os.str());
  }
  const auto w = quantize(weights, k);
  double err = 0.0;
  double maxv = inputs[0]->params->max_value();
  for (size_t i = 0; i < weights.size(); ++i) {
    err += std::fabs(weights[i] - std::ldexp(static_cast<double>(w[i]), -k)) * inputs[i]->bound;
  }
  if (err > std::ldexp(maxv, -17)) {
    std::ostringstream os;
    os << "these weights can only be applied with " << k << " fractional bits at this scale, which would add an error "
       << "of up to " << err << "; aggregate fresh ciphertexts, or use weights that are multiples of 2^-" << k;
    throw std::invalid_argument(os.str());
  }
  return k;
}

uint32_t aggregate_compact_seeds(const std::vector<const CiphertextBatch*>& inputs) {
  if (inputs.empty()) return 0;
  uint64_t k = 0;
  for (const CiphertextBatch* in : inputs) {
    if (!in->seeded()) return 0;
    k += in->seeds_per_block;
  }
  if (k == 0 || k > kMaxSeedsPerBlock) return 0;
  // Wire bytes of the two c1 forms (wire.h): the compact one must be smaller.
  // With n_blocks < 2^32 and k <= 256 nothing here overflows 64 bits.
  const CkksParams& p = *inputs[0]->params;
  const uint64_t blocks = inputs[0]->n_blocks;
  const uint64_t compact_bytes = 4 + 8 * p.num_primes() * k + blocks * k * sizeof(Seed);
  if (compact_bytes >= blocks * packed_poly_size(p)) return 0;
  return static_cast<uint32_t>(k);
}

CiphertextBatch aggregate(const std::vector<const CiphertextBatch*>& inputs, const std::vector<double>& weights,
                          int threads_req, bool compact) {
  const int k = aggregate_weight_bits(inputs, weights);
  const std::vector<int64_t> w = quantize(weights, k);
  const CiphertextBatch& first = *inputs[0];
  const CkksParams& params = *first.params;
  const size_t n = params.n(), L = params.num_primes(), K = inputs.size();
  const uint32_t out_seeds = compact ? aggregate_compact_seeds(inputs) : 0;
  const bool full_c1 = out_seeds == 0;

  CiphertextBatch out;
  out.params = first.params;
  out.key_id = first.key_id;
  out.origin = Origin::kAggregate;
  out.dtype = first.dtype;
  out.shape = first.shape;
  out.n_values = first.n_values;
  out.n_blocks = first.n_blocks;
  out.scale = std::ldexp(first.scale, k);
  out.bound = bound_after(inputs, w, k);
  out.c1_form = full_c1 ? C1Form::kFull : C1Form::kSeededSum;
  out.seeds_per_block = out_seeds;
  const int threads = effective_threads(threads_req, out.n_blocks);
  // The outputs are sized, not zeroed: the first pass over each (block,
  // prime) below writes every word of it (accumulate = false; there is at
  // least one input), so fresh pages are first touched by the workers, in
  // parallel, and a buffer from the cache (parallel/memory.h) has all its
  // old words replaced. Zeroing first was one more pass over the output (6%
  // of a one-thread aggregation of ten 10 M-value compact ciphertexts).
  resize_for_overwrite(out.c0, first.c0.size());
  if (full_c1) {
    resize_for_overwrite(out.c1, first.c0.size());
  } else {
    out.seeds.resize(static_cast<size_t>(out.n_blocks) * out_seeds);
  }

  // Weights as residues, with Shoup companions: w_res[i * L + j].
  std::vector<u64> w_res(K * L), w_shoup(K * L);
  for (size_t i = 0; i < K; ++i) {
    for (size_t j = 0; j < L; ++j) {
      const u64 q = params.primes()[j];
      w_res[i * L + j] = signed_to_residue(w[i], q);
      w_shoup[i * L + j] = shoup_precompute(w_res[i * L + j], q);
    }
  }
  // Per prime, the weights of all inputs side by side: wj[j * K + i].
  std::vector<u64> wj(K * L), wj_shoup(K * L);
  for (size_t i = 0; i < K; ++i) {
    for (size_t j = 0; j < L; ++j) {
      wj[j * K + i] = w_res[i * L + j];
      wj_shoup[j * K + i] = w_shoup[i * L + j];
    }
  }
  // Compact form: input i's seeds go to columns [seed_at[i], seed_at[i] + K_i)
  // of every block; their weights are w_i (fresh input) or w_i * v_ik mod q_j
  // (a seeded-sum input with weights v_ik). Both factors are in [0, q_j), so
  // the product is the residue of the composed integer weight.
  std::vector<size_t> seed_at(K);
  if (!full_c1) {
    out.seed_weights.resize(L * out_seeds);
    size_t at = 0;
    for (size_t i = 0; i < K; ++i) {
      const CiphertextBatch& in = *inputs[i];
      const size_t ki = in.seeds_per_block;
      seed_at[i] = at;
      for (size_t j = 0; j < L; ++j) {
        const u64 q = params.primes()[j];
        u64* dst = out.seed_weights.data() + j * out_seeds + at;
        if (in.c1_form == C1Form::kSeeded) {
          dst[0] = w_res[i * L + j];
        } else {
          for (size_t t = 0; t < ki; ++t) dst[t] = mul_mod_slow(w_res[i * L + j], in.seed_weights[j * ki + t], q);
        }
      }
      at += ki;
    }
  }
  // Full form: every seeded input's c1 is regenerated as at decryption.
  std::vector<std::unique_ptr<SeededC1>> expander(K);
  size_t expand_words = 0;
  bool any_expanded = false;
  if (full_c1) {
    for (size_t i = 0; i < K; ++i) {
      if (!inputs[i]->seeded()) continue;
      expander[i] = std::make_unique<SeededC1>(*inputs[i]);
      expand_words = std::max(expand_words, expander[i]->scratch_words());
      any_expanded = true;
    }
  }
  // Inputs per pass over an output polynomial: every pass after the first
  // reads and writes the output again. 16 (it was 8) sums ten inputs in one
  // pass. One thread, ten 10 M-value compact-preset inputs, Xeon VM, with
  // the zeroing above also removed: compact form 108 -> 71 ms, full form of
  // seeded inputs 222 -> 194 ms, public-key inputs 209 -> 145 ms. Per
  // worker: room for the expanded c1 of kChunk seeded inputs (kChunk * n
  // words, 512 KiB at N = 4096), then the expander's own scratch.
  constexpr size_t kChunk = 16;
  std::vector<std::vector<u64>> scratch(static_cast<size_t>(threads));

  // One block at a time, one prime at a time: the weighted sums of the
  // inputs' c0 (and, in the full form, c1) residues, kChunk inputs per pass.
  // Outputs in [0, q).
  parallel_for(out.n_blocks, threads, [&](size_t b, int worker) {
    if (!full_c1) {
      for (size_t i = 0; i < K; ++i) {
        const CiphertextBatch& in = *inputs[i];
        std::copy_n(in.seeds.data() + b * in.seeds_per_block, in.seeds_per_block,
                    out.seeds.data() + b * out_seeds + seed_at[i]);
      }
    }
    auto& a = scratch[static_cast<size_t>(worker)];
    if (any_expanded && a.empty()) a.resize(kChunk * n + expand_words);
    const u64* p0[kChunk];
    const u64* p1[kChunk];
    for (size_t j = 0; j < L; ++j) {
      const u64 q = params.primes()[j];
      u64* c0 = out.c0.data() + (b * L + j) * n;
      for (size_t i0 = 0; i0 < K; i0 += kChunk) {
        const size_t m = K - i0 < kChunk ? K - i0 : kChunk;
        for (size_t t = 0; t < m; ++t) {
          const CiphertextBatch& in = *inputs[i0 + t];
          p0[t] = in.c0.data() + (b * L + j) * n;
          if (!full_c1) continue;
          if (expander[i0 + t]) {
            expander[i0 + t]->expand(b, j, a.data() + t * n, a.data() + kChunk * n);
            p1[t] = a.data() + t * n;
          } else {
            p1[t] = in.c1.data() + (b * L + j) * n;
          }
        }
        poly_weighted_sum(c0, p0, wj.data() + j * K + i0, wj_shoup.data() + j * K + i0, m, n, q, i0 > 0);
        if (full_c1) {
          u64* c1 = out.c1.data() + (b * L + j) * n;
          poly_weighted_sum(c1, p1, wj.data() + j * K + i0, wj_shoup.data() + j * K + i0, m, n, q, i0 > 0);
        }
      }
    }
  });
  return out;
}

}  // namespace xcloud
