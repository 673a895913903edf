#include "ckks/keys.h"

#include <cstring>
#include <stdexcept>

#include "ckks/byte_io.h"
#include "ckks/errors.h"
#include "ckks/streams.h"
#include "ring/aes256.h"
#include "ring/sampler.h"
#include "ring/secure.h"
#include "ring/sha256.h"

namespace xcloud {

namespace {

// Version 1: b has one polynomial per prime. Version 2 (parameter sets with
// an auxiliary prime P only): b has one more, modulo P, last. A parameter set
// reads only its own version (any other is a different fingerprint anyway).
constexpr uint16_t kKeyFormatVersion = 1;
constexpr uint16_t kKeyFormatVersionAux = 2;

// Primes the public key lives at: the wire primes, then P if there is one.
size_t key_primes(const CkksParams& params) { return params.num_primes() + (params.has_aux() ? 1 : 0); }
u64 key_prime(const CkksParams& params, size_t j) {
  return j < params.num_primes() ? params.primes()[j] : params.aux_prime();
}
const NttTables& key_ntt(const CkksParams& params, size_t j) {
  return j < params.num_primes() ? params.ntt(j) : params.aux_ntt();
}
constexpr uint8_t kKindPublic = 1;
constexpr uint8_t kKindSecret = 2;  // secret key and public key

std::array<uint8_t, 16> compute_key_id(const CkksParams& params, const PublicKey& pk) {
  Sha256 h;
  const char tag[] = "xcloud key id v1";
  h.update(tag, sizeof(tag) - 1);
  h.update(params.fingerprint().data(), 32);
  h.update(pk.a_seed.data(), 32);
  h.update(pk.b.data(), pk.b.size() * sizeof(u64));
  auto d = h.finish();
  std::array<uint8_t, 16> id;
  for (int i = 0; i < 16; ++i) id[i] = d[i];
  return id;
}

// s (ternary) to its evaluation form modulo every prime.
void secret_to_ntt(const CkksParams& params, SecretKey& sk) {
  const size_t n = params.n(), L = params.num_primes();
  sk.ntt = SecureVector<u64>(L * n);
  sk.ntt_shoup = SecureVector<u64>(L * n);
  for (size_t j = 0; j < L; ++j) {
    const u64 q = params.primes()[j];
    const SecretShoup shoup(q);  // no division on s (modarith.h)
    u64* p = sk.ntt.data() + j * n;
    for (size_t i = 0; i < n; ++i) p[i] = small_signed_to_residue(sk.coeffs[i], q);
    params.ntt(j).forward(p);
    for (size_t i = 0; i < n; ++i) sk.ntt_shoup[j * n + i] = shoup(p[i]);
  }
}

void public_shoup(const CkksParams& params, PublicKey& pk) {
  const size_t n = params.n(), L = key_primes(params);
  pk.a_shoup.resize(L * n);
  pk.b_shoup.resize(L * n);
  for (size_t j = 0; j < L; ++j) {
    const u64 q = key_prime(params, j);
    for (size_t i = 0; i < n; ++i) {
      pk.a_shoup[j * n + i] = shoup_precompute(pk.a[j * n + i], q);
      pk.b_shoup[j * n + i] = shoup_precompute(pk.b[j * n + i], q);
    }
  }
  if (!params.has_aux()) return;
  const size_t LQ = params.num_primes();
  pk.a_drop.resize(LQ * n);
  pk.b_drop.resize(LQ * n);
  pk.a_drop_shoup.resize(LQ * n);
  pk.b_drop_shoup.resize(LQ * n);
  for (size_t j = 0; j < LQ; ++j) {
    const u64 q = params.primes()[j], w = params.aux_inv_mod_prime(j), ws = params.aux_inv_mod_prime_shoup(j);
    for (size_t i = 0; i < n; ++i) {
      const size_t k = j * n + i;
      pk.a_drop[k] = mul_shoup(pk.a[k], w, ws, q);
      pk.b_drop[k] = mul_shoup(pk.b[k], w, ws, q);
      pk.a_drop_shoup[k] = shoup_precompute(pk.a_drop[k], q);
      pk.b_drop_shoup[k] = shoup_precompute(pk.b_drop[k], q);
    }
  }
}

std::unique_ptr<PublicKey> make_public(const CkksParams& params, const SecretKey& sk, const Seed& a_seed,
                                       ChaCha20Stream& noise) {
  const size_t n = params.n(), L = params.num_primes(), LK = key_primes(params);
  auto pk = std::make_unique<PublicKey>();
  pk->a_seed = a_seed;
  pk->a.resize(LK * n);
  pk->b.resize(LK * n);
  expand_uniform(params, a_seed, pk->a.data());
  SecureVector<int32_t> e(n);
  sample_cbd(noise, e.data(), n);
  SecureVector<u64> s_aux(LK > L ? n : 0);  // s modulo P, evaluation form (the secret key keeps only the wire primes)
  for (size_t j = 0; j < LK; ++j) {
    const u64 q = key_prime(params, j);
    const NttTables& ntt = key_ntt(params, j);
    u64* b = pk->b.data() + j * n;
    for (size_t i = 0; i < n; ++i) b[i] = small_signed_to_residue(e[i], q);  // |e| <= eta < q
    ntt.forward(b);
    const u64* a = pk->a.data() + j * n;
    const u64* s = sk.ntt.data() + j * n;
    if (j >= L) {
      for (size_t i = 0; i < n; ++i) s_aux[i] = small_signed_to_residue(sk.coeffs[i], q);
      ntt.forward(s_aux.data());
      s = s_aux.data();
    }
    // b = e - a*s: Shoup products with the public a as the fixed factor, so no division touches s.
    for (size_t i = 0; i < n; ++i) b[i] = sub_mod(b[i], mul_shoup(s[i], a[i], shoup_precompute(a[i], q), q), q);
  }
  public_shoup(params, *pk);
  return pk;
}

KeySetPtr generate_from(const ParamsPtr& params, const Seed& master) {
  const size_t n = params->n();
  auto sk = std::make_unique<SecretKey>();
  sk->coeffs = SecureVector<int8_t>(n);
  {
    auto nonce = stream_nonce("XCs", 0);
    ChaCha20Stream rng(master.data(), nonce.data());
    sample_ternary(rng, sk->coeffs.data(), n);
  }
  secret_to_ntt(*params, *sk);
  Seed a_seed;
  {
    auto nonce = stream_nonce("XCP", 0);
    ChaCha20Stream rng(master.data(), nonce.data());
    rng.fill(a_seed.data(), a_seed.size());
  }
  auto nonce = stream_nonce("XCk", 0);
  ChaCha20Stream noise(master.data(), nonce.data());
  auto pk = make_public(*params, *sk, a_seed, noise);
  return std::make_shared<KeySet>(params, std::move(sk), std::move(pk));
}

}  // namespace

void expand_uniform_prime(const CkksParams& params, const Seed& seed, size_t j, u64* out) {
  const auto nonce = stream_nonce("XCu", static_cast<uint32_t>(j));
  uint8_t counter_block[16] = {0};
  std::memcpy(counter_block, nonce.data(), nonce.size());
  Aes256Ctr rng(seed.data(), counter_block);
  sample_uniform_mod_ctr(rng, params.primes()[j], out, params.n());
}

void expand_uniform(const CkksParams& params, const Seed& seed, u64* out) {
  for (size_t j = 0; j < key_primes(params); ++j) {
    const auto nonce = stream_nonce("XCa", static_cast<uint32_t>(j));
    ChaCha20Stream rng(seed.data(), nonce.data());
    sample_uniform_mod(rng, key_prime(params, j), out + j * params.n(), params.n());
  }
}

KeySet::KeySet(ParamsPtr params, std::unique_ptr<SecretKey> sk, std::unique_ptr<PublicKey> pk)
    : params_(std::move(params)), sk_(std::move(sk)), pk_(std::move(pk)) {
  if (!pk_) throw std::invalid_argument("a KeySet needs a public key");
  key_id_ = compute_key_id(*params_, *pk_);
}

KeySetPtr KeySet::generate(const ParamsPtr& params) {
  Seed master;
  const WipeOnExit wipe_master(master.data(), master.size());  // also when generate_from throws
  os_random_bytes(master.data(), master.size());
  return generate_from(params, master);
}

KeySetPtr KeySet::generate_derand(const ParamsPtr& params, const Seed& seed) {
  return generate_from(params, seed);
}

const SecretKey& KeySet::secret() const {
  if (!sk_) throw std::invalid_argument("this KeySet holds no secret key (it is the public part only)");
  return *sk_;
}

const PublicKey& KeySet::public_key() const { return *pk_; }

KeySetPtr KeySet::public_only() const {
  auto ks = std::shared_ptr<KeySet>(new KeySet(*this));
  ks->sk_.reset();
  return ks;
}

// Key file format, version 1 (little-endian):
//   "XCKY" | u16 version | u8 kind (1 public, 2 secret+public) | u8 0
//   | 32-byte parameter fingerprint | 16-byte key id
//   | 32-byte a seed | b: L polynomials, each packed at bit_length(q_j) bits
//     (version 2, for parameter sets with an auxiliary prime P: L + 1
//     polynomials, the last modulo P at bit_length(P) bits)
//   | [kind 2: s packed 2 bits per coefficient: 0 -> 0, 1 -> 1, 2 -> -1]
//   | SHA-256 of all preceding bytes
static std::vector<uint8_t> keys_to_bytes(const KeySet& ks, bool with_secret) {
  const CkksParams& params = *ks.params();
  const size_t n = params.n();
  // Sized once: with the secret, the buffer must never be reallocated (a
  // reallocation would free a copy of the packed secret without wiping it;
  // the caller wipes the one buffer after use). The writer fills it in place
  // and refuses to run past its end.
  size_t total = 4 + 2 + 1 + 1 + 32 + 16 + 32 + 32 + (with_secret ? packed_size(n, 2) : 0);
  for (size_t j = 0; j < key_primes(params); ++j) total += packed_size(n, 64 - __builtin_clzll(key_prime(params, j)));
  std::vector<uint8_t> out(total);
  // A throw below frees the buffer: wipe it first (it may hold the secret).
  struct WipeUnlessDone {
    std::vector<uint8_t>& v;
    bool done = false;
    ~WipeUnlessDone() {
      if (!done) secure_zero(v.data(), v.size());
    }
  } guard{out};
  ByteWriter w(out.data(), out.size());
  w.bytes(reinterpret_cast<const uint8_t*>("XCKY"), 4);
  w.u16(params.has_aux() ? kKeyFormatVersionAux : kKeyFormatVersion);
  w.u8(with_secret ? kKindSecret : kKindPublic);
  w.u8(0);
  w.bytes(params.fingerprint().data(), 32);
  w.bytes(ks.key_id().data(), 16);
  const PublicKey& pk = ks.public_key();
  w.bytes(pk.a_seed.data(), 32);
  for (size_t j = 0; j < key_primes(params); ++j) {
    const int bits = 64 - __builtin_clzll(key_prime(params, j));
    pack_bits(pk.b.data() + j * n, n, bits, w.take(packed_size(n, bits)));
  }
  if (with_secret) {
    const SecretKey& sk = ks.secret();
    SecureVector<u64> codes(n);
    // 0 -> 0, 1 -> 1, -1 -> 2 without a branch on the coefficient: as a byte,
    // 1 is 0x01 and -1 is 0xff, so (low bit) + (top bit) is the code.
    for (size_t i = 0; i < n; ++i) {
      const auto u = static_cast<uint8_t>(sk.coeffs[i]);
      codes[i] = static_cast<u64>((u & 1u) + ((u >> 7) & 1u));
    }
    pack_bits(codes.data(), n, 2, w.take(packed_size(n, 2)));
  }
  const auto digest = sha256(out.data(), w.written());
  w.bytes(digest.data(), digest.size());
  if (w.remaining() != 0) throw std::logic_error("key bytes: size computed wrongly");
  guard.done = true;
  return out;
}

std::vector<uint8_t> KeySet::public_to_bytes() const { return keys_to_bytes(*this, false); }
std::vector<uint8_t> KeySet::secret_to_bytes() const { return keys_to_bytes(*this, true); }

KeySetPtr KeySet::from_bytes(const ParamsPtr& params, const uint8_t* data, size_t len) {
  const char* what = "key bytes";
  if (len < 4 + 2 + 2 + 32 + 16 + 32 + 32) throw IntegrityError("key bytes: truncated input");
  const auto digest = sha256(data, len - 32);
  ByteReader r(data, len - 32, what);
  const uint8_t* magic = r.take(4);
  if (std::memcmp(magic, "XCKY", 4) != 0) throw IntegrityError("key bytes: bad magic (not an xcloud key file)");
  const uint16_t version = r.u16();
  const uint16_t want = params->has_aux() ? kKeyFormatVersionAux : kKeyFormatVersion;
  if (version != kKeyFormatVersion && version != kKeyFormatVersionAux) {
    throw UnsupportedVersionError("key bytes: unsupported version " + std::to_string(version));
  }
  if (version != want) {
    throw IntegrityError("key bytes: version " + std::to_string(version) + " keys " +
                         (version == kKeyFormatVersionAux ? "have" : "lack") +
                         " the auxiliary prime of public-key encryption, which these parameters " +
                         (params->has_aux() ? "have" : "lack") + " (made for another parameter set)");
  }
  if (std::memcmp(digest.data(), data + len - 32, 32) != 0) throw IntegrityError("key bytes: checksum mismatch (corrupted or tampered)");
  const uint8_t kind = r.u8();
  if (kind != kKindPublic && kind != kKindSecret) throw IntegrityError("key bytes: unknown key kind");
  if (r.u8() != 0) throw IntegrityError("key bytes: reserved byte is not zero");
  if (std::memcmp(r.take(32), params->fingerprint().data(), 32) != 0) {
    throw IntegrityError("key bytes: made for another parameter set (fingerprint mismatch)");
  }
  std::array<uint8_t, 16> id;
  std::memcpy(id.data(), r.take(16), 16);
  const size_t n = params->n(), L = key_primes(*params);
  auto pk = std::make_unique<PublicKey>();
  std::memcpy(pk->a_seed.data(), r.take(32), 32);
  pk->a.resize(L * n);
  pk->b.resize(L * n);
  for (size_t j = 0; j < L; ++j) {
    const u64 q = key_prime(*params, j);
    const int bits = 64 - __builtin_clzll(q);
    unpack_bits(r.take(packed_size(n, bits)), n, bits, q, pk->b.data() + j * n, what);
  }
  expand_uniform(*params, pk->a_seed, pk->a.data());
  public_shoup(*params, *pk);
  std::unique_ptr<SecretKey> sk;
  if (kind == kKindSecret) {
    sk = std::make_unique<SecretKey>();
    sk->coeffs = SecureVector<int8_t>(n);
    SecureVector<u64> codes(n);
    unpack_bits(r.take(packed_size(n, 2)), n, 2, 3, codes.data(), what);
    // The inverse, branch-free: code c in {0, 1, 2} (unpack_bits refuses 3) gives (c & 1) - (c >> 1).
    for (size_t i = 0; i < n; ++i) {
      sk->coeffs[i] = static_cast<int8_t>(static_cast<int>(codes[i] & 1u) - static_cast<int>(codes[i] >> 1));
    }
    secret_to_ntt(*params, *sk);
    // The secret must belong to the public key: b + a*s = e must be small.
    const u64 q = params->primes()[0];
    std::vector<u64> t(n);
    for (size_t i = 0; i < n; ++i) t[i] = add_mod(pk->b[i], mul_shoup(sk->ntt[i], pk->a[i], pk->a_shoup[i], q), q);
    params->ntt(0).inverse(t.data());
    u64 bad = 0;
    // t in [0, q), q < 2^63: the top bit of eta - t is set iff t > eta, that
    // of t - (q - eta) iff t < q - eta; both set means e is not small. No
    // branch on e, which the secret key determines.
    const u64 eta = static_cast<u64>(kCbdEta);
    for (size_t i = 0; i < n; ++i) bad |= ((eta - t[i]) >> 63) & ((t[i] - (q - eta)) >> 63);
    secure_zero(t.data(), n * sizeof(u64));
    if (bad) throw IntegrityError("key bytes: the secret key does not match the public key");
  }
  if (r.remaining() != 0) throw IntegrityError("key bytes: trailing data");
  auto ks = std::make_shared<KeySet>(params, std::move(sk), std::move(pk));
  if (ks->key_id() != id) throw IntegrityError("key bytes: key id does not match the key material");
  return ks;
}

}  // namespace xcloud
