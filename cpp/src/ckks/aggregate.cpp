#include "ckks/aggregate.h"

#include <cmath>
#include <sstream>
#include <stdexcept>

#include "parallel/memory.h"
#include "parallel/parallel_for.h"
#include "ring/poly_ops.h"

namespace xcloud {

namespace {

constexpr int kMaxWeightBits = 30;

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
  if (bound == 0.0) return true;
  const double need = std::log2(inputs[0]->scale) + k + 0.5 + std::log2(bound) + 2.0;
  return need < inputs[0]->params->log2_q();
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

CiphertextBatch aggregate(const std::vector<const CiphertextBatch*>& inputs, const std::vector<double>& weights,
                          int threads_req) {
  const int k = aggregate_weight_bits(inputs, weights);
  const std::vector<int64_t> w = quantize(weights, k);
  const CiphertextBatch& first = *inputs[0];
  const CkksParams& params = *first.params;
  const size_t n = params.n(), L = params.num_primes(), K = inputs.size();

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
  out.seeded = false;
  const int threads = effective_threads(threads_req, out.n_blocks);
  // Both outputs sized (zeroed, huge pages) concurrently when threads allow.
  parallel_for(2, threads, [&](size_t i, int) { resize_zeroed(i == 0 ? out.c0 : out.c1, first.c0.size()); });

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
  // Per worker: room for the expanded uniform halves of kChunk seeded inputs.
  constexpr size_t kChunk = 8;
  std::vector<std::vector<u64>> scratch(static_cast<size_t>(threads));

  // One block at a time, one prime at a time: the weighted sums of the
  // inputs' c0 and c1 residues, kChunk inputs per pass (seeded inputs have
  // their c1 expanded into the worker's scratch first). Outputs in [0, q).
  parallel_for(out.n_blocks, threads, [&](size_t b, int worker) {
    auto& a = scratch[static_cast<size_t>(worker)];
    if (a.empty()) a.resize(kChunk * n);
    const u64* p0[kChunk];
    const u64* p1[kChunk];
    for (size_t j = 0; j < L; ++j) {
      const u64 q = params.primes()[j];
      u64* c0 = out.c0.data() + (b * L + j) * n;
      u64* c1 = out.c1.data() + (b * L + j) * n;
      for (size_t i0 = 0; i0 < K; i0 += kChunk) {
        const size_t m = K - i0 < kChunk ? K - i0 : kChunk;
        for (size_t k = 0; k < m; ++k) {
          const CiphertextBatch& in = *inputs[i0 + k];
          p0[k] = in.c0.data() + (b * L + j) * n;
          if (in.seeded) {
            expand_uniform_prime(params, in.seeds[b], j, a.data() + k * n);
            p1[k] = a.data() + k * n;
          } else {
            p1[k] = in.c1.data() + (b * L + j) * n;
          }
        }
        poly_weighted_sum(c0, p0, wj.data() + j * K + i0, wj_shoup.data() + j * K + i0, m, n, q, i0 > 0);
        poly_weighted_sum(c1, p1, wj.data() + j * K + i0, wj_shoup.data() + j * K + i0, m, n, q, i0 > 0);
      }
    }
  });
  return out;
}

}  // namespace xcloud
