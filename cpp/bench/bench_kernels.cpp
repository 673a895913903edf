// Micro-benchmarks of the kernel: scalar reference vs SIMD path, per area.
//
//   cmake -S . -B build-bench -G Ninja -DXCLOUD_BUILD_BENCH=ON && ninja -C build-bench bench_kernels
//   ./build-bench/bench_kernels            # all
//   ./build-bench/bench_kernels ntt chacha # selected areas
//   ./build-bench/bench_kernels aessecret  # AES for secret keys: CT vs table, noise from ChaCha20 vs AES-CTR
//   ./build-bench/bench_kernels hash dpnoise  # SHA-256 (SHA-NI or portable); DP noise, scalar vs AVX2
//
// Plain std::chrono, best of N repetitions (the minimum is the least noisy
// estimate on a shared machine). Each SIMD result is checked against the
// scalar one before it is timed; a mismatch exits with status 1.
// Benchmarks are not tests: nothing here asserts a time.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "ckks/byte_io.h"
#include "ckks/crt.h"
#include "ckks/encoder.h"
#include "ckks/encryptor.h"
#include "ckks/keys.h"
#include "ckks/params.h"
#include "parallel/memory.h"
#include "parallel/parallel_for.h"
#include "ring/aes256.h"
#include "ring/chacha20.h"
#include "ring/ntt.h"
#include "ring/poly_ops.h"
#include "ring/real_sampler.h"
#include "ring/sampler.h"
#include "ring/sha256.h"
#include "ring/simd.h"

using namespace xcloud;

namespace {

double best_ns(const std::function<void()>& f, int reps) {
  double best = 1e300;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    const auto t1 = std::chrono::steady_clock::now();
    const double ns = std::chrono::duration<double, std::nano>(t1 - t0).count();
    if (ns < best) best = ns;
  }
  return best;
}

double best_cpu_ns(const std::function<void()>& f, int reps) {
  double best = 1e300;
  for (int r = 0; r < reps; ++r) {
    timespec a{}, b{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
    f();
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
    const double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
    if (ns < best) best = ns;
  }
  return best;
}

// Times f on the scalar path and on the SIMD path (if supported).
struct Pair {
  double scalar, simd;
};
Pair both(const std::function<void()>& f, int reps) {
  const bool before = set_force_scalar(true);
  Pair p;
  p.scalar = best_ns(f, reps);
  set_force_scalar(false);
  p.simd = simd_supported() ? best_ns(f, reps) : p.scalar;
  set_force_scalar(before);
  return p;
}

template <typename T>
std::vector<T> run_path(bool scalar, const std::function<std::vector<T>()>& f) {
  const bool before = set_force_scalar(scalar);
  auto r = f();
  set_force_scalar(before);
  return r;
}

int g_mismatch = 0;
template <typename T>
void check_same(const char* what, const std::function<std::vector<T>()>& f) {
  if (run_path<T>(true, f) != run_path<T>(false, f)) {
    std::printf("MISMATCH scalar vs SIMD: %s\n", what);
    ++g_mismatch;
  }
}

bool want(int argc, char** argv, const char* area) {
  if (argc < 2) return true;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], area) == 0) return true;
  }
  return false;
}

// The benchmarks' payload: float32 values in [-1, 1] on a grid of 1e-6, drawn from g.
void fill_payload(std::vector<float>& x, std::mt19937_64& g) {
  for (auto& v : x) v = static_cast<float>(static_cast<double>(g() % 2000001) / 1e6 - 1.0);
}

// A derandomised encryption request for the flat float32 vector x (threads <= 0: all cores).
EncryptRequest float_request(const std::vector<float>& x, const Seed& seed, int threads) {
  EncryptRequest req;
  req.data = x.data();
  req.dtype = DType::kFloat32;
  req.count = x.size();
  req.shape = {static_cast<int64_t>(x.size())};
  req.threads = threads;
  req.seed = seed;
  return req;
}

void bench_ntt() {
  std::mt19937_64 g(1);
  for (size_t n : {4096, 8192}) {
    for (int bits : {36, 50}) {
      const u64 q = generate_ntt_primes(bits, 2 * n, 1, {})[0];
      const NttTables t(q, n);
      std::vector<u64> a(n), b(n);
      for (auto& x : a) x = g() % q;
      check_same<u64>("ntt forward", [&] { auto v = a; t.forward(v.data()); return v; });
      check_same<u64>("ntt inverse", [&] { auto v = a; t.inverse(v.data()); return v; });
      const double bf = static_cast<double>(n / 2) * __builtin_ctzll(n);
      // In place, over and over: every output is canonical, so it is a valid
      // next input, and no copy is timed (a 32 KiB memcpy per rep measured
      // about as long as the transform it preceded).
      std::memcpy(b.data(), a.data(), n * 8);
      const Pair f = both([&] { t.forward(b.data()); }, 300);
      const Pair i = both([&] { t.inverse(b.data()); }, 300);
      std::printf("ntt    N=%5zu q %d bits  forward: scalar %.3f ns/bfly (%6.1f us)  simd %.3f ns/bfly (%5.1f us)  x%.1f\n",
                  n, bits, f.scalar / bf, f.scalar / 1e3, f.simd / bf, f.simd / 1e3, f.scalar / f.simd);
      std::printf("ntt    N=%5zu q %d bits  inverse: scalar %.3f ns/bfly (%6.1f us)  simd %.3f ns/bfly (%5.1f us)  x%.1f\n",
                  n, bits, i.scalar / bf, i.scalar / 1e3, i.simd / bf, i.simd / 1e3, i.scalar / i.simd);
      std::vector<u64> w(n), ws(n);
      for (size_t k = 0; k < n; ++k) {
        w[k] = g() % q;
        ws[k] = shoup_precompute(w[k], q);
      }
      check_same<u64>("ntt inverse_mul", [&] { std::vector<u64> o(n); t.inverse_mul(o.data(), a.data(), w.data(), ws.data()); return o; });
      const Pair im = both([&] { t.inverse_mul(b.data(), a.data(), w.data(), ws.data()); }, 300);
      const Pair sep = both([&] { poly_mul(b.data(), a.data(), w.data(), ws.data(), n, q); t.inverse(b.data()); }, 300);
      std::printf("ntt    N=%5zu q %d bits  inverse(a*b): separate simd %5.1f us, fused simd %5.1f us (scalar %5.1f us)\n", n,
                  bits, sep.simd / 1e3, im.simd / 1e3, im.scalar / 1e3);
    }
  }
}

void bench_poly() {
  std::mt19937_64 g(2);
  const size_t n = 4096;
  const u64 q = generate_ntt_primes(36, 2 * n, 1, {})[0];
  std::vector<u64> a(n), b(n), bs(n), out(n);
  std::vector<int64_t> m(n);
  std::vector<int32_t> e(n);
  for (size_t i = 0; i < n; ++i) {
    a[i] = g() % q;
    b[i] = g() % q;
    bs[i] = shoup_precompute(b[i], q);
    m[i] = static_cast<int64_t>(g() % (u64{1} << 40)) - (int64_t{1} << 39);
    e[i] = static_cast<int32_t>(g() % 43) - 21;
  }
  check_same<u64>("poly_mul", [&] { std::vector<u64> o(n); poly_mul(o.data(), a.data(), b.data(), bs.data(), n, q); return o; });
  check_same<u64>("poly_signed_minus", [&] { std::vector<u64> o(n); poly_signed_minus(o.data(), m.data(), e.data(), a.data(), n, q); return o; });
  std::vector<double> md(n);
  for (auto& v : md) v = static_cast<double>(static_cast<int64_t>(g() % 2000001) - 1000000) * 1e-6;
  check_same<int64_t>("round_scaled", [&] { std::vector<int64_t> o(n); round_scaled(o.data(), md.data(), 274877906944.0, n); return o; });
  const u64 w = g() % q, ws = shoup_precompute(w, q);
  Pair p = both([&] { poly_mul(out.data(), a.data(), b.data(), bs.data(), n, q); }, 2000);
  std::printf("poly   N=%zu mul (a*b, Shoup ref)        scalar %.3f ns/coef  simd %.3f ns/coef  x%.1f\n", n, p.scalar / n, p.simd / n, p.scalar / p.simd);
  p = both([&] { poly_mul_add(out.data(), a.data(), b.data(), bs.data(), n, q); }, 2000);
  std::printf("poly   N=%zu mul_add (out += a*b)        scalar %.3f ns/coef  simd %.3f ns/coef  x%.1f\n", n, p.scalar / n, p.simd / n, p.scalar / p.simd);
  p = both([&] { poly_scalar_mul_add(out.data(), a.data(), w, ws, n, q); }, 2000);
  std::printf("poly   N=%zu scalar_mul_add (out += a*w) scalar %.3f ns/coef  simd %.3f ns/coef  x%.1f\n", n, p.scalar / n, p.simd / n, p.scalar / p.simd);
  {
    // Aggregation: the weighted sum of 10 inputs (each N residues).
    constexpr size_t K = 10;
    std::vector<std::vector<u64>> ins(K, std::vector<u64>(n));
    std::vector<const u64*> ptrs(K);
    std::vector<u64> wk(K), wks(K);
    for (size_t k = 0; k < K; ++k) {
      for (auto& v : ins[k]) v = g() % q;
      ptrs[k] = ins[k].data();
      wk[k] = g() % q;
      wks[k] = shoup_precompute(wk[k], q);
    }
    {
      // 16 terms modulo a prime just below 2^50: the lazy sum must reduce
      // in between (every 9 terms there).
      const u64 q50 = generate_ntt_primes(50, 2 * n, 1, {})[0];
      std::vector<std::vector<u64>> big(16, std::vector<u64>(n));
      std::vector<const u64*> bp(16);
      std::vector<u64> bw(16), bws(16);
      for (size_t k = 0; k < 16; ++k) {
        for (auto& v : big[k]) v = q50 - 1 - g() % 1000;
        bp[k] = big[k].data();
        bw[k] = q50 - 1 - k;
        bws[k] = shoup_precompute(bw[k], q50);
      }
      check_same<u64>("poly_weighted_sum 50-bit", [&] { std::vector<u64> o(n, q50 - 1); poly_weighted_sum(o.data(), bp.data(), bw.data(), bws.data(), 16, n, q50, true); return o; });
    }
    check_same<u64>("poly_weighted_sum", [&] { std::vector<u64> o(n); poly_weighted_sum(o.data(), ptrs.data(), wk.data(), wks.data(), K, n, q, false); return o; });
    const Pair ws10 = both([&] { poly_weighted_sum(out.data(), ptrs.data(), wk.data(), wks.data(), K, n, q, false); }, 1000);
    std::printf("poly   N=%zu weighted_sum of %zu inputs     scalar %.3f ns/coef/input  simd %.3f ns/coef/input  x%.1f\n", n, K,
                ws10.scalar / n / K, ws10.simd / n / K, ws10.scalar / ws10.simd);
  }
  p = both([&] { poly_add(out.data(), a.data(), b.data(), n, q); }, 2000);
  std::printf("poly   N=%zu add                         scalar %.3f ns/coef  simd %.3f ns/coef  x%.1f\n", n, p.scalar / n, p.simd / n, p.scalar / p.simd);
  p = both([&] { poly_signed_minus(out.data(), m.data(), e.data(), a.data(), n, q); }, 2000);
  std::printf("poly   N=%zu signed_minus (m+e-t, Barrett) scalar %.3f ns/coef  simd %.3f ns/coef  x%.1f\n", n, p.scalar / n, p.simd / n, p.scalar / p.simd);
  p = both([&] { round_scaled(m.data(), md.data(), 274877906944.0, n); }, 2000);
  std::printf("real   N=%zu round_scaled (nearbyint)      scalar %.3f ns/coef  simd %.3f ns/coef  x%.1f\n", n, p.scalar / n, p.simd / n, p.scalar / p.simd);
  std::vector<float> xf(n, 0.5f);
  size_t sink = 0;
  p = both([&] { sink += find_out_of_range(xf.data(), n, 1.0); }, 2000);
  std::printf("real   N=%zu range check (float32)        scalar %.3f ns/value simd %.3f ns/value x%.1f\n", n, p.scalar / n, p.simd / n, p.scalar / p.simd);
  if (sink != 4000 * n) std::printf("unexpected range check result\n");
}

void bench_random() {
  uint8_t key[32] = {1}, nonce[12] = {2};
  std::vector<uint8_t> buf(1 << 16);
  check_same<uint8_t>("chacha20 fill", [&] {
    std::vector<uint8_t> o(100003);
    ChaCha20Stream s(key, nonce, 7);
    s.fill(o.data(), 5);
    s.fill(o.data() + 5, o.size() - 5);
    return o;
  });
  Pair p = both([&] { ChaCha20Stream s(key, nonce); s.fill(buf.data(), buf.size()); }, 200);
  std::printf("chacha20 fill 64 KiB            scalar %.3f GB/s  simd %.3f GB/s  x%.1f\n", buf.size() / p.scalar,
              buf.size() / p.simd, p.scalar / p.simd);
  const size_t n = 4096;
  for (int bits : {36, 50}) {
    const u64 q = generate_ntt_primes(bits, 2 * n, 1, {})[0];
    std::vector<u64> u(n);
    check_same<u64>("uniform", [&] { std::vector<u64> o(n); ChaCha20Stream s(key, nonce); sample_uniform_mod(s, q, o.data(), n); return o; });
    p = both([&] { ChaCha20Stream s(key, nonce); sample_uniform_mod(s, q, u.data(), n); }, 300);
    std::printf("uniform mod %d-bit q (N=%zu)     scalar %.3f ns/value  simd %.3f ns/value  x%.1f\n", bits, n, p.scalar / n,
                p.simd / n, p.scalar / p.simd);
  }
  // AES-256-CTR (public seeds): portable, AES-NI, VAES; and the sampler that
  // draws ceil(bits/8) bytes per try from it (wire version 2), against the
  // ChaCha20 one with 8 bytes per try (version 1), interleaved.
  const uint8_t cb[16] = {3};
  check_same<uint8_t>("aes256-ctr fill", [&] {
    std::vector<uint8_t> o(100003);
    Aes256Ctr s(key, cb);
    s.fill(o.data(), 5);
    s.fill(o.data() + 5, o.size() - 5);
    return o;
  });
  {
    const bool before = set_force_scalar(false);
    double t[3] = {1e300, 1e300, 1e300};
    const char* names[3] = {"portable", "aes-ni", "vaes"};
    uint8_t rk[240];
    aes256_expand_key(key, rk);
    const size_t blocks = buf.size() / 16;
    for (int path = 0; path < 3; ++path) {
      if (path > 0 && std::strcmp(aes256_ctr_path(), "portable") == 0) continue;
      if (path == 2 && std::strcmp(aes256_ctr_path(), "vaes") != 0) continue;
      auto fn = path == 0 ? detail::aes256_ctr_portable : path == 1 ? detail::aes256_ctr_ni : detail::aes256_ctr_vaes;
      t[path] = best_ns([&] { fn(rk, cb, 0, blocks, buf.data()); }, path == 0 ? 20 : 200);
      std::printf("aes256-ctr %-8s 64 KiB       %.3f GB/s\n", names[path], buf.size() / t[path]);
    }
    set_force_scalar(before);
  }
  for (int bits : {36, 47, 50}) {
    const u64 q = generate_ntt_primes(bits, 2 * n, 1, {})[0];
    std::vector<u64> u(n);
    check_same<u64>("uniform ctr", [&] { std::vector<u64> o(n); Aes256Ctr s(key, cb); sample_uniform_mod_ctr(s, q, o.data(), n); return o; });
    double old_ns = 1e300, new_ns = 1e300;
    for (int rep = 0; rep < 5; ++rep) {  // interleaved, best of each
      old_ns = std::min(old_ns, best_ns([&] { ChaCha20Stream s(key, nonce); sample_uniform_mod(s, q, u.data(), n); }, 60));
      new_ns = std::min(new_ns, best_ns([&] { Aes256Ctr s(key, cb); sample_uniform_mod_ctr(s, q, u.data(), n); }, 60));
    }
    std::printf("uniform %d-bit q (N=%zu): chacha20 8 B/try %.3f ns/value   aes-ctr %d B/try (%s) %.3f ns/value  x%.1f\n",
                bits, n, old_ns / n, (bits + 7) / 8, aes256_ctr_path(), new_ns / n, old_ns / new_ns);
  }
  std::vector<int32_t> e(n);
  check_same<int32_t>("cbd", [&] { std::vector<int32_t> o(n); ChaCha20Stream s(key, nonce); sample_cbd(s, o.data(), n); return o; });
  p = both([&] { ChaCha20Stream s(key, nonce); sample_cbd(s, e.data(), n); }, 300);
  std::printf("cbd eta=21 (N=%zu)               scalar %.3f ns/value  simd %.3f ns/value  x%.1f\n", n, p.scalar / n, p.simd / n,
              p.scalar / p.simd);
  std::vector<int8_t> t(n);
  check_same<int8_t>("ternary", [&] { std::vector<int8_t> o(n); ChaCha20Stream s(key, nonce); sample_ternary(s, o.data(), n); return o; });
  p = both([&] { ChaCha20Stream s(key, nonce); sample_ternary(s, t.data(), n); }, 300);
  std::printf("ternary (N=%zu)                  scalar %.3f ns/value  simd %.3f ns/value  x%.1f\n", n, p.scalar / n, p.simd / n,
              p.scalar / p.simd);
  check_same<int8_t>("ternary packed", [&] { std::vector<int8_t> o(n); ChaCha20Stream s(key, nonce); sample_ternary_packed(s, o.data(), n); return o; });
  p = both([&] { ChaCha20Stream s(key, nonce); sample_ternary_packed(s, t.data(), n); }, 300);
  std::printf("ternary packed, 8 per word (N=%zu) scalar %.3f ns/value  simd %.3f ns/value  x%.1f\n", n, p.scalar / n,
              p.simd / n, p.scalar / p.simd);
}

// AES-256 for secret keys (ring/aes256.h, AesKeyUse::kSecret): the
// constant-time portable kernel against the table one, and the encryption
// noise (CBD, 6 keystream bytes per value) drawn from ChaCha20 and from
// AES-256-CTR on each AES path. Each noise row constructs its stream inside
// the timed call (key schedule included, as one noise polynomial per stream
// would); the key schedules are timed on their own as well.
void bench_aes_secret() {
  const uint8_t key[32] = {5, 4, 3}, nonce[12] = {2}, cb[16] = {9};
  const size_t n = 4096;
  const bool scalar_before = set_force_scalar(false);
  {
    uint8_t rk[240];
    aes256_expand_key(key, rk);
    std::vector<uint8_t> ref(16 * 1024), out(16 * 1024);
    detail::aes256_ctr_portable(rk, cb, 0, 1024, ref.data());
    detail::aes256_ctr_ct(rk, cb, 0, 1024, out.data());
    if (out != ref) {
      std::printf("MISMATCH aes256 ct vs table\n");
      ++g_mismatch;
    }
    const size_t blocks = 4096;
    std::vector<uint8_t> buf(16 * blocks);
    double table = 1e300, ct = 1e300;
    for (int rep = 0; rep < 5; ++rep) {  // interleaved, best of each
      table = std::min(table, best_ns([&] { detail::aes256_ctr_portable(rk, cb, 0, blocks, buf.data()); }, 10));
      ct = std::min(ct, best_ns([&] { detail::aes256_ctr_ct(rk, cb, 0, blocks, buf.data()); }, 10));
    }
    std::printf("aes256-ctr portable, %zu blocks: table %.1f ns/block  constant-time %.1f ns/block  x%.2f\n", blocks,
                table / blocks, ct / blocks, ct / table);
    if (detail::aes256_cpu_has_aes_ni()) {
      const double ni = best_ns([&] { detail::aes256_ctr_ni(rk, cb, 0, blocks, buf.data()); }, 100);
      std::printf("aes256-ctr aes-ni, %zu blocks: %.2f ns/block\n", blocks, ni / blocks);
    }
    if (detail::aes256_cpu_has_vaes()) {
      const double va = best_ns([&] { detail::aes256_ctr_vaes(rk, cb, 0, blocks, buf.data()); }, 100);
      std::printf("aes256-ctr vaes, %zu blocks: %.2f ns/block\n", blocks, va / blocks);
    }
    const double ks_table = best_ns([&] { aes256_expand_key(key, rk); }, 2000);
    const double ks_ct = best_ns([&] { aes256_expand_key_ct(key, rk); }, 2000);
    std::printf("aes256 key schedule: table %.0f ns  constant-time %.0f ns", ks_table, ks_ct);
    if (detail::aes256_cpu_has_aes_ni()) {
      std::printf("  aes-ni %.0f ns", best_ns([&] { detail::aes256_expand_key_ni(key, rk); }, 2000));
    }
    std::printf("\n");
  }
  // The noise rows, each checked against the scalar reference of the same stream first.
  std::vector<int32_t> e(n), ref(n);
  {
    ChaCha20Stream s(key, nonce);
    detail::sample_cbd_scalar(s, ref.data(), n);
  }
  struct Row {
    const char* name;
    bool scalar, portable, ni;  // set_force_scalar, aes256_force_portable, aes256_force_ni
    bool aes;
  };
  std::vector<Row> rows = {{"chacha20 (avx2)", false, false, false, false},
                           {"chacha20 (scalar reference)", true, false, false, false}};
  if (detail::aes256_cpu_has_vaes()) rows.push_back({"aes-256-ctr vaes", false, false, false, true});
  if (detail::aes256_cpu_has_aes_ni()) rows.push_back({"aes-256-ctr aes-ni", false, false, true, true});
  rows.push_back({"aes-256-ctr constant-time portable", false, true, false, true});
  rows.push_back({"aes-256-ctr constant-time portable, scalar", true, false, false, true});
  std::vector<int32_t> aes_ref(n);
  {
    const bool p = aes256_force_portable(true);
    Aes256Ctr s(key, cb, AesKeyUse::kSecret);
    detail::sample_cbd_scalar(s, aes_ref.data(), n);
    aes256_force_portable(p);
  }
  std::printf("cbd eta=21 noise (N=%zu), stream constructed per call:\n", n);
  for (const Row& row : rows) {
    const bool sc = set_force_scalar(row.scalar), po = aes256_force_portable(row.portable), ni = aes256_force_ni(row.ni);
    auto draw = [&] {
      if (row.aes) {
        Aes256Ctr s(key, cb, AesKeyUse::kSecret);
        sample_cbd(s, e.data(), n);
      } else {
        ChaCha20Stream s(key, nonce);
        sample_cbd(s, e.data(), n);
      }
    };
    draw();
    if (e != (row.aes ? aes_ref : ref)) {
      std::printf("MISMATCH cbd %s vs its scalar reference\n", row.name);
      ++g_mismatch;
    }
    const char* path = row.aes ? aes256_ctr_path_for(AesKeyUse::kSecret) : (simd_enabled() ? "avx2" : "scalar");
    const double ns = best_ns(draw, row.aes && (row.portable || row.scalar) ? 30 : 300);
    std::printf("  %-44s [%s] %7.3f ns/value\n", row.name, path, ns / n);
    aes256_force_ni(ni);
    aes256_force_portable(po);
    set_force_scalar(sc);
  }
  set_force_scalar(scalar_before);
}

void bench_encoder() {
  std::mt19937_64 g(3);
  for (size_t n : {4096, 8192}) {
    const Encoder enc(n);
    std::vector<float> x(n);
    fill_payload(x, g);
    std::vector<double> m(n);
    std::vector<cplx> z(n / 2);
    check_same<double>("encode", [&] {
      enc.encode(x.data(), n, m.data(), z.data());
      return m;
    });
    check_same<float>("decode", [&] {
      std::vector<float> y(n);
      enc.decode(m.data(), y.data(), n, z.data());
      return y;
    });
    const Pair e = both([&] { enc.encode(x.data(), n, m.data(), z.data()); }, 300);
    std::vector<float> y(n);
    const Pair d = both([&] { enc.decode(m.data(), y.data(), n, z.data()); }, 300);
    std::printf("encoder N=%5zu  encode: scalar %.1f us  simd %.1f us  x%.1f   decode: scalar %.1f us  simd %.1f us  x%.1f\n",
                n, e.scalar / 1e3, e.simd / 1e3, e.scalar / e.simd, d.scalar / 1e3, d.simd / 1e3, d.scalar / d.simd);
  }
}

void bench_crt() {
  CkksParametersLiteral lit;
  const auto params = CkksParams::create(lit);
  const size_t n = params->n(), L = params->num_primes();
  const CrtReconstructor crt(*params);
  std::mt19937_64 g(4);
  // Residues of what a decryption sees: Delta * m + noise, |x| < 2^40.
  std::vector<u64> r(L * n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t x = static_cast<int64_t>(g() % (u64{1} << 41)) - (int64_t{1} << 40);
    for (size_t j = 0; j < L; ++j) r[j * n + i] = signed_to_residue(x, params->primes()[j]);
  }
  std::vector<double> out(n);
  check_same<double>("crt", [&] { std::vector<double> o(n); crt.centered_doubles(r.data(), n, 1.0 / 1024, o.data()); return o; });
  const Pair p = both([&] { crt.centered_doubles(r.data(), n, 1.0 / 1024, out.data()); }, 1000);
  std::printf("crt    L=%zu N=%zu                 scalar %.3f ns/coef  simd %.3f ns/coef  x%.1f\n", L, n, p.scalar / n,
              p.simd / n, p.scalar / p.simd);
}

// Per-block cost of the whole operations at the default parameters, one thread.
void bench_e2e() {
  CkksParametersLiteral lit;
  const auto params = CkksParams::create(lit);
  Seed seed{};
  seed[0] = 9;
  const auto keys = KeySet::generate_derand(params, seed);
  const size_t n_values = 256 * params->n();
  std::vector<float> x(n_values);
  std::mt19937_64 g(5);
  fill_payload(x, g);
  EncryptRequest req = float_request(x, seed, 1);
  std::vector<float> y(n_values);
  for (int mode = 0; mode < 2; ++mode) {
    CiphertextBatch ct;
    const Pair e = both([&] { ct = mode == 0 ? encrypt_secret(*keys, req) : encrypt_public(*keys, req); }, 5);
    const Pair d = both([&] { decrypt(*keys, ct, y.data(), DType::kFloat32, 1); }, 5);
    std::printf("e2e %s encrypt (1 thread)    scalar %6.2f M values/s  simd %6.2f M values/s  x%.1f\n",
                mode == 0 ? "secret-key" : "public-key", n_values / e.scalar * 1e3, n_values / e.simd * 1e3, e.scalar / e.simd);
    std::printf("e2e decrypt of %s (1 thread) scalar %6.2f M values/s  simd %6.2f M values/s  x%.1f\n",
                mode == 0 ? "secret-key" : "public-key", n_values / d.scalar * 1e3, n_values / d.simd * 1e3, d.scalar / d.simd);
  }
}

// Thread scaling of the whole operations (SIMD path), and the fixed cost of a
// small parallel call (what the persistent pool saves over starting threads).

// Where one block's time goes: each stage of a secret-key encryption and of
// its decryption, timed alone on the SIMD path (best of many), next to the
// whole call per block (1 thread, 256 blocks), for both presets.
void bench_stages() {
  struct Preset {
    const char* name;
    std::vector<int> primes;
    int scale_bits;
    Encoding encoding;
  };
  // The two presets as they are, and the compact one with the slot encoding it had until 2026-12-02.
  for (const Preset& pr : {Preset{"default", {36, 36}, 38, Encoding::kSlots}, Preset{"compact", {47}, 32, Encoding::kCoefficients},
                           Preset{"compact with slots", {47}, 32, Encoding::kSlots}}) {
    CkksParametersLiteral lit;
    lit.prime_bits = pr.primes;
    lit.scale_bits = pr.scale_bits;
    lit.encoding = pr.encoding;
    const bool coeffs = pr.encoding == Encoding::kCoefficients;
    const auto params = CkksParams::create(lit);
    Seed seed{};
    seed[0] = 4;
    const auto keys = KeySet::generate_derand(params, seed);
    const size_t n = params->n(), L = params->num_primes();
    const size_t blocks = 256, n_values = blocks * n;
    std::vector<float> x(n_values), y(n_values);
    std::mt19937_64 g(6);
    fill_payload(x, g);
    std::vector<double> m(n);
    std::vector<cplx> z(n / 2);
    std::vector<int64_t> mi(n);
    std::vector<int32_t> e(n);
    std::vector<u64> t(n), c0(L * n), r(L * n);
    const SecretKey& sk = keys->secret();
    const uint8_t nonce[12] = {5};
    const int reps = 400;
    struct Row {
      const char* what;
      double ns;
    };
    std::vector<Row> enc, dec;
    enc.push_back({"range check", best_ns([&] { (void)find_out_of_range(x.data(), n, 1.0); }, reps)});
    if (!coeffs) {
      enc.push_back({"encode (FFT)", best_ns([&] { params->encoder().encode(x.data(), n, m.data(), z.data()); }, reps)});
      enc.push_back({"round to integers", best_ns([&] { round_scaled(mi.data(), m.data(), params->scale(), n); }, reps)});
    }
    // The encryptor's noise stream since 2026-12-02 (a secret AES key, counter block per block).
    uint8_t counter_block[16] = {5};
    enc.push_back({"noise (CBD, AES-256-CTR)", best_ns([&] {
                     Aes256Ctr s(seed.data(), counter_block, AesKeyUse::kSecret);
                     sample_cbd(s, e.data(), n);
                   }, reps)});
    enc.push_back({"seed of a (ChaCha20, 32 B)", best_ns([&] { ChaCha20Stream s(seed.data(), nonce); s.fill(reinterpret_cast<uint8_t*>(t.data()), 32); }, reps)});
    const double expand = best_ns([&] { for (size_t j = 0; j < L; ++j) expand_uniform_prime(*params, seed, j, t.data()); }, reps);
    enc.push_back({"expand a (AES-256-CTR), all primes", expand});
    const double inv_mul = best_ns([&] {
      for (size_t j = 0; j < L; ++j) params->ntt(j).inverse_mul(t.data(), t.data(), sk.ntt.data() + j * n, sk.ntt_shoup.data() + j * n);
    }, reps);
    if (coeffs) {  // since 2026-12-02 (third session): rounding and c0 in the transform's last stage
      enc.push_back({"a*s, inverse NTT, c0 = D x + e - a*s", best_ns([&] {
                       for (size_t j = 0; j < L; ++j) {
                         params->ntt(j).inverse_mul_encode_minus(c0.data() + j * n, t.data(), sk.ntt.data() + j * n,
                                                                 sk.ntt_shoup.data() + j * n, x.data(), n, params->scale(), e.data());
                       }
                     }, reps)});
    } else {
      enc.push_back({"a*s, inverse NTT, all primes", inv_mul});
      enc.push_back({"c0 = m + e - a*s, all primes", best_ns([&] {
                       for (size_t j = 0; j < L; ++j) poly_signed_minus(c0.data() + j * n, mi.data(), e.data(), t.data(), n, params->primes()[j]);
                     }, reps)});
    }
    WordVector out;
    enc.push_back({"output allocation (THP, not zeroed)", best_ns([&] { WordVector().swap(out); resize_for_overwrite(out, blocks * L * n); }, 20) / blocks});
    dec.push_back({"expand a (AES-256-CTR), all primes", expand});
    dec.push_back({"a*s, inverse NTT, all primes", inv_mul});
    dec.push_back({"c0 + a*s, all primes", best_ns([&] {
                     for (size_t j = 0; j < L; ++j) poly_add(r.data() + j * n, c0.data() + j * n, t.data(), n, params->primes()[j]);
                   }, reps)});
    const CrtReconstructor crt(*params);
    dec.push_back({"CRT to centred doubles", best_ns([&] { crt.centered_doubles(r.data(), n, 1.0 / params->scale(), m.data()); }, reps)});
    if (coeffs) {
      dec.push_back({"to float32 (no FFT)", best_ns([&] { for (size_t i = 0; i < n; ++i) y[i] = static_cast<float>(m[i]); }, reps)});
    } else {
      dec.push_back({"decode (FFT), to float32", best_ns([&] { params->encoder().decode(m.data(), y.data(), n, z.data()); }, reps)});
    }
    // What decryption runs instead of the two rows above since 2026-12-02 (fused for one prime with AVX2).
    std::vector<u64> cs(L * n);
    for (size_t j = 0; j < L; ++j) std::copy(t.begin(), t.begin() + n, cs.begin() + j * n);
    const double fused = best_ns([&] { crt.centered_doubles_of_sum(c0.data(), cs.data(), r.data(), n, 1.0 / params->scale(), m.data()); }, reps);

    EncryptRequest req = float_request(x, seed, 1);
    CiphertextBatch ct;
    const double whole_enc = best_ns([&] { ct = encrypt_secret(*keys, req); }, 7) / blocks;
    const double whole_dec = best_ns([&] { decrypt(*keys, ct, y.data(), DType::kFloat32, 1); }, 7) / blocks;
    // The same calls in CPU time of this process: on a shared machine the
    // wall time also counts the slices other processes took.
    const double cpu_enc = best_cpu_ns([&] { ct = encrypt_secret(*keys, req); }, 7) / blocks;
    const double cpu_dec = best_cpu_ns([&] { decrypt(*keys, ct, y.data(), DType::kFloat32, 1); }, 7) / blocks;
    for (int which = 0; which < 2; ++which) {
      const auto& rows = which == 0 ? enc : dec;
      const double whole = which == 0 ? whole_enc : whole_dec;
      double sum = 0;
      std::printf("stages %s (N=%zu, L=%zu), %s, per block of %zu values:\n", pr.name, n, L,
                  which == 0 ? "secret-key encrypt" : "decrypt", n);
      for (const Row& row : rows) {
        sum += row.ns;
        std::printf("  %-38s %8.2f us  %5.2f ns/value  %4.1f%%\n", row.what, row.ns / 1e3, row.ns / n, 100 * row.ns / whole);
      }
      std::printf("  %-38s %8.2f us  %5.2f ns/value  %4.1f%%\n", "sum of the stages", sum / 1e3, sum / n, 100 * sum / whole);
      std::printf("  %-38s %8.2f us  %5.2f ns/value  (%.1f M values/s)\n", "whole call (1 thread, 256 blocks)", whole / 1e3, whole / n, n / whole * 1e3);
      const double cpu = which == 0 ? cpu_enc : cpu_dec;
      std::printf("  %-38s %8.2f us  %5.2f ns/value  (%.1f M values/s; stages %.1f%% of it)\n", "whole call, process CPU time", cpu / 1e3,
                  cpu / n, n / cpu * 1e3, 100 * sum / cpu);
      if (which == 1) {
        std::printf("  %-38s %8.2f us  %5.2f ns/value  (replaces the add and CRT rows)\n", "c0 + a*s and CRT, as decryption runs", fused / 1e3,
                    fused / n);
      }
    }
  }
}

void bench_threads() {
  CkksParametersLiteral lit;
  const auto params = CkksParams::create(lit);
  Seed seed{};
  seed[0] = 7;
  const auto keys = KeySet::generate_derand(params, seed);
  const size_t n_values = 512 * params->n();
  std::vector<float> x(n_values), y(n_values);
  std::mt19937_64 g(6);
  fill_payload(x, g);
  EncryptRequest req = float_request(x, seed, 0);
  CiphertextBatch ct = encrypt_secret(*keys, req);
  // Excludes the allocation of the output batch (timed separately below).
  // Wall time, and the process CPU time of the same calls: CPU time that
  // grows with the thread count is work the parallel version adds; wall time
  // above CPU time / threads is waiting (for a core, a lock or memory).
  for (int t : {1, 2}) {
    req.threads = t;
    const double e = best_ns([&] { ct = encrypt_secret(*keys, req); }, 7);
    const double d = best_ns([&] { decrypt(*keys, ct, y.data(), DType::kFloat32, t); }, 7);
    const double ec = best_cpu_ns([&] { ct = encrypt_secret(*keys, req); }, 7);
    const double dc = best_cpu_ns([&] { decrypt(*keys, ct, y.data(), DType::kFloat32, t); }, 7);
    std::printf("threads=%d  secret-key encrypt %6.2f M values/s (CPU %6.2f ns/value)   decrypt %6.2f M values/s (CPU %6.2f ns/value)\n",
                t, n_values / e * 1e3, ec / n_values, n_values / d * 1e3, dc / n_values);
  }
  const double alloc = best_ns([&] { std::vector<u64> v(n_values * params->num_primes()); v[0] = 1; }, 7);
  const double alloc_huge = best_ns([&] { std::vector<u64> v; resize_zeroed(v, n_values * params->num_primes()); v[0] = 1; }, 7);
  std::printf("output allocation of L words per value: std::vector %.2f ns/value, resize_zeroed (THP) %.2f ns/value\n",
              alloc / n_values, alloc_huge / n_values);
  std::atomic<int> sink{0};
  const double small = best_ns([&] { parallel_for(2, 2, [&](size_t i, int) { sink += static_cast<int>(i); }); }, 2000);
  // What the previous implementation paid per call: start and join a thread.
  const double spawn = best_ns([&] {
    std::thread th([&] { sink += 1; });
    sink += 0;
    th.join();
  }, 2000);
  std::printf("parallel_for(2 indices, 2 threads) fixed cost: %.1f us with the pool (starting a thread per call: %.1f us)\n",
              small / 1e3, spawn / 1e3);
}

}  // namespace

// Where a public-key encryption's time goes (one block, SIMD path, best of
// many), for the default preset (direct, two primes) and the compact preset
// (modulo q*P, then the modulus drop): the stages as encryptor.cpp runs them,
// next to the whole call per block (1 thread, 256 blocks), wall and CPU time.
void bench_pk_stages() {
  struct Preset {
    const char* name;
    std::vector<int> primes;
    int scale_bits, aux_bits, public_scale_bits;
    Encoding encoding;
  };
  for (const Preset& pr : {Preset{"default", {36, 36}, 38, 0, 0, Encoding::kSlots},
                           Preset{"compact", {47}, 32, 30, 34, Encoding::kCoefficients}}) {
    CkksParametersLiteral lit;
    lit.prime_bits = pr.primes;
    lit.scale_bits = pr.scale_bits;
    lit.aux_prime_bits = pr.aux_bits;
    lit.public_scale_bits = pr.public_scale_bits;
    lit.encoding = pr.encoding;
    const bool coeffs = pr.encoding == Encoding::kCoefficients;
    const auto params = CkksParams::create(lit);
    Seed seed{};
    seed[0] = 4;
    const auto keys = KeySet::generate_derand(params, seed);
    const PublicKey& pk = keys->public_key();
    const size_t n = params->n(), L = params->num_primes();
    const size_t blocks = 256, n_values = blocks * n;
    std::vector<float> x(n_values);
    std::mt19937_64 g(6);
    fill_payload(x, g);
    std::vector<double> m(n);
    std::vector<cplx> z(n / 2);
    std::vector<int64_t> mi(n);
    std::vector<int32_t> e0(n), e1(n);
    std::vector<int8_t> u(n);
    std::vector<u64> t(n), t2(n), c0(n), c1(n);
    const uint8_t nonce[12] = {5};
    const int reps = 400;
    params->encoder().encode(x.data(), n, m.data(), z.data());
    round_scaled(mi.data(), m.data(), params->public_scale(), n);
    {
      ChaCha20Stream s(seed.data(), nonce);
      sample_ternary_packed(s, u.data(), n);
      sample_cbd(s, e0.data(), n);
      sample_cbd(s, e1.data(), n);
    }
    struct Row {
      const char* what;
      double ns;
    };
    std::vector<Row> rows;
    if (coeffs) {
      rows.push_back({"scale and round float32 (no FFT)", best_ns([&] { round_scaled(mi.data(), x.data(), params->public_scale(), n); }, reps)});
    } else {
      rows.push_back({"encode (FFT) and round", best_ns([&] {
                        params->encoder().encode(x.data(), n, m.data(), z.data());
                        round_scaled(mi.data(), m.data(), params->public_scale(), n);
                      }, reps)});
    }
    uint8_t counter_block[16] = {5};
    rows.push_back({"u, e0, e1 (AES-256-CTR; u 1 B/coefficient)", best_ns([&] {
                      Aes256Ctr s(seed.data(), counter_block, AesKeyUse::kSecret);
                      sample_ternary_packed(s, u.data(), n);
                      sample_cbd(s, e0.data(), n);
                      sample_cbd(s, e1.data(), n);
                    }, reps)});
    {
      // Not a stage of the call any more: u from 8 bytes per coefficient, as before 2026-12-02.
      std::vector<int8_t> u_old(n);
      const double old_ns = best_ns([&] {
        ChaCha20Stream s(seed.data(), nonce);
        sample_ternary(s, u_old.data(), n);
        sample_cbd(s, e0.data(), n);
        sample_cbd(s, e1.data(), n);
      }, reps);
      const double chacha_ns = best_ns([&] {
        ChaCha20Stream s(seed.data(), nonce);
        sample_ternary_packed(s, u_old.data(), n);
        sample_cbd(s, e0.data(), n);
        sample_cbd(s, e1.data(), n);
      }, reps);
      std::printf("  (u, e0, e1 from ChaCha20: with u 8 B/coefficient, before 2026-12-02: %.2f ns/value; with u 1 B: %.2f)\n",
                  old_ns / n, chacha_ns / n);
    }
    const u64 q0 = params->primes()[0];
    const double fwd = best_ns([&] { poly_from_int8(t2.data(), u.data(), n, q0); params->ntt(0).forward(t2.data()); }, reps);
    const double inv = best_ns([&] { params->ntt(0).inverse_mul(t.data(), t2.data(), pk.b.data(), pk.b_shoup.data()); }, reps);
    if (!params->has_aux()) {
      rows.push_back({"u forward NTT, all primes", fwd * L});
      rows.push_back({"u*b inverse NTT, all primes", inv * L});
      rows.push_back({"c0 = u*b + e0 + m, all primes", L * best_ns([&] { poly_signed_plus(c0.data(), mi.data(), e0.data(), t.data(), n, q0); }, reps)});
      rows.push_back({"e1 forward NTT, all primes", L * best_ns([&] { poly_from_int32(c1.data(), e1.data(), n, q0); params->ntt(0).forward(c1.data()); }, reps)});
      rows.push_back({"c1 = u*a + e1, all primes", L * best_ns([&] { poly_mul_add(c1.data(), t2.data(), pk.a.data(), pk.a_shoup.data(), n, q0); }, reps)});
    } else {
      const u64 p = params->aux_prime();
      const u64 pinv = params->aux_inv_mod_prime(0), pinv_s = params->aux_inv_mod_prime_shoup(0);
      std::vector<u64> xp(n);
      for (size_t i = 0; i < n; ++i) xp[i] = g() % p;  // residues modulo P, as u*b mod P is
      rows.push_back({"u forward NTT, q and P", 2 * fwd});
      rows.push_back({"u*b, u*a mod P, u*b/P mod q: 3 inverse NTTs", 3 * inv});
      rows.push_back({"c0: drop of P, + m", best_ns([&] { poly_rescale_aux(c0.data(), t.data(), e0.data(), xp.data(), mi.data(), n, q0, p, pinv, pinv_s); }, reps)});
      rows.push_back({"c1: drop of P", best_ns([&] { poly_rescale_aux(c1.data(), nullptr, e1.data(), xp.data(), nullptr, n, q0, p, pinv, pinv_s); }, reps)});
      rows.push_back({"c1 forward NTT", best_ns([&] { params->ntt(0).forward(c1.data()); }, reps)});
      rows.push_back({"c1 += u*a/P", best_ns([&] { poly_mul_add(c1.data(), t2.data(), pk.a_drop.data(), pk.a_drop_shoup.data(), n, q0); }, reps)});
    }
    WordVector out;
    rows.push_back({"output allocation, c0 and c1 (THP, not zeroed)",
                    2 * best_ns([&] { WordVector().swap(out); resize_for_overwrite(out, blocks * L * n); }, 20) / blocks});
    EncryptRequest req = float_request(x, seed, 1);
    const auto pub = keys->public_only();
    CiphertextBatch ct;
    const double whole = best_ns([&] { ct = encrypt_public(*pub, req); }, 7) / blocks;
    const double cpu = best_cpu_ns([&] { ct = encrypt_public(*pub, req); }, 7) / blocks;
    double sum = 0;
    std::printf("pkstages %s (N=%zu, L=%zu%s), public-key encrypt, per block of %zu values:\n", pr.name, n, L,
                params->has_aux() ? ", auxiliary prime P" : "", n);
    for (const Row& row : rows) {
      sum += row.ns;
      std::printf("  %-44s %8.2f us  %5.2f ns/value  %4.1f%%\n", row.what, row.ns / 1e3, row.ns / n, 100 * row.ns / whole);
    }
    std::printf("  %-44s %8.2f us  %5.2f ns/value  %4.1f%%\n", "sum of the stages", sum / 1e3, sum / n, 100 * sum / whole);
    std::printf("  %-44s %8.2f us  %5.2f ns/value  (%.1f M values/s)\n", "whole call (1 thread, 256 blocks)", whole / 1e3,
                whole / n, n / whole * 1e3);
    std::printf("  %-44s %8.2f us  %5.2f ns/value  (%.1f M values/s)\n", "whole call, process CPU time", cpu / 1e3, cpu / n,
                n / cpu * 1e3);
  }
}

// SHA-256 (wire checksums, key files, fingerprints): SHA-NI where the CPU has it, else portable
// (XCLOUD_FORCE_SCALAR=1 forces the portable one).
void bench_hash() {
  std::vector<uint8_t> data(4 << 20);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 131 + 7);
  uint8_t sink = 0;
  const double big = best_ns([&] { sink ^= sha256(data.data(), data.size())[0]; }, 15);
  const double small = best_ns([&] {
    for (int i = 0; i < 1000; ++i) sink ^= sha256(data.data() + i, 100)[0];
  }, 50);
  std::printf("sha256 [%s] 4 MiB          %.3f GB/s; 100-byte messages %.1f ns each (sink %u)\n", sha256_path(),
              data.size() / big, small / 1000, sink);
}

// The wire's residue packing (ckks/byte_io.h) at the presets' widths: 1 M
// values, packed into and unpacked from a buffer that stays in place.
void bench_pack() {
  const size_t n = 1 << 20;
  std::vector<uint64_t> v(n), back(n);
  for (int bits : {36, 47}) {
    uint64_t state = 0x2545f4914f6cdd1dull;
    for (auto& x : v) {
      state ^= state << 13;
      state ^= state >> 7;
      state ^= state << 17;
      x = state & ((uint64_t{1} << bits) - 1);
    }
    std::vector<uint8_t> bytes(packed_size(n, bits));
    const double pack = best_ns([&] { pack_bits(v.data(), n, bits, bytes.data()); }, 30);
    const double unpack =
        best_ns([&] { unpack_bits(bytes.data(), n, bits, uint64_t{1} << bits, back.data(), "bench"); }, 30);
    std::printf("pack %d-bit residues (1 M)  pack %.3f ns/value  unpack %.3f ns/value%s\n", bits, pack / n, unpack / n,
                back == v ? "" : "  MISMATCH");
  }
}

// DP randomness (ring/real_sampler.h): Gaussian values from AES-256-CTR, the
// transform's scalar reference against its AVX2 twin, and the keystream alone.
void bench_dp_noise() {
  const uint8_t key[32] = {9};
  const size_t n = 1 << 20;
  std::vector<double> out(n);
  check_same<double>("dp gaussian", [&] {
    std::vector<double> o(100003);
    RealSampler s(key);
    s.gaussian(1.5, o.data(), 7);
    s.gaussian(1.5, o.data() + 7, o.size() - 7);
    return o;
  });
  const Pair p = both([&] { RealSampler s(key); s.gaussian(1.0, out.data(), n); }, 15);
  std::printf("dp gaussian (sum of 4, 1 M values)  scalar %.3f ns/value  simd %.3f ns/value  x%.1f\n", p.scalar / n,
              p.simd / n, p.scalar / p.simd);
  const Pair u = both([&] { RealSampler s(key); s.uniform(out.data(), n); }, 15);
  std::printf("dp uniform (1 M values)             scalar %.3f ns/value  simd %.3f ns/value\n", u.scalar / n, u.simd / n);
}

int main(int argc, char** argv) {
  std::printf("SIMD (AVX2 + FMA) kernels: %s; the \"simd\" columns below are %s\n",
              simd_supported() ? "built and supported by this CPU" : "not available in this build or on this CPU",
              simd_supported() ? "the AVX2 path" : "the scalar path again");
  if (want(argc, argv, "ntt")) bench_ntt();
  if (want(argc, argv, "poly")) bench_poly();
  if (want(argc, argv, "random")) bench_random();
  if (want(argc, argv, "hash")) bench_hash();
  if (want(argc, argv, "pack")) bench_pack();
  if (want(argc, argv, "dpnoise")) bench_dp_noise();
  if (want(argc, argv, "aessecret")) bench_aes_secret();
  if (want(argc, argv, "encoder")) bench_encoder();
  if (want(argc, argv, "stages")) bench_stages();
  if (want(argc, argv, "pkstages")) bench_pk_stages();
  if (want(argc, argv, "crt")) bench_crt();
  if (want(argc, argv, "e2e")) bench_e2e();
  if (want(argc, argv, "threads")) bench_threads();
  if (g_mismatch) std::printf("%d scalar/SIMD mismatches\n", g_mismatch);
  return g_mismatch ? 1 : 0;
}
