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
// Thread safety: reentrant; uses `threads` workers.
#include <vector>

#include "ckks/ciphertext.h"

namespace xcloud {

// @throws std::invalid_argument for no inputs, a weight count that differs
//         from the input count, non-finite weights, inputs of different
//         parameter sets, keys, shapes or scales, or a sum that would overflow
//         or lose precision (see above).
CiphertextBatch aggregate(const std::vector<const CiphertextBatch*>& inputs, const std::vector<double>& weights,
                          int threads);

// The weight exponent k that aggregate() would use (exposed for tests).
int aggregate_weight_bits(const std::vector<const CiphertextBatch*>& inputs, const std::vector<double>& weights);

}  // namespace xcloud
