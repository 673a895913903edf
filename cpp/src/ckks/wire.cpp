#include "ckks/wire.h"

#include <cmath>
#include <cstring>
#include <string>

#include "ckks/byte_io.h"
#include "ckks/errors.h"
#include "parallel/memory.h"
#include "ring/sha256.h"

namespace xcloud {

namespace {

// Version 2 changed only how a seed expands (AES-256-CTR, keys.h); a
// version-1 message without seeds (c1 form 1) means the same in both.
constexpr uint16_t kWireVersion = 2;
constexpr uint16_t kWireVersionChaChaSeeds = 1;
constexpr size_t kFixedHeader = 92;
constexpr size_t kChecksum = 32;
constexpr uint32_t kMaxDims = 32;
const char* const kWhat = "ciphertext bytes";

int bits_of(u64 q) { return 64 - __builtin_clzll(q); }

// Bytes of c1 per block in a form with `seeds` seeds per block (seeds is
// at most kMaxSeedsPerBlock: no overflow).
size_t c1_block_size(const CkksParams& p, C1Form form, uint64_t seeds) {
  return form == C1Form::kFull ? packed_poly_size(p) : static_cast<size_t>(seeds) * sizeof(Seed);
}

// Bytes of the body for n_blocks blocks; 0 on overflow (never a valid size).
size_t body_size(const CkksParams& p, uint64_t n_blocks, C1Form form, uint64_t seeds) {
  const size_t per_block = packed_poly_size(p) + c1_block_size(p, form, seeds);
  if (n_blocks > SIZE_MAX / per_block) return 0;
  return static_cast<size_t>(n_blocks) * per_block;
}

// Bytes between the shape and the body: the seed count and the weights.
size_t form_header_size(const CkksParams& p, C1Form form, uint64_t seeds) {
  return form == C1Form::kSeededSum ? 4 + 8 * p.num_primes() * static_cast<size_t>(seeds) : 0;
}

}  // namespace

size_t packed_poly_size(const CkksParams& p) {
  size_t s = 0;
  for (u64 q : p.primes()) s += packed_size(p.n(), bits_of(q));
  return s;
}

size_t serialized_size(const CiphertextBatch& ct) {
  const CkksParams& p = *ct.params;
  return kFixedHeader + 8 * ct.shape.size() + form_header_size(p, ct.c1_form, ct.seeds_per_block) +
         body_size(p, ct.n_blocks, ct.c1_form, ct.seeds_per_block) + kChecksum;
}

void serialize_into(const CiphertextBatch& ct, uint8_t* dst, size_t size) {
  if (size != serialized_size(ct)) throw std::invalid_argument("serialize_into: the buffer must be serialized_size bytes");
  const CkksParams& p = *ct.params;
  const size_t n = p.n(), L = p.num_primes();
  ByteWriter w(dst, size);
  w.bytes(reinterpret_cast<const uint8_t*>("XCCT"), 4);
  w.u16(kWireVersion);
  w.u8(static_cast<uint8_t>(ct.origin));
  w.u8(static_cast<uint8_t>(ct.c1_form));
  w.u8(static_cast<uint8_t>(ct.dtype));
  w.u8(static_cast<uint8_t>(ct.shape.size()));
  w.u16(0);
  w.bytes(p.fingerprint().data(), 32);
  w.bytes(ct.key_id.data(), 16);
  w.u64(ct.n_values);
  w.u32(ct.n_blocks);
  w.u8(static_cast<uint8_t>(L));
  w.u8(static_cast<uint8_t>(p.log_n()));
  w.u16(0);
  w.f64(ct.scale);
  w.f64(ct.bound);
  for (int64_t d : ct.shape) w.i64(d);
  const size_t K = ct.seeds_per_block;
  if (ct.c1_form == C1Form::kSeededSum) {
    w.u32(static_cast<uint32_t>(K));
    for (u64 v : ct.seed_weights) w.u64(v);
  }
  for (size_t b = 0; b < ct.n_blocks; ++b) {
    for (int part = 0; part < 2; ++part) {
      if (part == 1 && ct.seeded()) {
        for (size_t k = 0; k < K; ++k) w.bytes(ct.seeds[b * K + k].data(), 32);
        continue;
      }
      const WordVector& src = part == 0 ? ct.c0 : ct.c1;
      for (size_t j = 0; j < L; ++j) {
        const int bits = bits_of(p.primes()[j]);
        pack_bits(src.data() + (b * L + j) * n, n, bits, w.take(packed_size(n, bits)));
      }
    }
  }
  const auto digest = sha256(dst, w.written());
  w.bytes(digest.data(), digest.size());
  if (w.remaining() != 0) throw std::logic_error("serialize: serialized_size disagrees with the layout");
}

std::vector<uint8_t> serialize(const CiphertextBatch& ct) {
  std::vector<uint8_t> out(serialized_size(ct));
  serialize_into(ct, out.data(), out.size());
  return out;
}

bool within_modulus(double log2_scale, double bound, double log2_q, double margin_bits) {
  // A bound below 1 lowers the headroom term, but the scale itself must still
  // lie below the modulus (a tampered scale of 1e308 with a bound of 1e-300
  // passes the second test alone).
  const double headroom = log2_scale + 0.5 + std::log2(bound > 0.0 ? bound : 1.0) + 1.0;
  return log2_scale + margin_bits < log2_q && headroom + margin_bits < log2_q;
}

CiphertextBatch deserialize(const ParamsPtr& params, const uint8_t* data, size_t len) {
  const CkksParams& p = *params;
  if (data == nullptr || len < kFixedHeader + kChecksum) {
    throw IntegrityError(std::string(kWhat) + ": truncated input (" + std::to_string(len) + " bytes)");
  }
  if (std::memcmp(data, "XCCT", 4) != 0) throw IntegrityError(std::string(kWhat) + ": bad magic (not an xcloud ciphertext)");
  ByteReader r(data + 4, len - 4 - kChecksum, kWhat);
  const uint16_t version = r.u16();
  if (version != kWireVersion && version != kWireVersionChaChaSeeds) {
    throw UnsupportedVersionError(std::string(kWhat) + ": unsupported version " + std::to_string(version) +
                                  " (this build reads versions 1 and 2)");
  }
  const auto digest = sha256(data, len - kChecksum);
  if (std::memcmp(digest.data(), data + len - kChecksum, kChecksum) != 0) {
    throw IntegrityError(std::string(kWhat) + ": checksum mismatch (corrupted, truncated or tampered)");
  }
  CiphertextBatch ct;
  ct.params = params;
  const uint8_t origin = r.u8(), form = r.u8(), dtype = r.u8(), ndim = r.u8();
  if (origin < 1 || origin > 3) throw IntegrityError(std::string(kWhat) + ": unknown origin");
  if (form > 2) throw IntegrityError(std::string(kWhat) + ": unknown c1 form");
  if (form == 0 && origin != 1) throw IntegrityError(std::string(kWhat) + ": only secret-key ciphertexts are seeded");
  if (form == 2 && origin != 3) throw IntegrityError(std::string(kWhat) + ": only aggregates have a seeded-sum c1");
  if (version == kWireVersionChaChaSeeds && form != 1) {
    throw UnsupportedVersionError(std::string(kWhat) +
                                  ": version 1 with a seeded c1, whose seeds expand by the ChaCha20 sampler of "
                                  "xcloud's first wire format; this build expands seeds with AES-256-CTR (version 2) "
                                  "only; re-encrypt with this build");
  }
  if (dtype != 1 && dtype != 2) throw IntegrityError(std::string(kWhat) + ": unknown dtype");
  if (ndim > kMaxDims) throw IntegrityError(std::string(kWhat) + ": too many dimensions");
  if (r.u16() != 0) throw IntegrityError(std::string(kWhat) + ": reserved field is not zero");
  if (std::memcmp(r.take(32), p.fingerprint().data(), 32) != 0) {
    throw IntegrityError(std::string(kWhat) + ": made under another parameter set (fingerprint mismatch)");
  }
  std::memcpy(ct.key_id.data(), r.take(16), 16);
  ct.origin = static_cast<Origin>(origin);
  ct.c1_form = static_cast<C1Form>(form);
  ct.dtype = static_cast<DType>(dtype);
  ct.n_values = r.u64();
  ct.n_blocks = r.u32();
  const uint8_t L = r.u8(), log_n = r.u8();
  if (L != p.num_primes() || log_n != p.log_n()) throw IntegrityError(std::string(kWhat) + ": ring layout differs from the parameters");
  if (r.u16() != 0) throw IntegrityError(std::string(kWhat) + ": reserved field is not zero");
  ct.scale = r.f64();
  ct.bound = r.f64();
  if (ct.n_values == 0 || ct.n_values > (uint64_t{1} << 40)) throw IntegrityError(std::string(kWhat) + ": bad value count");
  if (static_cast<uint64_t>(ct.n_blocks) != blocks_for(ct.n_values, p.n())) throw IntegrityError(std::string(kWhat) + ": block count does not match the value count");
  if (!std::isfinite(ct.scale) || ct.scale < 1.0 || !std::isfinite(ct.bound) || ct.bound < 0.0) {
    throw IntegrityError(std::string(kWhat) + ": bad scale or bound");
  }
  if (!within_modulus(std::log2(ct.scale), ct.bound, p.log2_q(), 0.0)) {
    throw IntegrityError(std::string(kWhat) + ": scale and bound exceed the modulus");
  }
  uint64_t prod = 1;
  ct.shape.resize(ndim);
  for (uint8_t i = 0; i < ndim; ++i) {
    const int64_t d = r.i64();
    if (d < 0 || (d > 0 && prod > (uint64_t{1} << 40) / static_cast<uint64_t>(d))) {
      throw IntegrityError(std::string(kWhat) + ": bad shape");
    }
    ct.shape[i] = d;
    prod *= static_cast<uint64_t>(d);
  }
  if (prod != ct.n_values) throw IntegrityError(std::string(kWhat) + ": shape does not match the value count");
  ct.seeds_per_block = ct.c1_form == C1Form::kSeeded ? 1 : 0;
  if (ct.c1_form == C1Form::kSeededSum) {
    ct.seeds_per_block = r.u32();
    if (ct.seeds_per_block < 1 || ct.seeds_per_block > kMaxSeedsPerBlock) {
      throw IntegrityError(std::string(kWhat) + ": seeded-sum seed count " + std::to_string(ct.seeds_per_block) +
                           " is outside [1, " + std::to_string(kMaxSeedsPerBlock) + "]");
    }
  }
  const size_t K = ct.seeds_per_block;
  // Every length is known here: compare before allocating anything.
  const size_t weights_bytes = form_header_size(p, ct.c1_form, K) - (ct.c1_form == C1Form::kSeededSum ? 4 : 0);
  const size_t body = body_size(p, ct.n_blocks, ct.c1_form, K);
  if (body == 0 || r.remaining() < weights_bytes || r.remaining() - weights_bytes != body) {
    throw IntegrityError(std::string(kWhat) + ": length does not match the header (truncated or extended)");
  }
  if (ct.c1_form == C1Form::kSeededSum) {
    ct.seed_weights.resize(L * K);
    for (size_t j = 0; j < L; ++j) {
      const u64 q = p.primes()[j];
      for (size_t k = 0; k < K; ++k) {
        const u64 v = r.u64();
        if (v >= q) throw IntegrityError(std::string(kWhat) + ": seeded-sum weight not below its prime");
        ct.seed_weights[j * K + k] = v;
      }
    }
  }
  const size_t n = p.n();
  // Every word is unpacked below; large arrays get the huge-page advice.
  resize_for_overwrite(ct.c0, static_cast<size_t>(ct.n_blocks) * L * n);
  if (ct.seeded()) {
    ct.seeds.resize(static_cast<size_t>(ct.n_blocks) * K);
  } else {
    resize_for_overwrite(ct.c1, ct.c0.size());
  }
  for (size_t b = 0; b < ct.n_blocks; ++b) {
    for (int part = 0; part < 2; ++part) {
      if (part == 1 && ct.seeded()) {
        for (size_t k = 0; k < K; ++k) std::memcpy(ct.seeds[b * K + k].data(), r.take(32), 32);
        continue;
      }
      WordVector& dst = part == 0 ? ct.c0 : ct.c1;  // every word unpacked below
      for (size_t j = 0; j < L; ++j) {
        const u64 q = p.primes()[j];
        const int bits = bits_of(q);
        unpack_bits(r.take(packed_size(n, bits)), n, bits, q, dst.data() + (b * L + j) * n, kWhat);
      }
    }
  }
  return ct;
}

}  // namespace xcloud
