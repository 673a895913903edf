#include "ckks/encryptor.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <sstream>
#include <stdexcept>

#include "ckks/crt.h"
#include "ckks/streams.h"
#include "parallel/memory.h"
#include "parallel/parallel_for.h"
#include "ring/poly_ops.h"
#include "ring/sampler.h"
#include "ring/secure.h"

namespace xcloud {

namespace {

// Per-worker buffers, allocated once per call.
struct Scratch {
  explicit Scratch(size_t n) : m(n), z(n / 2), mi(n), e0(n), e1(n), u(n), t(n), t2(n) {}
  ~Scratch() {  // the noise and the encoded plaintext are secret
    secure_zero(m.data(), m.size() * sizeof(double));
    secure_zero(z.data(), z.size() * sizeof(cplx));
    secure_zero(mi.data(), mi.size() * sizeof(int64_t));
    secure_zero(e0.data(), e0.size() * sizeof(int32_t));
    secure_zero(e1.data(), e1.size() * sizeof(int32_t));
    secure_zero(u.data(), u.size());
    secure_zero(t.data(), t.size() * sizeof(u64));
    secure_zero(t2.data(), t2.size() * sizeof(u64));
    secure_zero(up.data(), up.size() * sizeof(u64));
    secure_zero(p0.data(), p0.size() * sizeof(u64));
    secure_zero(p1.data(), p1.size() * sizeof(u64));
  }
  std::vector<double> m;
  std::vector<cplx> z;
  std::vector<int64_t> mi;
  std::vector<int32_t> e0, e1;
  std::vector<int8_t> u;
  std::vector<u64> t, t2;
  std::vector<u64> up, p0, p1;  // public-key encryption with an auxiliary prime: u, c0 and c1 modulo P
};

void check_request(const CkksParams& params, const EncryptRequest& req) {
  if (req.count == 0) throw std::invalid_argument("cannot encrypt an empty vector");
  if (req.data == nullptr) throw std::invalid_argument("no input data");
  uint64_t prod = 1;
  for (int64_t d : req.shape) {
    if (d < 0) throw std::invalid_argument("negative dimension in shape");
    if (d > 0 && prod > (uint64_t{1} << 40) / static_cast<uint64_t>(d)) {
      throw std::invalid_argument("shape has more than 2^40 values");
    }
    prod *= static_cast<uint64_t>(d);
  }
  if (prod != req.count) throw std::invalid_argument("shape does not match the number of values");
  if (req.count > (uint64_t{1} << 40) || blocks_for(req.count, params.n()) > kMaxBlocks) {
    throw std::invalid_argument("too many values for one batch (at most 2^40 values and 2^32 - 1 blocks)");
  }
}

// @throws std::invalid_argument if x[begin, begin+count) holds NaN/Inf or a
// value with |x| > max_value, naming the first.
template <typename T>
void check_block(const CkksParams& params, const T* x, uint64_t begin, size_t count) {
  const double maxv = params.max_value();
  const size_t bad = find_out_of_range(x, count, maxv);
  if (bad < count) {
    const double v = static_cast<double>(x[bad]);
    std::ostringstream os;
    os << "input value " << v << " at flat index " << (begin + bad)
       << (std::isfinite(v) ? " is outside [-max_value, max_value] = [-" : " is not finite; the range is [-") << maxv
       << ", " << maxv << "]; clip or rescale the update first";
    throw std::invalid_argument(os.str());
  }
}

// Validates x[begin, begin+count) (check_block) and encodes it, scaled by
// Delta and rounded, into s.mi.
template <typename T>
void encode_block(const CkksParams& params, const T* x, uint64_t begin, size_t count, double scale, Scratch& s) {
  check_block(params, x, begin, count);
  if (params.encoding() == Encoding::kCoefficients) {
    // Value i is coefficient i (params.h): scaled and rounded in one pass
    // from the input, the block's tail zero.
    round_scaled(s.mi.data(), x, scale, count);
    std::fill(s.mi.begin() + static_cast<std::ptrdiff_t>(count), s.mi.end(), int64_t{0});
    return;
  }
  params.encoder().encode(x, count, s.m.data(), s.z.data());
  round_scaled(s.mi.data(), s.m.data(), scale, params.n());
}

CiphertextBatch make_batch(const KeySet& keys, const EncryptRequest& req, Origin origin) {
  const CkksParams& params = *keys.params();
  CiphertextBatch ct;
  ct.params = keys.params();
  ct.key_id = keys.key_id();
  ct.origin = origin;
  ct.dtype = req.dtype;
  ct.shape = req.shape;
  ct.n_values = req.count;
  ct.n_blocks = static_cast<uint32_t>(blocks_for(req.count, params.n()));
  ct.scale = origin == Origin::kPublicKey ? params.public_scale() : params.scale();
  ct.bound = params.max_value();
  return ct;
}

// Sizes the output polynomials (c0, and c1 when `with_c1`) with huge pages
// and without zeroing them (parallel/memory.h): every block's worker writes
// all L * N words of its c0 (and c1) below, so the pages are first touched
// by the workers, in parallel. (Until 2026-12-02 they were zeroed here, by
// one thread per vector: about 1 ns per value per prime, serial.)
void allocate_outputs(CiphertextBatch& ct, bool with_c1) {
  const size_t words = static_cast<size_t>(ct.n_blocks) * ct.poly_words();
  resize_for_overwrite(ct.c0, words);
  if (with_c1) resize_for_overwrite(ct.c1, words);
}

template <typename T, bool kPublic>
CiphertextBatch encrypt_impl(const KeySet& keys, const EncryptRequest& req) {
  const CkksParams& params = *keys.params();
  check_request(params, req);
  if (!kPublic) keys.secret();  // throws if absent
  const size_t n = params.n(), L = params.num_primes();
  CiphertextBatch ct = make_batch(keys, req, kPublic ? Origin::kPublicKey : Origin::kSecretKey);
  ct.c1_form = kPublic ? C1Form::kFull : C1Form::kSeeded;
  ct.seeds_per_block = kPublic ? 0 : 1;
  const int threads = effective_threads(req.threads, ct.n_blocks);
  allocate_outputs(ct, kPublic);
  if (!kPublic) ct.seeds.resize(ct.n_blocks);
  Seed master;
  const WipeOnExit wipe_master(master.data(), master.size());
  if (req.seed) {
    master = *req.seed;
  } else {
    os_random_bytes(master.data(), master.size());
  }
  // The key of the call's secret randomness (noise, and u of a public-key
  // encryption): 32 bytes of the master seed's ChaCha20 stream "XCN", so that
  // AES-256 and ChaCha20 never share a key. Block b draws from AES-256-CTR
  // under it from counter block "XCE" || b || 0 (streams.h), constant-time on
  // every path (AesKeyUse::kSecret).
  std::array<uint8_t, 32> noise_key;
  const WipeOnExit wipe_noise_key(noise_key.data(), noise_key.size());
  {
    const auto kdf_nonce = stream_nonce("XCN", 0);
    ChaCha20Stream kdf(master.data(), kdf_nonce.data());
    kdf.fill(noise_key.data(), noise_key.size());
  }
  std::vector<std::unique_ptr<Scratch>> scratch(static_cast<size_t>(threads));
  const T* x = static_cast<const T*>(req.data);

  parallel_for(ct.n_blocks, threads, [&](size_t b, int worker) {
    auto& sp = scratch[static_cast<size_t>(worker)];
    if (!sp) sp = std::make_unique<Scratch>(n);
    Scratch& s = *sp;
    const uint64_t begin = static_cast<uint64_t>(b) * n;
    const size_t count = static_cast<size_t>(std::min<uint64_t>(n, req.count - begin));
    // Secret-key encryption with the coefficient encoding and one prime (the
    // compact preset) rounds the values in the inverse transform's last stage
    // (NttTables::inverse_mul_encode_minus), without the integer vector s.mi.
    // With more primes the values are rounded once into s.mi, so every prime
    // encodes the same plaintext even if the caller's buffer changed meanwhile.
    const bool fused_encode = !kPublic && params.encoding() == Encoding::kCoefficients && L == 1;
    if (fused_encode) {
      check_block(params, x + begin, begin, count);
    } else {
      encode_block(params, x + begin, begin, count, ct.scale, s);
    }
    uint8_t counter_block[16] = {};
    const auto noise_nonce = stream_nonce("XCE", static_cast<uint32_t>(b));
    std::copy(noise_nonce.begin(), noise_nonce.end(), counter_block);
    Aes256Ctr noise(noise_key.data(), counter_block, AesKeyUse::kSecret);
    u64* c0 = ct.c0.data() + b * L * n;
    if (!kPublic) {
      // c1 = a (from a public per-block seed), c0 = Delta*m + e - a*s.
      const auto seed_nonce = stream_nonce("XCA", static_cast<uint32_t>(b));
      ChaCha20Stream seed_rng(master.data(), seed_nonce.data());
      seed_rng.fill(ct.seeds[b].data(), 32);
      sample_cbd(noise, s.e0.data(), n);
      const SecretKey& sk = keys.secret();
      for (size_t j = 0; j < L; ++j) {
        const u64 q = params.primes()[j];
        expand_uniform_prime(params, ct.seeds[b], j, s.t.data());
        const size_t off = j * n;
        const u64* key = sk.ntt.data() + off;
        const u64* key_shoup = sk.ntt_shoup.data() + off;
        if (fused_encode) {  // c0 written by the transform's last stage
          params.ntt(j).inverse_mul_encode_minus(c0 + off, s.t.data(), key, key_shoup, x + begin, count, ct.scale,
                                                 s.e0.data());
        } else {
          params.ntt(j).inverse_mul(s.t.data(), s.t.data(), key, key_shoup);
          poly_signed_minus(c0 + off, s.mi.data(), s.e0.data(), s.t.data(), n, q);
        }
      }
    } else if (params.has_aux()) {
      // An encryption of zero modulo Q*P, x0 = u*b + e0 and x1 = u*a + e1,
      // divided by P with rounding: round(x / P) = (x_q - [x_P]_P) * P^-1
      // mod q. The noise u*e + e1*s + e0 shrinks by P and only the
      // rounding's remains (r0 + r1*s, |r0|, |r1| <= 1/2). Delta*m is added
      // modulo Q after the division. P^-1 is folded into the key
      // (b_drop = b * P^-1), and c1 is formed in evaluation form directly:
      // NTT(c1') = u * a_drop + NTT((e1 - [x1_P]_P) * P^-1), so per wire
      // prime only three NTTs run, as in the direct encryption.
      sample_ternary_packed(noise, s.u.data(), n);  // 8 coefficients per keystream word
      sample_cbd(noise, s.e0.data(), n);
      sample_cbd(noise, s.e1.data(), n);
      const PublicKey& pk = keys.public_key();
      if (s.up.size() != n) {
        s.up.assign(n, 0);
        s.p0.assign(n, 0);
        s.p1.assign(n, 0);
      }
      const u64 p = params.aux_prime();
      {
        // u*b and u*a modulo P, coefficient form (the errors are added inside poly_rescale_aux).
        const NttTables& ntt = params.aux_ntt();
        const size_t off = L * n;  // the key's row modulo P
        poly_from_int8(s.up.data(), s.u.data(), n, p);
        ntt.forward(s.up.data());
        ntt.inverse_mul(s.p0.data(), s.up.data(), pk.b.data() + off, pk.b_shoup.data() + off);
        ntt.inverse_mul(s.p1.data(), s.up.data(), pk.a.data() + off, pk.a_shoup.data() + off);
      }
      u64* c1 = ct.c1.data() + b * L * n;
      for (size_t j = 0; j < L; ++j) {
        const u64 q = params.primes()[j];
        const u64 pinv = params.aux_inv_mod_prime(j), pinv_shoup = params.aux_inv_mod_prime_shoup(j);
        const NttTables& ntt = params.ntt(j);
        const size_t off = j * n;
        poly_from_int8(s.t2.data(), s.u.data(), n, q);
        ntt.forward(s.t2.data());  // u in evaluation form
        ntt.inverse_mul(s.t.data(), s.t2.data(), pk.b_drop.data() + off, pk.b_drop_shoup.data() + off);
        poly_rescale_aux(c0 + off, s.t.data(), s.e0.data(), s.p0.data(), s.mi.data(), n, q, p, pinv, pinv_shoup);
        u64* c1j = c1 + off;
        poly_rescale_aux(c1j, nullptr, s.e1.data(), s.p1.data(), nullptr, n, q, p, pinv, pinv_shoup);
        ntt.forward(c1j);
        poly_mul_add(c1j, s.t2.data(), pk.a_drop.data() + off, pk.a_drop_shoup.data() + off, n, q);
      }
    } else {
      // c0 = u*b + e0 + Delta*m, c1 = u*a + e1 with u ternary.
      sample_ternary_packed(noise, s.u.data(), n);  // 8 coefficients per keystream word
      sample_cbd(noise, s.e0.data(), n);
      sample_cbd(noise, s.e1.data(), n);
      const PublicKey& pk = keys.public_key();
      u64* c1 = ct.c1.data() + b * L * n;
      for (size_t j = 0; j < L; ++j) {
        const u64 q = params.primes()[j];
        const NttTables& ntt = params.ntt(j);
        const size_t off = j * n;
        poly_from_int8(s.t2.data(), s.u.data(), n, q);
        ntt.forward(s.t2.data());  // u in evaluation form
        ntt.inverse_mul(s.t.data(), s.t2.data(), pk.b.data() + off, pk.b_shoup.data() + off);
        poly_signed_plus(c0 + off, s.mi.data(), s.e0.data(), s.t.data(), n, q);
        u64* c1j = c1 + off;
        poly_from_int32(c1j, s.e1.data(), n, q);
        ntt.forward(c1j);
        poly_mul_add(c1j, s.t2.data(), pk.a.data() + off, pk.a_shoup.data() + off, n, q);
      }
    }
  });
  return ct;  // master and noise_key wiped on the way out
}

template <typename T>
void decrypt_impl(const KeySet& keys, const CiphertextBatch& ct, T* out, int threads_req) {
  const CkksParams& params = *keys.params();
  const SecretKey& sk = keys.secret();
  if (ct.params->fingerprint() != params.fingerprint()) {
    throw std::invalid_argument("the ciphertext belongs to another parameter set than these keys");
  }
  if (ct.key_id != keys.key_id()) throw std::invalid_argument("the ciphertext was encrypted under another key");
  const size_t n = params.n(), L = params.num_primes();
  const int threads = effective_threads(threads_req, ct.n_blocks);
  std::vector<std::unique_ptr<Scratch>> scratch(static_cast<size_t>(threads));
  // c1 from seeds: regenerated by the encryptor's expansion (one seed per
  // block, or the K seeds and weights of a seeded-sum aggregate).
  std::unique_ptr<SeededC1> seeded;
  if (ct.seeded()) seeded = std::make_unique<SeededC1>(ct);
  std::vector<std::vector<u64>> expand_scratch(static_cast<size_t>(threads));
  const CrtReconstructor crt(params);
  parallel_for(ct.n_blocks, threads, [&](size_t b, int worker) {
    auto& sp = scratch[static_cast<size_t>(worker)];
    if (!sp) sp = std::make_unique<Scratch>(n * L);
    Scratch& s = *sp;
    auto& xs = expand_scratch[static_cast<size_t>(worker)];
    if (seeded && xs.size() < seeded->scratch_words()) xs.resize(seeded->scratch_words());
    const u64* c0 = ct.c0.data() + b * L * n;
    u64* cs = s.t.data();  // L x N residues of c1*s
    for (size_t j = 0; j < L; ++j) {
      u64* t = cs + j * n;
      const u64* c1j = t;
      if (seeded) {
        seeded->expand(b, j, t, xs.data());
      } else {
        c1j = ct.c1.data() + (b * L + j) * n;
      }
      params.ntt(j).inverse_mul(t, c1j, sk.ntt.data() + j * n, sk.ntt_shoup.data() + j * n);
    }
    // c0 + c1*s, centred and scaled (one fused pass for one prime with AVX2; s.t2 is the sum's scratch otherwise)
    const uint64_t begin = static_cast<uint64_t>(b) * n;
    const size_t count = static_cast<size_t>(std::min<uint64_t>(n, ct.n_values - begin));
    if (params.encoding() == Encoding::kCoefficients) {
      // Value i is coefficient i: straight into the output, converted in the same pass.
      crt.centered_values_of_sum(c0, cs, s.t2.data(), n, count, 1.0 / ct.scale, out + begin, s.m.data());
    } else {
      crt.centered_doubles_of_sum(c0, cs, s.t2.data(), n, 1.0 / ct.scale, s.m.data());
      params.encoder().decode(s.m.data(), out + begin, count, s.z.data());
    }
  });
}

}  // namespace

CiphertextBatch encrypt_secret(const KeySet& keys, const EncryptRequest& req) {
  return req.dtype == DType::kFloat32 ? encrypt_impl<float, false>(keys, req) : encrypt_impl<double, false>(keys, req);
}

CiphertextBatch encrypt_public(const KeySet& keys, const EncryptRequest& req) {
  return req.dtype == DType::kFloat32 ? encrypt_impl<float, true>(keys, req) : encrypt_impl<double, true>(keys, req);
}

void decrypt(const KeySet& keys, const CiphertextBatch& ct, void* out, DType out_dtype, int threads) {
  // The workers write the output for the first time: fewer, larger page faults.
  advise_huge_pages(out, static_cast<size_t>(ct.n_values) * (out_dtype == DType::kFloat32 ? 4 : 8));
  if (out_dtype == DType::kFloat32) {
    decrypt_impl(keys, ct, static_cast<float*>(out), threads);
  } else {
    decrypt_impl(keys, ct, static_cast<double*>(out), threads);
  }
}

}  // namespace xcloud
