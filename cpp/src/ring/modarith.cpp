#include "ring/modarith.h"

#include <stdexcept>
#include <string>

namespace xcloud {

u64 pow_mod(u64 a, u64 e, u64 q) {
  u64 result = 1 % q;
  u64 base = a % q;
  while (e > 0) {
    if (e & 1) result = mul_mod_slow(result, base, q);
    base = mul_mod_slow(base, base, q);
    e >>= 1;
  }
  return result;
}

u64 inv_mod(u64 a, u64 q) {
  if (a % q == 0) throw std::invalid_argument("inv_mod: zero has no inverse");
  return pow_mod(a, q - 2, q);  // Fermat: q is prime
}

bool is_prime(u64 n) {
  if (n < 2) return false;
  static const u64 small[] = {2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37};
  for (u64 p : small) {
    if (n % p == 0) return n == p;
  }
  u64 d = n - 1;
  int r = 0;
  while ((d & 1) == 0) {
    d >>= 1;
    ++r;
  }
  for (u64 a : small) {
    u64 x = pow_mod(a, d, n);
    if (x == 1 || x == n - 1) continue;
    bool composite = true;
    for (int i = 1; i < r; ++i) {
      x = mul_mod_slow(x, x, n);
      if (x == n - 1) {
        composite = false;
        break;
      }
    }
    if (composite) return false;
  }
  return true;
}

std::vector<u64> generate_ntt_primes(int bits, u64 two_n, int count, const std::vector<u64>& exclude) {
  if (bits < kMinPrimeBits || bits > kMaxPrimeBits) {
    throw std::invalid_argument("prime bit size " + std::to_string(bits) + " outside [" +
                                std::to_string(kMinPrimeBits) + ", " + std::to_string(kMaxPrimeBits) + "]");
  }
  std::vector<u64> out;
  const u64 top = u64{1} << bits;
  const u64 floor_value = u64{1} << (bits - 1);
  // Largest candidate below 2^bits that is 1 mod 2n; step down by 2n.
  u64 cand = top - two_n + 1;
  while (static_cast<int>(out.size()) < count && cand > floor_value) {
    bool excluded = false;
    for (u64 e : exclude) excluded |= (e == cand);
    if (!excluded && is_prime(cand)) out.push_back(cand);
    cand -= two_n;
  }
  if (static_cast<int>(out.size()) < count) {
    throw std::invalid_argument("not enough " + std::to_string(bits) + "-bit primes = 1 mod " +
                                std::to_string(two_n));
  }
  return out;
}

u64 primitive_root_2n(u64 q, u64 two_n) {
  if ((q - 1) % two_n != 0) throw std::invalid_argument("q is not 1 mod 2n");
  const u64 e = (q - 1) / two_n;
  for (u64 g = 2; g < q; ++g) {
    u64 psi = pow_mod(g, e, q);
    // psi has order dividing 2n; it is primitive iff psi^n = -1.
    if (pow_mod(psi, two_n / 2, q) == q - 1) return psi;
  }
  throw std::invalid_argument("no primitive 2n-th root found");
}

}  // namespace xcloud
