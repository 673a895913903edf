#pragma once
// Weighted sums of ciphertext batches with public real weights (equations 3
// and 6 of the paper): E(sum_i w_i x_i) = sum_i round(w_i 2^k) E(x_i), with
// the result's scale multiplied by 2^k.
//
// Choice of k: the smallest k in [0, 30] at which every weight is exactly
// representable, else 30; then lowered while the result could overflow the
// modulus (scale * 2^k * sqrt(2) * sum|w_i| bound_i must stay below Q / 16).
// The rounding of the weights adds at most sum_i |w_i - round(w_i 2^k) 2^-k|
// * bound_i to the error; if that exceeds 2^-17 * max_value the call is
// refused rather than return a silently imprecise result.
//
// Form of the result's c1 (ciphertext.h). With `compact` (the default), when
// every input is seeded (a fresh secret-key ciphertext, C1Form::kSeeded) or a
// seeded-sum aggregate (C1Form::kSeededSum), and the seeds per block add up
// to at most kMaxSeedsPerBlock, and the seeds and weights take fewer wire
// bytes than the full c1 polynomials would, the result is C1Form::kSeededSum: c0 = sum_i w_i c0_i as usual,
// and c1 is kept as the inputs' seeds with the weights w_i (times a seeded-sum
// input's own weights, mod q_j) stored once. No seed is expanded, so the sum
// costs only the c0 pass; a key holder expands the K seeds per block when it
// decrypts. The seeds were public in the inputs already, but the weights
// w_i and the count K now travel with the result. Otherwise, or with
// `compact` false, c1 is C1Form::kFull: every seeded input's c1 is expanded
// and summed. Both forms decrypt to the same bits.
// Thread safety: reentrant; uses `threads` workers.
#include <vector>

#include "ckks/ciphertext.h"

namespace xcloud {

// @throws std::invalid_argument for no inputs, a weight count that differs
//         from the input count, non-finite weights, inputs of different
//         parameter sets, keys, shapes or scales, or a sum that would overflow
//         or lose precision (see above).
CiphertextBatch aggregate(const std::vector<const CiphertextBatch*>& inputs, const std::vector<double>& weights,
                          int threads, bool compact = true);

// Seeds per block of the compact result, or 0 if aggregate(..., compact=true)
// would produce a full c1 for these inputs (exposed for tests).
uint32_t aggregate_compact_seeds(const std::vector<const CiphertextBatch*>& inputs);

// The weight exponent k that aggregate() would use (exposed for tests).
int aggregate_weight_bits(const std::vector<const CiphertextBatch*>& inputs, const std::vector<double>& weights);

}  // namespace xcloud
