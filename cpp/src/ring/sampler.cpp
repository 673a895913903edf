#include "ring/sampler.h"


namespace xcloud {

void sample_uniform_mod(ChaCha20Stream& rng, u64 q, u64* out, size_t n) {
  const int bits = 64 - __builtin_clzll(q);
  const u64 mask = bits >= 64 ? ~u64{0} : (u64{1} << bits) - 1;
  // Acceptance probability q / 2^bits > 1/2, so the expected draws are < 2n.
  size_t i = 0;
  while (i < n) {
    const u64 r = rng.next_u64() & mask;
    out[i] = r;
    i += (r < q);  // a rejected draw is overwritten by the next one
  }
}

void sample_ternary(ChaCha20Stream& rng, int8_t* out, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const u64 r = rng.next_u64();
    const u64 v = static_cast<u64>(((u128)r * 3) >> 64);  // in {0, 1, 2}
    out[i] = static_cast<int8_t>(static_cast<int>(v) - 1);
  }
}

void sample_cbd(ChaCha20Stream& rng, int32_t* out, size_t n) {
  constexpr u64 mask = (u64{1} << kCbdEta) - 1;
  for (size_t i = 0; i < n; ++i) {
    const u64 r = rng.next_u64();
    const int a = __builtin_popcountll(r & mask);
    const int b = __builtin_popcountll((r >> kCbdEta) & mask);
    out[i] = a - b;
  }
}

}  // namespace xcloud
