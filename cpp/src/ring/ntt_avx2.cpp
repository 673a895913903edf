// AVX2 + FMA negacyclic NTT for primes q < 2^50, four butterflies per
// instruction, with double-precision modular multiplication (see
// modarith_avx2.h for the arithmetic and its error bounds).
//
// The u64 array is transformed in place as doubles (same size): the first
// pass converts residues to doubles as it loads them, the last pass reduces
// to [0, q) and converts back as it stores. In between, values are "lazy":
// exact integers in a bounded signed range, never reduced more than needed.
// The transform is linear and every step is exact modulo q, so the output
// equals the scalar reference's bit for bit.
//
// Passes. Both directions do two stages per pass over the data (radix 4:
// four vectors loaded, two butterflies of one stage then two of the next,
// four stored), which halves the loads and stores of radix 2; where a group
// holds a single quadruple of vectors (t = 4), two groups go side by side
// (independent chains for the out-of-order core), and the forward ones do
// two quadruples side by side wherever a group holds an even number. The
// in-register passes for t = 1, 2 likewise do two blocks of 8 values side by
// side (one for n = 8).
//   forward (Cooley-Tukey, as forward_scalar): stages t = n/2 ... 4 in pairs
//     (a radix-2 stage first when their number is odd), the first pass
//     converting from u64; then one pass for t = 2 and t = 1 in registers
//     (lane shuffles), which reduces to [0, q) and stores u64.
//   inverse (Gentleman-Sande, as inverse_scalar): one pass for t = 1 and
//     t = 2 in registers, converting from u64 (and multiplying by b in
//     inverse_mul); then t = 4 ... n/2 in pairs, ending with the stage
//     t = n/2 that multiplies by n^-1 (folded into its twiddles) and stores
//     u64 in [0, q): in the last pair, or alone (radix 2) after the pairs
//     when the number of these stages is odd (measured faster than a
//     radix-2 stage t = 4 first).
//
// Ranges: which stages reduce. A forward butterfly is (X, Y) -> (X' + T,
// X' - T), T = mul_balanced(Y, w), X' = reduce_balanced(X) or X itself; an
// inverse one is (X, Y) -> (S', (X - Y) w), S = X + Y, S' = reduce_balanced(S)
// or S itself. Skipping the reduction is exact (all values are integers below
// 2^53); it only lets values grow. forward_schedule() / inverse_schedule()
// below follow an integer upper bound B on |v| over all values, stage by
// stage, and skip the reduction of a stage whenever the values it produces
// still satisfy what every later step needs:
//   - every multiplicand of mul_balanced and every input of reduce_balanced
//     and canon_full has magnitude below 2^51 (modarith_avx2.h);
//   - the last inverse stage's outputs lie in (-q, q) (canon_from_signed).
// Bounds used (q < 2^50; A an upper bound on the input's magnitude, A < 2^51):
//   mul_balanced:     |out| <= (1/2 + A 2^-53) q <= (q+1)/2 + floor(A q / 2^53) + 1
//   reduce_balanced:  |out| <= q/2 + A 2^-53 <= q/2 + 1/4 < (q+1)/2
//   mul_balanced_var: |out| < 3q/4                    (inverse_mul's products)
// Forward, input bound B < 2^51 (all of X, Y): T <= M = mul_bound(B); the
// outputs are at most B + M (no reduction) or (q+1)/2 + M (reduction). No
// reduction when B + M < 2^51 (the next stage's multiplicand and X, or
// canon_full's input after the last stage); otherwise reduce, and then
// (q+1)/2 + M <= 1.25q + 3 < 2^51 always.
// Inverse, input bound B with 2B < 2^51: S and X - Y are at most 2B (below
// 2^51: valid for reduce_balanced and mul_balanced), the product at most
// D = mul_bound(2B) <= 0.75q + 2. The outputs are at most max(2B, D) (no
// reduction) or max((q+1)/2, D) (reduction). No reduction when
// 2 max(2B, D) < 2^51, i.e. the next stage's sums and differences stay below
// 2^51; otherwise reduce, and then 2 max((q+1)/2, D) <= 1.5q + 4 < 2^51. The
// last stage takes S and X - Y (at most 2B < 2^51) to mul_balanced outputs
// of magnitude at most (1/2 + 2^-2) q < q.
// The schedules that result (reductions per transform, N = 2^12 / 2^13):
// 36-bit primes and smaller: none; a 47-bit prime: none forward, every fourth
// inverse stage (2 / 3); 48-bit: 1 / 1 forward, every third inverse stage;
// 49-bit: every fifth forward, every other inverse stage; 50-bit: every
// other forward stage, every inverse stage (as before). The schedule depends
// on q and n only (public), never on the data, and the kernels have no
// data-dependent branch.
#include "ring/ntt_avx2.h"

#include <cstddef>
#include <type_traits>

#include "ring/modarith_avx2.h"

namespace xcloud {
namespace detail {

namespace {

inline __m256d load_pd(const double* p) { return _mm256_loadu_pd(p); }
inline void store_pd(double* p, __m256d v) { _mm256_storeu_pd(p, v); }
inline __m256d bcast(const double* p) { return _mm256_broadcast_sd(p); }

// ---- reduction schedule ------------------------------------------------------

constexpr uint64_t kLimit = uint64_t{1} << 51;
constexpr int kMaxLog = 17;

// An upper bound on |mul_balanced(a, w)| for |a| <= A < 2^51 (see above).
inline uint64_t mul_bound(uint64_t A, uint64_t q) {
  return (q + 1) / 2 + static_cast<uint64_t>((static_cast<unsigned __int128>(A) * q) >> 53) + 1;
}

// red[s] for the stages in execution order s = 0 .. log2(n) - 1: true when
// stage s reduces X (forward) or X + Y (inverse). in_bound: an upper bound on
// the magnitude of the input values (q - 1, or 3q/4 + 1 after inverse_mul's
// products). The inverse's last stage always multiplies (red[] unused there).
struct Schedule {
  bool red[kMaxLog];
};

Schedule forward_schedule(uint64_t q, int log_n) {
  Schedule s{};
  uint64_t b = q - 1;
  for (int k = 0; k < log_n; ++k) {
    const uint64_t m = mul_bound(b, q);
    s.red[k] = !(b + m < kLimit);
    b = (s.red[k] ? (q + 1) / 2 : b) + m;
  }
  return s;
}

Schedule inverse_schedule(uint64_t q, int log_n, uint64_t in_bound) {
  Schedule s{};
  uint64_t b = in_bound;  // 2b < 2^51 holds: b < q < 2^50
  for (int k = 0; k + 1 < log_n; ++k) {
    const uint64_t dm = mul_bound(2 * b, q);
    const uint64_t grown = 2 * b > dm ? 2 * b : dm;
    s.red[k] = !(2 * grown < kLimit);
    const uint64_t x = s.red[k] ? (q + 1) / 2 : 2 * b;
    b = x > dm ? x : dm;
  }
  return s;
}

inline int log2_of(size_t n) { return __builtin_ctzll(n); }

template <typename F>
inline void with_bool(bool b, F&& f) {
  if (b) {
    f(std::true_type{});
  } else {
    f(std::false_type{});
  }
}

// ---- butterflies -------------------------------------------------------------

// Forward butterfly on 4 lanes: (X, Y) -> (X' + wY, X' - wY), X' = X reduced
// when kRed, else X.
template <bool kRed>
inline void fwd_bfly(__m256d& x, __m256d& y, __m256d w, __m256d wq, const ModConsts& c) {
  const __m256d xr = kRed ? reduce_balanced(x, c) : x;
  const __m256d t = mul_balanced(y, w, wq, c);
  x = _mm256_add_pd(xr, t);
  y = _mm256_sub_pd(xr, t);
}

// Inverse butterfly: (X, Y) -> (X + Y reduced when kRed, (X - Y) w).
template <bool kRed>
inline void inv_bfly(__m256d& x, __m256d& y, __m256d w, __m256d wq, const ModConsts& c) {
  const __m256d s = _mm256_add_pd(x, y);
  const __m256d d = _mm256_sub_pd(x, y);
  x = kRed ? reduce_balanced(s, c) : s;
  y = mul_balanced(d, w, wq, c);
}

inline __m256d load_maybe_u64(const double* p, bool from_u64) {
  return from_u64 ? u64_to_pd(load_u64(reinterpret_cast<const uint64_t*>(p))) : load_pd(p);
}

// ---- forward passes ----------------------------------------------------------

// One forward stage with half-length t >= 4 and m = n / (2t) groups.
// kFirst: the input is still u64 (converted on load).
template <bool kFirst, bool kRed>
void fwd_r2(double* d, size_t m, size_t t, const double* tw, const ModConsts& c) {
  for (size_t i = 0; i < m; ++i) {
    const __m256d w = bcast(tw + 2 * (m + i)), wq = bcast(tw + 2 * (m + i) + 1);
    double* x = d + 2 * i * t;
    double* y = x + t;
    for (size_t j = 0; j < t; j += 4) {
      __m256d vx = load_maybe_u64(x + j, kFirst), vy = load_maybe_u64(y + j, kFirst);
      fwd_bfly<kRed>(vx, vy, w, wq, c);
      store_pd(x + j, vx);
      store_pd(y + j, vy);
    }
  }
}

// Two forward stages, (m groups, half-length t) then (2m, t/2), t/2 >= 4.
// Group i of the first covers [2it, 2it + 2t), which holds groups 2i, 2i+1
// of the second: a0..a3 at offsets 0, u, 2u, 3u (u = t/2) from 2it.
// fwd_quads does kK such quadruples of vectors side by side (independent
// chains for the out-of-order core): x[r] their first vector, w[r] the
// twiddles of their group {w1, w1/q, w2, w2/q, w3, w3/q}.
template <bool kFirst, bool kRed1, bool kRed2, int kK>
inline void fwd_quads(double* const* x, size_t u, const __m256d (*w)[6], const ModConsts& c) {
  __m256d a0[kK], a1[kK], a2[kK], a3[kK];
  for (int r = 0; r < kK; ++r) {
    a0[r] = load_maybe_u64(x[r], kFirst);
    a1[r] = load_maybe_u64(x[r] + u, kFirst);
    a2[r] = load_maybe_u64(x[r] + 2 * u, kFirst);
    a3[r] = load_maybe_u64(x[r] + 3 * u, kFirst);
  }
  for (int r = 0; r < kK; ++r) fwd_bfly<kRed1>(a0[r], a2[r], w[r][0], w[r][1], c);
  for (int r = 0; r < kK; ++r) fwd_bfly<kRed1>(a1[r], a3[r], w[r][0], w[r][1], c);
  for (int r = 0; r < kK; ++r) fwd_bfly<kRed2>(a0[r], a1[r], w[r][2], w[r][3], c);
  for (int r = 0; r < kK; ++r) fwd_bfly<kRed2>(a2[r], a3[r], w[r][4], w[r][5], c);
  for (int r = 0; r < kK; ++r) {
    store_pd(x[r], a0[r]);
    store_pd(x[r] + u, a1[r]);
    store_pd(x[r] + 2 * u, a2[r]);
    store_pd(x[r] + 3 * u, a3[r]);
  }
}

// {p[0], p[1]} as 2 twiddle vectors then {q[0], q[1], q[2], q[3]} (kFourFirst
// false: forward radix-4), or {p[0..3]} then {q[0], q[1]} (inverse).
template <bool kFourFirst = false>
inline void load_tw6(__m256d* w, const double* p, const double* q) {
  const int np = kFourFirst ? 4 : 2;
  for (int k = 0; k < 6; ++k) w[k] = k < np ? bcast(p + k) : bcast(q + k - np);
}

template <bool kFirst, bool kRed1, bool kRed2>
void fwd_r4(double* d, size_t m, size_t t, const double* tw, const ModConsts& c) {
  const size_t u = t / 2;
  if (u == 4 && m % 2 == 0) {
    // One quadruple per group: two groups at a time.
    for (size_t i = 0; i < m; i += 2) {
      __m256d w[2][6];
      load_tw6(w[0], tw + 2 * (m + i), tw + 2 * (2 * m + 2 * i));
      load_tw6(w[1], tw + 2 * (m + i + 1), tw + 2 * (2 * m + 2 * i + 2));
      double* const x[2] = {d + 2 * i * t, d + 2 * (i + 1) * t};
      fwd_quads<kFirst, kRed1, kRed2, 2>(x, u, w, c);
    }
    return;
  }
  for (size_t i = 0; i < m; ++i) {
    __m256d w[2][6];
    load_tw6(w[0], tw + 2 * (m + i), tw + 2 * (2 * m + 2 * i));
    for (int k = 0; k < 6; ++k) w[1][k] = w[0][k];
    double* x = d + 2 * i * t;
    if (u % 8 == 0) {
      for (size_t j = 0; j < u; j += 8) {
        double* const xs[2] = {x + j, x + j + 4};
        fwd_quads<kFirst, kRed1, kRed2, 2>(xs, u, w, c);
      }
    } else {
      double* const xs[1] = {x};
      fwd_quads<kFirst, kRed1, kRed2, 1>(xs, u, w, c);
    }
  }
}

// Stages t = 2 and t = 1 on each block of 8 values, then [0, q) and u64
// (fwd_last_blocks: kK blocks side by side at d, tw2, tw1).
// t = 2: X = [0 1 4 5], Y = [2 3 6 7] (128-bit lane permutes; fwd_t2 lanes
// {c, c, c+1, c+1}). t = 1: X = [0 2 4 6], Y = [1 3 5 7] (unpacklo/hi;
// fwd_t1 lanes {0, 1, 2, 3}); unpacklo/hi of the results are [0 1 4 5],
// [2 3 6 7], and 128-bit lane permutes give [0 1 2 3], [4 5 6 7].
template <bool kRed2, bool kRed1, int kK>
inline void fwd_last_blocks(double* d, const double* tw2, const double* tw1, const ModConsts& c) {
  __m256d x[kK], y[kK];
  for (int r = 0; r < kK; ++r) {
    const __m256d v0 = load_pd(d + 8 * r), v1 = load_pd(d + 8 * r + 4);
    x[r] = _mm256_permute2f128_pd(v0, v1, 0x20);
    y[r] = _mm256_permute2f128_pd(v0, v1, 0x31);
  }
  for (int r = 0; r < kK; ++r) fwd_bfly<kRed2>(x[r], y[r], load_pd(tw2 + 8 * r), load_pd(tw2 + 8 * r + 4), c);
  for (int r = 0; r < kK; ++r) {
    const __m256d a = _mm256_unpacklo_pd(x[r], y[r]), b = _mm256_unpackhi_pd(x[r], y[r]);
    x[r] = a;
    y[r] = b;
  }
  for (int r = 0; r < kK; ++r) fwd_bfly<kRed1>(x[r], y[r], load_pd(tw1 + 8 * r), load_pd(tw1 + 8 * r + 4), c);
  for (int r = 0; r < kK; ++r) {
    const __m256d o0 = canon_full(_mm256_unpacklo_pd(x[r], y[r]), c);
    const __m256d o1 = canon_full(_mm256_unpackhi_pd(x[r], y[r]), c);
    store_u64(reinterpret_cast<uint64_t*>(d + 8 * r), pd_to_u64(_mm256_permute2f128_pd(o0, o1, 0x20)));
    store_u64(reinterpret_cast<uint64_t*>(d + 8 * r + 4), pd_to_u64(_mm256_permute2f128_pd(o0, o1, 0x31)));
  }
}

template <bool kRed2, bool kRed1>
void fwd_last(double* d, size_t n, const double* tw2, const double* tw1, const ModConsts& c) {
  if (n == 8) {
    fwd_last_blocks<kRed2, kRed1, 1>(d, tw2, tw1, c);
    return;
  }
  for (size_t k = 0; k < n; k += 16) fwd_last_blocks<kRed2, kRed1, 2>(d + k, tw2 + k, tw1 + k, c);
}

// ---- inverse passes ----------------------------------------------------------

// Stages t = 1 and t = 2 on each block of 8 values (inv_first_blocks: kK
// blocks side by side), converting from u64
// (src) and, when kMul, multiplying by mul (balanced products, |.| < 3q/4).
// t = 1: X = [0 4 2 6], Y = [1 5 3 7] (unpack; inv_t1 lanes {0, 2, 1, 3}).
// t = 2: unpacklo/hi give [0 1 2 3], [4 5 6 7]; X = [0 1 4 5], Y = [2 3 6 7]
// (128-bit permutes; inv_t2 lanes {c, c, c+1, c+1}), and back likewise.
template <bool kMul, bool kRed1, bool kRed2, int kK>
inline void inv_first_blocks(double* d, const double* tw1, const double* tw2, const ModConsts& c, const uint64_t* src,
                             const uint64_t* mul) {
  __m256d x[kK], y[kK];
  for (int r = 0; r < kK; ++r) {
    __m256d v0 = u64_to_pd(load_u64(src + 8 * r));
    __m256d v1 = u64_to_pd(load_u64(src + 8 * r + 4));
    if (kMul) {
      v0 = mul_balanced_var(v0, u64_to_pd(load_u64(mul + 8 * r)), c);
      v1 = mul_balanced_var(v1, u64_to_pd(load_u64(mul + 8 * r + 4)), c);
    }
    x[r] = _mm256_unpacklo_pd(v0, v1);
    y[r] = _mm256_unpackhi_pd(v0, v1);
  }
  for (int r = 0; r < kK; ++r) inv_bfly<kRed1>(x[r], y[r], load_pd(tw1 + 8 * r), load_pd(tw1 + 8 * r + 4), c);
  for (int r = 0; r < kK; ++r) {
    const __m256d a = _mm256_unpacklo_pd(x[r], y[r]), b = _mm256_unpackhi_pd(x[r], y[r]);
    x[r] = _mm256_permute2f128_pd(a, b, 0x20);
    y[r] = _mm256_permute2f128_pd(a, b, 0x31);
  }
  for (int r = 0; r < kK; ++r) inv_bfly<kRed2>(x[r], y[r], load_pd(tw2 + 8 * r), load_pd(tw2 + 8 * r + 4), c);
  for (int r = 0; r < kK; ++r) {
    store_pd(d + 8 * r, _mm256_permute2f128_pd(x[r], y[r], 0x20));
    store_pd(d + 8 * r + 4, _mm256_permute2f128_pd(x[r], y[r], 0x31));
  }
}

template <bool kMul, bool kRed1, bool kRed2>
void inv_first(double* d, size_t n, const double* tw1, const double* tw2, const ModConsts& c, const uint64_t* src,
               const uint64_t* mul) {
  if (n == 8) {
    inv_first_blocks<kMul, kRed1, kRed2, 1>(d, tw1, tw2, c, src, mul);
    return;
  }
  for (size_t k = 0; k < n; k += 16) {
    inv_first_blocks<kMul, kRed1, kRed2, 2>(d + k, tw1 + k, tw2 + k, c, src + k, kMul ? mul + k : nullptr);
  }
}

// Last inverse stage on one vector pair: X' = (X + Y) n^-1, Y' = (X - Y) w
// n^-1 (|X + Y|, |X - Y| < 2^51, outputs in (-q, q)), then [0, q) and u64.
struct LastConsts {
  __m256d ni, niq, wn, wnq;
  explicit LastConsts(const double* l)
      : ni(_mm256_set1_pd(l[0])), niq(_mm256_set1_pd(l[1])), wn(_mm256_set1_pd(l[2])), wnq(_mm256_set1_pd(l[3])) {}
};

// The coefficient encoding's plaintext plus noise, (r + e) mod q in [0, q),
// for r = nearbyint(x * scale) (exact integer doubles, |r| < 2^62) and
// e[0..3] (|e| < 2^31). Fast path, every |r| < 2^51 - 2^31: r + e is exact
// with |r + e| < 2^51 and canon_full reduces it; otherwise these four lanes
// take the int64 formula (the conversion of r is exact). The branch is on
// the plaintext's magnitude, which the parameter set bounds: it is never
// taken for inputs within max_value when max_value * scale < 2^51 - 2^31
// (every set with one prime, q < 2^50), as in poly_signed_avx2 before.
inline __m256d encoded_residue4(__m256d r, const int32_t* e, const ModConsts& c, uint64_t q) {
  const __m256d limit = _mm256_set1_pd(2251797666201600.0);  // 2^51 - 2^31
  const __m256d abs_mask = _mm256_castsi256_pd(_mm256_set1_epi64x(INT64_MAX));
  const __m256d small = _mm256_cmp_pd(_mm256_and_pd(r, abs_mask), limit, _CMP_LT_OQ);
  if (_mm256_movemask_pd(small) == 0xf) {
    const __m256d ev = _mm256_cvtepi32_pd(_mm_loadu_si128(reinterpret_cast<const __m128i*>(e)));
    return canon_full(_mm256_add_pd(r, ev), c);
  }
  alignas(32) double rs[4];
  alignas(32) uint64_t tmp[4];
  _mm256_store_pd(rs, r);
  for (int k = 0; k < 4; ++k) tmp[k] = signed_mod_slow(static_cast<int64_t>(rs[k]) + e[k], q);
  return u64_to_pd(_mm256_load_si256(reinterpret_cast<const __m256i*>(tmp)));
}

// nearbyint(x[0..3] * scale) (one IEEE product, then the current rounding
// mode without raising inexact: nearbyint's result exactly), or 0 in the
// lanes at or beyond count - i (x is read only below count).
template <typename T>
inline __m256d rounded_scaled4(const T* x, size_t i, size_t count, __m256d scale) {
  constexpr int kRound = _MM_FROUND_CUR_DIRECTION | _MM_FROUND_NO_EXC;
  if (i + 4 <= count) return _mm256_round_pd(_mm256_mul_pd(load4_pd(x + i), scale), kRound);
  if (i >= count) return _mm256_setzero_pd();
  alignas(32) T tail[4] = {};
  for (size_t k = 0; i + k < count; ++k) tail[k] = x[i + k];
  return _mm256_round_pd(_mm256_mul_pd(load4_pd(tail), scale), kRound);
}

// What the last stage does with its outputs, r in [0, q) as doubles, at
// p (the array viewed as doubles, index p - base). StoreResidues: the
// transform's output as u64. EncodeMinus<T>: the coefficient encoding's
// c0 = (round(x * scale) + e) - r mod q (poly_encode_minus, poly_ops.h).
struct StoreResidues {
  void operator()(double* p, __m256d r, const ModConsts&) const {
    store_u64(reinterpret_cast<uint64_t*>(p), pd_to_u64(r));
  }
};
template <typename T>
struct EncodeMinus {
  const double* base;
  const T* x;
  size_t count;
  __m256d scale;
  const int32_t* e;
  uint64_t q;
  void operator()(double* p, __m256d r, const ModConsts& c) const {
    const size_t i = static_cast<size_t>(p - base);
    const __m256d v = encoded_residue4(rounded_scaled4(x, i, count, scale), e + i, c, q);
    store_u64(reinterpret_cast<uint64_t*>(p), pd_to_u64(canon_from_signed(_mm256_sub_pd(v, r), c)));
  }
};

template <typename Out>
inline void inv_last_bfly(double* px, double* py, __m256d x, __m256d y, const LastConsts& l, const ModConsts& c,
                          const Out& out) {
  const __m256d s = mul_balanced(_mm256_add_pd(x, y), l.ni, l.niq, c);
  const __m256d r = mul_balanced(_mm256_sub_pd(x, y), l.wn, l.wnq, c);
  out(px, canon_from_signed(s, c), c);
  out(py, canon_from_signed(r, c), c);
}

// Two inverse stages, (h groups, half-length t) then (h/2, 2t), t >= 4.
// Group i of the second covers [4it, 4it + 4t), groups 2i, 2i+1 of the
// first: a0..a3 at offsets 0, t, 2t, 3t. kLast: the second is the last
// stage (h = 2, one block), which scales by n^-1 and stores u64.
// inv_quads does kK quadruples side by side, as fwd_quads; w[r] =
// {w(2i), /q, w(2i+1), /q, w(i), /q} for the first stage's groups 2i, 2i+1
// and the second's group i.
template <bool kRed1, bool kRed2, bool kLast, int kK, typename Out>
inline void inv_quads(double* const* x, size_t t, const __m256d (*w)[6], const LastConsts& l, const ModConsts& c,
                      const Out& out) {
  __m256d a0[kK], a1[kK], a2[kK], a3[kK];
  for (int r = 0; r < kK; ++r) {
    a0[r] = load_pd(x[r]);
    a1[r] = load_pd(x[r] + t);
    a2[r] = load_pd(x[r] + 2 * t);
    a3[r] = load_pd(x[r] + 3 * t);
  }
  for (int r = 0; r < kK; ++r) inv_bfly<kRed1>(a0[r], a1[r], w[r][0], w[r][1], c);
  for (int r = 0; r < kK; ++r) inv_bfly<kRed1>(a2[r], a3[r], w[r][2], w[r][3], c);
  if (kLast) {
    for (int r = 0; r < kK; ++r) inv_last_bfly(x[r], x[r] + 2 * t, a0[r], a2[r], l, c, out);
    for (int r = 0; r < kK; ++r) inv_last_bfly(x[r] + t, x[r] + 3 * t, a1[r], a3[r], l, c, out);
  } else {
    for (int r = 0; r < kK; ++r) inv_bfly<kRed2>(a0[r], a2[r], w[r][4], w[r][5], c);
    for (int r = 0; r < kK; ++r) inv_bfly<kRed2>(a1[r], a3[r], w[r][4], w[r][5], c);
    for (int r = 0; r < kK; ++r) {
      store_pd(x[r], a0[r]);
      store_pd(x[r] + t, a1[r]);
      store_pd(x[r] + 2 * t, a2[r]);
      store_pd(x[r] + 3 * t, a3[r]);
    }
  }
}

template <bool kRed1, bool kRed2, bool kLast, typename Out>
void inv_r4(double* d, size_t h, size_t t, const double* tw, const double* last, const ModConsts& c, const Out& out) {
  const LastConsts l(last);
  const size_t groups = h / 2;
  if (t == 4 && groups % 2 == 0) {
    for (size_t i = 0; i < groups; i += 2) {
      __m256d w[2][6];
      load_tw6<true>(w[0], tw + 2 * (h + 2 * i), tw + 2 * (h / 2 + i));
      load_tw6<true>(w[1], tw + 2 * (h + 2 * i + 2), tw + 2 * (h / 2 + i + 1));
      double* const x[2] = {d + 4 * i * t, d + 4 * (i + 1) * t};
      inv_quads<kRed1, kRed2, kLast, 2>(x, t, w, l, c, out);
    }
    return;
  }
  for (size_t i = 0; i < groups; ++i) {
    __m256d w[1][6];
    load_tw6<true>(w[0], tw + 2 * (h + 2 * i), tw + 2 * (h / 2 + i));
    double* x = d + 4 * i * t;
    for (size_t j = 0; j < t; j += 4) {
      double* const xs[1] = {x + j};
      inv_quads<kRed1, kRed2, kLast, 1>(xs, t, w, l, c, out);
    }
  }
}

// The last inverse stage alone (t = n/2, one group), when log2(n) is odd.
template <typename Out>
void inv_last_r2(double* d, size_t n, const double* last, const ModConsts& c, const Out& out) {
  const LastConsts l(last);
  const size_t t = n / 2;
  for (size_t j = 0; j < t; j += 4) inv_last_bfly(d + j, d + t + j, load_pd(d + j), load_pd(d + t + j), l, c, out);
}

template <typename Out>
void inverse_impl(const NttSimdView& v, double* d, const uint64_t* src, const uint64_t* mul, const Out& out) {
  const ModConsts c(v.q);
  const size_t n = v.n;
  const int log_n = log2_of(n);
  // Input bound: q - 1, or 3q/4 + 1 for inverse_mul's balanced products.
  const Schedule s = inverse_schedule(v.q, log_n, mul ? (3 * v.q) / 4 + 1 : v.q - 1);
  with_bool(s.red[0], [&](auto r1) {
    with_bool(s.red[1], [&](auto r2) {
      if (mul) {
        inv_first<true, decltype(r1)::value, decltype(r2)::value>(d, n, v.inv_t1, v.inv_t2, c, src, mul);
      } else {
        inv_first<false, decltype(r1)::value, decltype(r2)::value>(d, n, v.inv_t1, v.inv_t2, c, src, nullptr);
      }
    });
  });
  // Stages k = 2 .. log_n - 1 (t = 2^k) in pairs; the last one is the n^-1
  // stage, alone when their number is odd (n = 8: only it).
  int k = 2;
  const bool odd = (log_n - 2) % 2 == 1;
  for (; k + 1 < log_n - (odd ? 1 : 0); k += 2) {
    const size_t t = size_t{1} << k, h = n >> (k + 1);
    const bool last = !odd && k + 2 == log_n;
    with_bool(s.red[k], [&](auto r1) {
      if (last) {
        inv_r4<decltype(r1)::value, false, true>(d, h, t, v.inv_reg, v.inv_last, c, out);
      } else {
        with_bool(s.red[k + 1], [&](auto r2) {
          inv_r4<decltype(r1)::value, decltype(r2)::value, false>(d, h, t, v.inv_reg, v.inv_last, c, out);
        });
      }
    });
  }
  if (odd) inv_last_r2(d, n, v.inv_last, c, out);
}

}  // namespace

void ntt_forward_avx2(const NttSimdView& v, uint64_t* a) {
  const ModConsts c(v.q);
  const size_t n = v.n;
  const int log_n = log2_of(n);
  const Schedule s = forward_schedule(v.q, log_n);
  double* d = reinterpret_cast<double*>(a);
  // Stages k = 0 .. log_n - 3 (m = 2^k, t = n / 2^(k+1) >= 4), the first
  // pass converting from u64; then t = 2, 1.
  const int mid = log_n - 2;
  int k = 0;
  if (mid % 2 == 1) {
    with_bool(s.red[0], [&](auto r) { fwd_r2<true, decltype(r)::value>(d, 1, n / 2, v.fwd_reg, c); });
    k = 1;
  }
  for (; k < mid; k += 2) {
    const size_t m = size_t{1} << k, t = n >> (k + 1);
    const bool first = k == 0;
    with_bool(s.red[k], [&](auto r1) {
      with_bool(s.red[k + 1], [&](auto r2) {
        if (first) {
          fwd_r4<true, decltype(r1)::value, decltype(r2)::value>(d, m, t, v.fwd_reg, c);
        } else {
          fwd_r4<false, decltype(r1)::value, decltype(r2)::value>(d, m, t, v.fwd_reg, c);
        }
      });
    });
  }
  with_bool(s.red[log_n - 2], [&](auto r2) {
    with_bool(s.red[log_n - 1], [&](auto r1) {
      fwd_last<decltype(r2)::value, decltype(r1)::value>(d, n, v.fwd_t2, v.fwd_t1, c);
    });
  });
}

void ntt_inverse_avx2(const NttSimdView& v, uint64_t* a) {
  inverse_impl(v, reinterpret_cast<double*>(a), a, nullptr, StoreResidues{});
}

void ntt_inverse_mul_avx2(const NttSimdView& v, uint64_t* out, const uint64_t* a, const uint64_t* b) {
  inverse_impl(v, reinterpret_cast<double*>(out), a, b, StoreResidues{});
}

namespace {
template <typename T>
void inverse_mul_encode_minus(const NttSimdView& v, uint64_t* out, const uint64_t* a, const uint64_t* b, const T* x,
                              size_t count, double scale, const int32_t* e) {
  double* d = reinterpret_cast<double*>(out);
  inverse_impl(v, d, a, b, EncodeMinus<T>{d, x, count, _mm256_set1_pd(scale), e, v.q});
}
}  // namespace

void ntt_inverse_mul_encode_minus_avx2(const NttSimdView& v, uint64_t* out, const uint64_t* a, const uint64_t* b,
                                       const float* x, size_t count, double scale, const int32_t* e) {
  inverse_mul_encode_minus(v, out, a, b, x, count, scale, e);
}
void ntt_inverse_mul_encode_minus_avx2(const NttSimdView& v, uint64_t* out, const uint64_t* a, const uint64_t* b,
                                       const double* x, size_t count, double scale, const int32_t* e) {
  inverse_mul_encode_minus(v, out, a, b, x, count, scale, e);
}

}  // namespace detail
}  // namespace xcloud
