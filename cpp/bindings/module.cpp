// pybind11 bindings of the xcloud kernel: conversions only, no logic.
// Every kernel call releases the GIL; outputs are allocated before release.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstring>

#include "ckks/aggregate.h"
#include "ckks/crt.h"
#include "ckks/encryptor.h"
#include "ckks/errors.h"
#include "ckks/wire.h"
#include "parallel/memory.h"
#include "parallel/parallel_for.h"
#include "ring/aes256.h"
#include "ring/chacha20.h"
#include "ring/poly_ops.h"
#include "ring/real_sampler.h"
#include "ring/sampler.h"
#include "ring/secure.h"
#include "ring/sha256.h"
#include "ring/simd.h"

namespace py = pybind11;
using namespace xcloud;

namespace {

Seed seed_from(const py::bytes& b) {
  const std::string s = b;
  if (s.size() != 32) throw std::invalid_argument("a seed must be exactly 32 bytes");
  Seed out;
  std::memcpy(out.data(), s.data(), 32);
  return out;
}

py::bytes to_pybytes(const std::vector<uint8_t>& v) { return py::bytes(reinterpret_cast<const char*>(v.data()), v.size()); }

template <size_t K>
py::bytes to_pybytes(const std::array<uint8_t, K>& v) { return py::bytes(reinterpret_cast<const char*>(v.data()), K); }

const char* dtype_name(DType d) { return d == DType::kFloat32 ? "float32" : "float64"; }
const char* origin_name(Origin o) {
  return o == Origin::kSecretKey ? "secret-key" : (o == Origin::kPublicKey ? "public-key" : "aggregate");
}
const char* c1_form_name(C1Form f) {
  return f == C1Form::kSeeded ? "seeded" : (f == C1Form::kFull ? "full" : "seeded-sum");
}

using BatchPtr = std::shared_ptr<CiphertextBatch>;

BatchPtr encrypt_py(const KeySetPtr& keys, const py::buffer& values, const std::vector<int64_t>& shape,
                    const std::string& mode, int threads, const py::object& seed) {
  const py::buffer_info info = values.request();
  EncryptRequest req;
  if (info.format == py::format_descriptor<float>::format() && info.itemsize == 4) {
    req.dtype = DType::kFloat32;
  } else if (info.format == py::format_descriptor<double>::format() && info.itemsize == 8) {
    req.dtype = DType::kFloat64;
  } else {
    throw py::type_error("values must be float32 or float64, got buffer format '" + info.format + "'");
  }
  if (info.ndim != 1 || info.strides[0] != info.itemsize) throw std::invalid_argument("values must be a contiguous 1-D buffer");
  req.data = info.ptr;
  req.count = static_cast<uint64_t>(info.shape[0]);
  req.shape = shape;
  req.threads = threads;
  if (!seed.is_none()) req.seed = seed_from(seed.cast<py::bytes>());
  if (mode != "secret" && mode != "public") throw std::invalid_argument("mode must be 'secret' or 'public'");
  auto out = std::make_shared<CiphertextBatch>();
  {
    py::gil_scoped_release release;
    *out = mode == "secret" ? encrypt_secret(*keys, req) : encrypt_public(*keys, req);
  }
  return out;
}

py::array decrypt_py(const KeySetPtr& keys, const BatchPtr& ct, const std::string& dtype, int threads) {
  if (dtype != "float32" && dtype != "float64") throw std::invalid_argument("dtype must be 'float32' or 'float64'");
  const bool f32 = dtype == "float32";
  py::array out = f32 ? py::array(py::array_t<float>(static_cast<py::ssize_t>(ct->n_values)))
                      : py::array(py::array_t<double>(static_cast<py::ssize_t>(ct->n_values)));
  void* ptr = out.mutable_data();
  {
    py::gil_scoped_release release;
    decrypt(*keys, *ct, ptr, f32 ? DType::kFloat32 : DType::kFloat64, threads);
  }
  return out;
}

std::vector<const CiphertextBatch*> raw_inputs(const std::vector<BatchPtr>& inputs) {
  std::vector<const CiphertextBatch*> raw;
  raw.reserve(inputs.size());
  for (const auto& p : inputs) {
    if (!p) throw std::invalid_argument("None is not a ciphertext batch");
    raw.push_back(p.get());
  }
  return raw;
}

BatchPtr aggregate_py(const std::vector<BatchPtr>& inputs, const std::vector<double>& weights, int threads,
                      bool compact) {
  auto raw = raw_inputs(inputs);
  auto out = std::make_shared<CiphertextBatch>();
  {
    py::gil_scoped_release release;
    *out = aggregate(raw, weights, threads, compact);
  }
  return out;
}

py::array_t<uint64_t> u64_array(const std::vector<u64>& v) {
  py::array_t<uint64_t> a(static_cast<py::ssize_t>(v.size()));
  std::memcpy(a.mutable_data(), v.data(), v.size() * sizeof(u64));
  return a;
}

std::vector<u64> u64_vector(const py::array_t<uint64_t, py::array::c_style | py::array::forcecast>& a) {
  return std::vector<u64>(a.data(), a.data() + a.size());
}

// Calls fn(values, count) with x as float32 (a float32 array, read as it is)
// or float64 (anything else, converted), after checking |x * scale| < 2^62
// (the precondition of the coefficient encoding's rounding, poly_ops.h).
template <typename F>
void with_encoding_input(const py::array& x, double scale, F&& fn) {
  auto run = [&](const auto& a) {
    const size_t count = static_cast<size_t>(a.size());
    for (size_t i = 0; i < count; ++i) {
      if (!(std::fabs(static_cast<double>(a.data()[i]) * scale) < 4611686018427387904.0)) {
        throw std::invalid_argument("|x * scale| must be below 2^62");
      }
    }
    fn(a.data(), count);
  };
  if (py::isinstance<py::array_t<float>>(x)) {
    run(py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(x));
  } else {
    run(py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(x));
  }
}

void bind_testing(py::module_& t) {
  t.doc() = "Internal kernels exposed for known-answer and statistical tests. Not a stable API.";
  t.def("chacha20_block", [](const py::bytes& key, uint32_t counter, const py::bytes& nonce) {
    const std::string k = key, n = nonce;
    if (k.size() != 32 || n.size() != 12) throw std::invalid_argument("key must be 32 bytes and nonce 12 bytes");
    std::array<uint8_t, 64> out;
    chacha20_block(reinterpret_cast<const uint8_t*>(k.data()), counter, reinterpret_cast<const uint8_t*>(n.data()), out.data());
    return to_pybytes(out);
  });
  t.def("chacha20_stream", [](const py::bytes& key, const py::bytes& nonce, uint32_t counter, size_t n) {
    const std::string k = key, nn = nonce;
    if (k.size() != 32 || nn.size() != 12) throw std::invalid_argument("key must be 32 bytes and nonce 12 bytes");
    ChaCha20Stream s(reinterpret_cast<const uint8_t*>(k.data()), reinterpret_cast<const uint8_t*>(nn.data()), counter);
    std::vector<uint8_t> out(n);
    s.fill(out.data(), n);
    return to_pybytes(out);
  });
  t.def("aes256_ctr_keystream", [](const py::bytes& key, const py::bytes& counter_block, size_t n) {
    const std::string k = key, c = counter_block;
    if (k.size() != 32 || c.size() != 16) throw std::invalid_argument("key must be 32 bytes and the counter block 16");
    Aes256Ctr s(reinterpret_cast<const uint8_t*>(k.data()), reinterpret_cast<const uint8_t*>(c.data()));
    std::vector<uint8_t> out(n);
    s.fill(out.data(), n);
    return to_pybytes(out);
  });
  t.def("aes256_ctr_path", &aes256_ctr_path, "The AES-256-CTR implementation in use: vaes, aes-ni or portable.");
  t.def("aes256_force_portable", &aes256_force_portable, py::arg("force"),
        "Forces the portable AES (True) or allows AES-NI/VAES again; returns the previous setting.");
  t.def("sample_uniform_mod_ctr", [](const py::bytes& seed, u64 q, size_t n) {
    if (q < 1) throw std::invalid_argument("the modulus must be at least 1");
    const Seed s = seed_from(seed);
    const uint8_t zero_block[16] = {0};
    Aes256Ctr rng(s.data(), zero_block);
    std::vector<u64> v(n);
    sample_uniform_mod_ctr(rng, q, v.data(), n);
    return u64_array(v);
  });
  t.def("sha256", [](const py::bytes& data) {
    const std::string d = data;
    return to_pybytes(sha256(d.data(), d.size()));
  });
  t.def("sha256_path", &sha256_path, "The SHA-256 implementation in use: sha-ni or portable.");
  t.def("real_sampler_log", [](const py::array_t<double, py::array::c_style | py::array::forcecast>& u) {
    py::array_t<double> out(u.size());
    for (py::ssize_t i = 0; i < u.size(); ++i) {
      const double x = u.data()[i];
      if (!(x >= 0x1p-52 && x <= 1.0)) throw std::invalid_argument("u must lie in [2^-52, 1]");
      out.mutable_data()[i] = detail::real_sampler_log(x);
    }
    return out;
  }, "log(u) as the DP sampler computes it (ring/real_sampler.h), for u in [2^-52, 1].");
  t.def("real_sampler_cos_sin", [](const py::array_t<double, py::array::c_style | py::array::forcecast>& v) {
    py::array_t<double> c(v.size()), s(v.size());
    for (py::ssize_t i = 0; i < v.size(); ++i) {
      const double x = v.data()[i];
      if (!(x >= 0.0 && x < 1.0)) throw std::invalid_argument("v must lie in [0, 1)");
      detail::real_sampler_cos_sin(x, c.mutable_data() + i, s.mutable_data() + i);
    }
    return py::make_tuple(c, s);
  }, "(cos 2 pi v, sin 2 pi v) as the DP sampler computes them, for v in [0, 1).");
  auto stream_of = [](const py::bytes& seed) {
    static const uint8_t zero_nonce[12] = {0};
    const Seed s = seed_from(seed);
    return std::make_unique<ChaCha20Stream>(s.data(), zero_nonce);
  };
  t.def("sample_uniform_mod", [stream_of](const py::bytes& seed, u64 q, size_t n) {
    if (q < 1) throw std::invalid_argument("the modulus must be at least 1");
    auto rng = stream_of(seed);
    std::vector<u64> v(n);
    sample_uniform_mod(*rng, q, v.data(), n);
    return u64_array(v);
  });
  t.def("sample_ternary", [stream_of](const py::bytes& seed, size_t n) {
    auto rng = stream_of(seed);
    py::array_t<int8_t> a(static_cast<py::ssize_t>(n));
    sample_ternary(*rng, a.mutable_data(), n);
    return a;
  });
  t.def("sample_ternary_packed", [stream_of](const py::bytes& seed, size_t n) {
    auto rng = stream_of(seed);
    py::array_t<int8_t> a(static_cast<py::ssize_t>(n));
    sample_ternary_packed(*rng, a.mutable_data(), n);
    return a;
  });
  t.def("sample_cbd", [stream_of](const py::bytes& seed, size_t n) {
    auto rng = stream_of(seed);
    py::array_t<int32_t> a(static_cast<py::ssize_t>(n));
    sample_cbd(*rng, a.mutable_data(), n);
    return a;
  });
  // The constant-time AES path and the AES-256-CTR noise samplers (secret keys).
  auto aes_key_of = [](const py::bytes& key, const py::bytes& counter_block) {
    const std::string k = key, c = counter_block;
    if (k.size() != 32 || c.size() != 16) throw std::invalid_argument("key must be 32 bytes and the counter block 16");
    return std::make_pair(k, c);
  };
  auto aes_use_of = [](const std::string& use) {
    if (use != "public" && use != "secret") throw std::invalid_argument("key use must be 'public' or 'secret'");
    return use == "secret" ? AesKeyUse::kSecret : AesKeyUse::kPublic;
  };
  t.def("aes256_sbox", [](const std::string& impl) {
    if (impl != "table" && impl != "ct") throw std::invalid_argument("impl must be 'table' or 'ct'");
    std::vector<uint8_t> out(256);
    for (int x = 0; x < 256; ++x) {
      const uint8_t b = static_cast<uint8_t>(x);
      out[x] = impl == "ct" ? detail::aes256_sbox_ct(b) : detail::aes256_sbox_table(b);
    }
    return to_pybytes(out);
  }, py::arg("impl"), "The 256-byte S-box from the table or from the constant-time circuit.");
  t.def("aes256_expand_key", [](const py::bytes& key, const std::string& impl) {
    const std::string k = key;
    if (k.size() != 32) throw std::invalid_argument("key must be 32 bytes");
    const auto* kp = reinterpret_cast<const uint8_t*>(k.data());
    std::vector<uint8_t> rk(240);
    if (impl == "table") {
      aes256_expand_key(kp, rk.data());
    } else if (impl == "ct") {
      aes256_expand_key_ct(kp, rk.data());
    } else if (impl == "aes-ni") {
      if (!detail::aes256_cpu_has_aes_ni()) throw std::invalid_argument("this build or CPU has no AES-NI");
      detail::aes256_expand_key_ni(kp, rk.data());
    } else {
      throw std::invalid_argument("impl must be 'table', 'ct' or 'aes-ni'");
    }
    return to_pybytes(rk);
  }, py::arg("key"), py::arg("impl"), "The 240 bytes of round keys by one key schedule.");
  t.def("aes256_encrypt_block", [](const py::bytes& key, const py::bytes& block, const std::string& impl) {
    const std::string k = key, b = block;
    if (k.size() != 32 || b.size() != 16) throw std::invalid_argument("key must be 32 bytes and the block 16");
    if (impl != "table" && impl != "ct") throw std::invalid_argument("impl must be 'table' or 'ct'");
    std::vector<uint8_t> rk(240), out(16);
    const auto* kp = reinterpret_cast<const uint8_t*>(k.data());
    const auto* bp = reinterpret_cast<const uint8_t*>(b.data());
    if (impl == "ct") {
      aes256_expand_key_ct(kp, rk.data());
      aes256_encrypt_blocks_ct(rk.data(), bp, out.data(), 1);
    } else {
      aes256_expand_key(kp, rk.data());
      aes256_encrypt_block(rk.data(), bp, out.data());
    }
    return to_pybytes(out);
  }, py::arg("key"), py::arg("block"), py::arg("impl"), "One AES-256 block (FIPS 197), table or constant-time.");
  t.def("aes256_ctr_blocks", [](const std::string& impl, const py::bytes& key, const py::bytes& prefix, uint32_t ctr,
                                size_t blocks) {
    const std::string k = key, p = prefix;
    if (k.size() != 32 || p.size() != 12) throw std::invalid_argument("key must be 32 bytes and the prefix 12");
    using Fn = void (*)(const uint8_t*, const uint8_t*, uint32_t, size_t, uint8_t*);
    Fn fn = nullptr;
    if (impl == "table") fn = detail::aes256_ctr_portable;
    if (impl == "ct") fn = detail::aes256_ctr_ct;
#ifdef XCLOUD_HAVE_AVX2
    if (impl == "aes-ni" && detail::aes256_cpu_has_aes_ni()) fn = detail::aes256_ctr_ni;
    if (impl == "vaes" && detail::aes256_cpu_has_vaes()) fn = detail::aes256_ctr_vaes;
#endif
    if (fn == nullptr) throw std::invalid_argument("unknown AES implementation, or not on this build and CPU: " + impl);
    std::vector<uint8_t> rk(240), out(16 * blocks);
    aes256_expand_key_ct(reinterpret_cast<const uint8_t*>(k.data()), rk.data());
    fn(rk.data(), reinterpret_cast<const uint8_t*>(p.data()), ctr, blocks, out.data());
    return to_pybytes(out);
  }, py::arg("impl"), py::arg("key"), py::arg("prefix"), py::arg("ctr"), py::arg("blocks"),
     "Counter blocks prefix || BE32(ctr + i mod 2^32), i < blocks, encrypted by one kernel.");
  t.def("aes256_force_ni", &aes256_force_ni, py::arg("force"),
        "Takes AES-NI where VAES would be taken (True), or allows VAES again; returns the previous setting.");
  t.def("aes256_ctr_impls", [] {
    std::vector<std::string> v = {"table", "ct"};
    if (detail::aes256_cpu_has_aes_ni()) v.push_back("aes-ni");
    if (detail::aes256_cpu_has_vaes()) v.push_back("vaes");
    return v;
  }, "The AES-256-CTR kernels this build and CPU can run.");
  t.def("aes256_ctr_path_for", [aes_use_of](const std::string& use) { return std::string(aes256_ctr_path_for(aes_use_of(use))); },
        py::arg("use"), "The AES-256-CTR implementation an Aes256Ctr of that key use ('public', 'secret') takes now.");
  t.def("aes256_ctr_keystream_for", [aes_key_of, aes_use_of](const py::bytes& key, const py::bytes& counter_block, size_t n,
                                                              const std::string& use) {
    const auto kc = aes_key_of(key, counter_block);
    Aes256Ctr s(reinterpret_cast<const uint8_t*>(kc.first.data()), reinterpret_cast<const uint8_t*>(kc.second.data()),
                aes_use_of(use));
    std::vector<uint8_t> out(n);
    s.fill(out.data(), n);
    return to_pybytes(out);
  }, py::arg("key"), py::arg("counter_block"), py::arg("n"), py::arg("use"));
  t.def("sample_cbd_ctr", [aes_key_of, aes_use_of](const py::bytes& key, const py::bytes& counter_block, size_t n,
                                                    bool reference, const std::string& use) {
    const auto kc = aes_key_of(key, counter_block);
    Aes256Ctr rng(reinterpret_cast<const uint8_t*>(kc.first.data()), reinterpret_cast<const uint8_t*>(kc.second.data()),
                  aes_use_of(use));
    py::array_t<int32_t> a(static_cast<py::ssize_t>(n));
    reference ? detail::sample_cbd_scalar(rng, a.mutable_data(), n) : sample_cbd(rng, a.mutable_data(), n);
    return a;
  }, py::arg("key"), py::arg("counter_block"), py::arg("n"), py::arg("reference") = false, py::arg("use") = "secret");
  t.def("sample_ternary_packed_ctr", [aes_key_of, aes_use_of](const py::bytes& key, const py::bytes& counter_block,
                                                               size_t n, bool reference, const std::string& use) {
    const auto kc = aes_key_of(key, counter_block);
    Aes256Ctr rng(reinterpret_cast<const uint8_t*>(kc.first.data()), reinterpret_cast<const uint8_t*>(kc.second.data()),
                  aes_use_of(use));
    py::array_t<int8_t> a(static_cast<py::ssize_t>(n));
    reference ? detail::sample_ternary_packed_scalar(rng, a.mutable_data(), n)
              : sample_ternary_packed(rng, a.mutable_data(), n);
    return a;
  }, py::arg("key"), py::arg("counter_block"), py::arg("n"), py::arg("reference") = false, py::arg("use") = "secret");
  t.def("buffer_pool_stats", [] {
    const BufferPoolStats st = buffer_pool_stats();
    return std::make_pair(st.buffers, st.bytes);
  }, "(buffers, bytes) the large-buffer cache of ciphertext arrays holds now (parallel/memory.h).");
  t.def("release_buffer_pool", &release_buffer_pool, "Hands every cached ciphertext buffer back to the system.");
  t.def("generate_ntt_primes", &generate_ntt_primes, py::arg("bits"), py::arg("two_n"), py::arg("count"),
        py::arg("exclude") = std::vector<u64>{});
  t.def("is_prime", &is_prime);
  t.def("ntt_psi", [](u64 q, size_t n) { return NttTables(q, n).psi(); });
  t.def("ntt_forward", [](u64 q, size_t n, const py::array_t<uint64_t, py::array::c_style | py::array::forcecast>& a, bool scalar) {
    NttTables tab(q, n);
    auto v = u64_vector(a);
    if (v.size() != n) throw std::invalid_argument("array length must equal n");
    for (u64 x : v) if (x >= q) throw std::invalid_argument("inputs must be in [0, q)");
    scalar ? tab.forward_scalar(v.data()) : tab.forward(v.data());
    return u64_array(v);
  }, py::arg("q"), py::arg("n"), py::arg("a"), py::arg("scalar") = false);
  t.def("ntt_inverse", [](u64 q, size_t n, const py::array_t<uint64_t, py::array::c_style | py::array::forcecast>& a, bool scalar) {
    NttTables tab(q, n);
    auto v = u64_vector(a);
    if (v.size() != n) throw std::invalid_argument("array length must equal n");
    for (u64 x : v) if (x >= q) throw std::invalid_argument("inputs must be in [0, q)");
    scalar ? tab.inverse_scalar(v.data()) : tab.inverse(v.data());
    return u64_array(v);
  }, py::arg("q"), py::arg("n"), py::arg("a"), py::arg("scalar") = false);
  t.def("ntt_inverse_mul", [](u64 q, size_t n, const py::array_t<uint64_t, py::array::c_style | py::array::forcecast>& a,
                              const py::array_t<uint64_t, py::array::c_style | py::array::forcecast>& b, bool scalar) {
    NttTables tab(q, n);
    auto va = u64_vector(a), vb = u64_vector(b);
    if (va.size() != n || vb.size() != n) throw std::invalid_argument("array lengths must equal n");
    for (size_t i = 0; i < n; ++i) {
      if (va[i] >= q || vb[i] >= q) throw std::invalid_argument("inputs must be in [0, q)");
    }
    std::vector<u64> shoup(n), out(n);
    for (size_t i = 0; i < n; ++i) shoup[i] = shoup_precompute(vb[i], q);
    if (scalar) {
      for (size_t i = 0; i < n; ++i) out[i] = mul_shoup(va[i], vb[i], shoup[i], q);
      tab.inverse_scalar(out.data());
    } else {
      tab.inverse_mul(out.data(), va.data(), vb.data(), shoup.data());
    }
    return u64_array(out);
  }, py::arg("q"), py::arg("n"), py::arg("a"), py::arg("b"), py::arg("scalar") = false,
     "inverse(a * b): the fused kernel (or, with scalar=True, the product then the reference inverse).");
  t.def("ntt_inverse_mul_encode_minus", [](u64 q, size_t n, const py::array_t<uint64_t, py::array::c_style | py::array::forcecast>& a,
                                           const py::array_t<uint64_t, py::array::c_style | py::array::forcecast>& b,
                                           const py::array& x, double scale,
                                           const py::array_t<int32_t, py::array::c_style | py::array::forcecast>& e, bool scalar) {
    NttTables tab(q, n);
    auto va = u64_vector(a), vb = u64_vector(b);
    if (va.size() != n || vb.size() != n || static_cast<size_t>(e.size()) != n) {
      throw std::invalid_argument("a, b and e must have length n");
    }
    if (static_cast<size_t>(x.size()) > n) throw std::invalid_argument("x may not be longer than n");
    for (size_t i = 0; i < n; ++i) {
      if (va[i] >= q || vb[i] >= q) throw std::invalid_argument("inputs must be in [0, q)");
    }
    std::vector<u64> shoup(n), out(n);
    for (size_t i = 0; i < n; ++i) shoup[i] = shoup_precompute(vb[i], q);
    with_encoding_input(x, scale, [&](const auto* xp, size_t count) {
      if (scalar) {  // the reference: product, reference inverse, the portable pass
        for (size_t i = 0; i < n; ++i) out[i] = mul_shoup(va[i], vb[i], shoup[i], q);
        tab.inverse_scalar(out.data());
        poly_encode_minus(out.data(), xp, count, scale, e.data(), out.data(), n, q);
      } else {
        tab.inverse_mul_encode_minus(out.data(), va.data(), vb.data(), shoup.data(), xp, count, scale, e.data());
      }
    });
    return u64_array(out);
  }, py::arg("q"), py::arg("n"), py::arg("a"), py::arg("b"), py::arg("x"), py::arg("scale"), py::arg("e"),
     py::arg("scalar") = false,
     "(round(x * scale) + e) - inverse(a * b) mod q: the fused kernel of coefficient-encoded secret-key encryption "
     "(or, with scalar=True, the reference transform then the scalar pass).");
  t.def("encode", [](const ParamsPtr& p, const py::array_t<double, py::array::c_style | py::array::forcecast>& x) {
    if (static_cast<size_t>(x.size()) > p->n()) throw std::invalid_argument("at most N values");
    py::array_t<double> m(static_cast<py::ssize_t>(p->n()));
    std::vector<cplx> z(p->n() / 2);
    p->encoder().encode(x.data(), static_cast<size_t>(x.size()), m.mutable_data(), z.data());
    return m;
  });
  t.def("decode", [](const ParamsPtr& p, const py::array_t<double, py::array::c_style | py::array::forcecast>& m) {
    if (static_cast<size_t>(m.size()) != p->n()) throw std::invalid_argument("need exactly N coefficients");
    py::array_t<double> x(static_cast<py::ssize_t>(p->n()));
    std::vector<cplx> z(p->n() / 2);
    p->encoder().decode(m.data(), x.mutable_data(), p->n(), z.data());
    return x;
  });
  t.def("aggregate_weight_bits", [](const std::vector<BatchPtr>& inputs, const std::vector<double>& weights) {
    return aggregate_weight_bits(raw_inputs(inputs), weights);
  });
  t.def("aggregate_compact_seeds", [](const std::vector<BatchPtr>& inputs) {
    return aggregate_compact_seeds(raw_inputs(inputs));
  });
  // The seeded-sum weights as stored (L x K residues, [j * K + k]); empty for other forms.
  t.def("seed_weights", [](const BatchPtr& c) { return u64_array(c->seed_weights); });
  // Scalar vs SIMD dispatch (ring/simd.h), for differential tests.
  t.def("poly_rescale_aux", [](const py::object& t, const py::array_t<int32_t, py::array::c_style | py::array::forcecast>& e,
                               const py::array_t<uint64_t, py::array::c_style | py::array::forcecast>& xp,
                               const py::object& m, u64 q, u64 p, bool scalar) {
    if (!is_prime(q) || !is_prime(p) || q == p || q >= (u64{1} << kMaxPrimeBits) || p >= (u64{1} << kMaxPrimeBits)) {
      throw std::invalid_argument("q and p must be distinct primes below 2^50");
    }
    const size_t n = static_cast<size_t>(xp.size());
    if (static_cast<size_t>(e.size()) != n) throw std::invalid_argument("e and xp must have the same length");
    for (size_t i = 0; i < n; ++i) {
      if (xp.data()[i] >= p) throw std::invalid_argument("xp residues out of range");
    }
    std::vector<u64> tv;
    if (!t.is_none()) {
      auto ta = t.cast<py::array_t<uint64_t, py::array::c_style | py::array::forcecast>>();
      if (static_cast<size_t>(ta.size()) != n) throw std::invalid_argument("t must have the same length");
      tv.assign(ta.data(), ta.data() + n);
      for (u64 v : tv) {
        if (v >= q) throw std::invalid_argument("t residues out of range");
      }
    }
    std::vector<int64_t> mv;
    if (!m.is_none()) {
      auto ma = m.cast<py::array_t<int64_t, py::array::c_style | py::array::forcecast>>();
      if (static_cast<size_t>(ma.size()) != n) throw std::invalid_argument("m must have the same length");
      mv.assign(ma.data(), ma.data() + n);
      for (int64_t v : mv) {
        if (v <= -(int64_t{1} << 50) || v >= (int64_t{1} << 50)) throw std::invalid_argument("|m| must be below 2^50");
      }
    }
    const u64 pinv = inv_mod(p % q, q), pinv_shoup = shoup_precompute(pinv, q);
    std::vector<u64> out(n);
    const u64* tp = tv.empty() ? nullptr : tv.data();
    const int64_t* mp = mv.empty() ? nullptr : mv.data();
    if (scalar) {
      detail::poly_rescale_aux_scalar(out.data(), tp, e.data(), xp.data(), mp, n, q, p, pinv, pinv_shoup);
    } else {
      poly_rescale_aux(out.data(), tp, e.data(), xp.data(), mp, n, q, p, pinv, pinv_shoup);
    }
    return u64_array(out);
  }, py::arg("t"), py::arg("e"), py::arg("xp"), py::arg("m"), py::arg("q"), py::arg("p"), py::arg("scalar"),
     "t + (e - [xp + e]_p) * p^-1 (+ m) mod q: the modulus drop of public-key encryption (poly_ops.h).");
  t.def("poly_encode_minus", [](const py::array& x, double scale, const py::array_t<int32_t, py::array::c_style | py::array::forcecast>& e,
                                const py::array_t<uint64_t, py::array::c_style | py::array::forcecast>& t, u64 q) {
    if (!is_prime(q) || q >= (u64{1} << kMaxPrimeBits)) throw std::invalid_argument("q must be a prime below 2^50");
    const size_t n = static_cast<size_t>(t.size());
    if (static_cast<size_t>(e.size()) != n) throw std::invalid_argument("e and t must have the same length");
    if (static_cast<size_t>(x.size()) > n) throw std::invalid_argument("x may not be longer than t");
    for (size_t i = 0; i < n; ++i) {
      if (t.data()[i] >= q) throw std::invalid_argument("t residues out of range");
    }
    std::vector<u64> out(n);
    with_encoding_input(x, scale, [&](const auto* xp, size_t count) {
      poly_encode_minus(out.data(), xp, count, scale, e.data(), t.data(), n, q);
    });
    return u64_array(out);
  }, py::arg("x"), py::arg("scale"), py::arg("e"), py::arg("t"), py::arg("q"),
     "round(x * scale) + e - t mod q over len(t) coefficients (x zero-padded): the portable reference of the "
     "coefficient encoding's last step of secret-key encryption (poly_ops.h); float32 x is widened exactly, "
     "anything else is taken as float64.");
  t.def("crt_centered_doubles_of_sum", [](const ParamsPtr& p, const py::array_t<uint64_t, py::array::c_style | py::array::forcecast>& a,
                                          const py::array_t<uint64_t, py::array::c_style | py::array::forcecast>& b,
                                          double scale) {
    const size_t L = p->num_primes();
    if (a.size() != b.size() || a.size() == 0 || static_cast<size_t>(a.size()) % L != 0) {
      throw std::invalid_argument("a and b must hold L rows of the same length");
    }
    const size_t n = static_cast<size_t>(a.size()) / L;
    for (size_t j = 0; j < L; ++j) {
      for (size_t i = 0; i < n; ++i) {
        if (a.data()[j * n + i] >= p->primes()[j] || b.data()[j * n + i] >= p->primes()[j]) {
          throw std::invalid_argument("residues out of range");
        }
      }
    }
    const CrtReconstructor crt(*p);
    std::vector<u64> r(L * n);
    py::array_t<double> out(static_cast<py::ssize_t>(n));
    crt.centered_doubles_of_sum(a.data(), b.data(), r.data(), n, scale, out.mutable_data());
    return out;
  }, py::arg("params"), py::arg("a"), py::arg("b"), py::arg("scale"),
     "centred((a + b) mod Q) * scale as doubles, a and b as L rows of residues (decryption's c0 + c1*s; ckks/crt.h).");
  t.def("simd_supported", &simd_supported, "True if this build has the AVX2 + FMA kernels and the CPU runs them.");
  t.def("simd_enabled", &simd_enabled, "True if the kernels currently take the SIMD path.");
  t.def("set_force_scalar", &set_force_scalar, py::arg("force"),
        "Forces the scalar reference kernels (True) or allows SIMD again (False); returns the previous setting.");
}

}  // namespace

PYBIND11_MODULE(_native, m) {
  m.doc() = "xcloud native CKKS kernel (see xcloud.crypto for the documented API)";
  py::register_exception<ParameterError>(m, "ParameterError", PyExc_ValueError);
  auto integrity = py::register_exception<IntegrityError>(m, "IntegrityError", PyExc_ValueError);
  py::register_exception<UnsupportedVersionError>(m, "UnsupportedVersionError", integrity.ptr());

  py::class_<CkksParams, ParamsPtr>(m, "Params")
      .def_property_readonly("n", &CkksParams::n)
      .def_property_readonly("log_n", &CkksParams::log_n)
      .def_property_readonly("primes", &CkksParams::primes)
      .def_property_readonly("prime_bits", [](const CkksParams& p) { return p.literal().prime_bits; })
      .def_property_readonly("scale_bits", [](const CkksParams& p) { return p.literal().scale_bits; })
      .def_property_readonly("scale", &CkksParams::scale)
      .def_property_readonly("max_value", &CkksParams::max_value)
      .def_property_readonly("security_bits", &CkksParams::security_bits)
      .def_property_readonly("insecure", &CkksParams::insecure)
      .def_property_readonly("log2_q", &CkksParams::log2_q)
      .def_property_readonly("aux_prime_bits", [](const CkksParams& p) { return p.literal().aux_prime_bits; })
      .def_property_readonly("encoding", [](const CkksParams& p) {
        return std::string(p.encoding() == Encoding::kCoefficients ? "coefficients" : "slots");
      })
      .def_property_readonly("aux_prime", &CkksParams::aux_prime)
      .def_property_readonly("public_scale_bits", &CkksParams::public_scale_bits)
      .def_property_readonly("public_scale", &CkksParams::public_scale)
      .def_property_readonly("log2_key_modulus", &CkksParams::log2_key_modulus)
      .def_property_readonly("fingerprint", [](const CkksParams& p) { return to_pybytes(p.fingerprint()); })
      .def_property_readonly("canonical_bytes", [](const CkksParams& p) { return to_pybytes(p.canonical_bytes()); })
      .def("describe", &CkksParams::describe);

  m.def("make_params", [](int log_n, std::vector<int> prime_bits, int scale_bits, double max_value, int security_bits, bool insecure,
                          int aux_prime_bits, int public_scale_bits, const std::string& encoding) {
    CkksParametersLiteral lit;
    if (encoding == "slots") {
      lit.encoding = Encoding::kSlots;
    } else if (encoding == "coefficients") {
      lit.encoding = Encoding::kCoefficients;
    } else {
      throw ParameterError("encoding must be 'slots' or 'coefficients', got '" + encoding + "'");
    }
    lit.aux_prime_bits = aux_prime_bits;
    lit.public_scale_bits = public_scale_bits;
    lit.log_n = log_n;
    lit.prime_bits = std::move(prime_bits);
    lit.scale_bits = scale_bits;
    lit.max_value = max_value;
    lit.security_bits = security_bits;
    return insecure ? CkksParams::create_insecure(lit) : CkksParams::create(lit);
  }, py::arg("log_n"), py::arg("prime_bits"), py::arg("scale_bits"), py::arg("max_value"), py::arg("security_bits"),
        py::arg("insecure"), py::arg("aux_prime_bits") = 0, py::arg("public_scale_bits") = 0,
        py::arg("encoding") = "slots");
  m.def("max_log_q", &max_log_q, py::arg("n"), py::arg("security_bits"));
  m.def("hardware_threads", &hardware_threads);

  py::class_<RealSampler>(m, "RealSampler",
                          "Uniform and Gaussian reals from AES-256-CTR under a secret 32-byte key (ring/real_sampler.h).")
      .def(py::init([] { return std::make_unique<RealSampler>(); }),
           "A sampler keyed from the OS CSPRNG inside the kernel (the key never reaches Python).")
      .def(py::init([](const py::bytes& key) {
             char* data = nullptr;
             Py_ssize_t len = 0;
             if (PyBytes_AsStringAndSize(key.ptr(), &data, &len) != 0) throw py::error_already_set();
             if (len != 32) throw std::invalid_argument("the key must be exactly 32 bytes");
             return std::make_unique<RealSampler>(reinterpret_cast<const uint8_t*>(data));
           }),
           py::arg("key"), "A sampler under the given 32-byte key (tests and derived streams).")
      .def("uniform", [](RealSampler& s, size_t n) {
        py::array_t<double> a(static_cast<py::ssize_t>(n));
        double* p = a.mutable_data();
        {
          py::gil_scoped_release release;
          s.uniform(p, n);
        }
        return a;
      }, py::arg("n"), "The next n uniform values in [0, 1), on the grid 2^-52.")
      .def("gaussian", [](RealSampler& s, size_t n, double std) {
        py::array_t<double> a(static_cast<py::ssize_t>(n));
        double* p = a.mutable_data();
        {
          py::gil_scoped_release release;
          s.gaussian(std, p, n);
        }
        return a;
      }, py::arg("n"), py::arg("std"), "The next n Gaussian values of mean 0 and standard deviation std.")
      .def_property_readonly("bytes_drawn", &RealSampler::bytes_drawn);

  py::class_<KeySet, KeySetPtr>(m, "KeySet")
      .def_property_readonly("params", &KeySet::params)
      .def_property_readonly("has_secret", &KeySet::has_secret)
      .def_property_readonly("key_id", [](const KeySet& k) { return to_pybytes(k.key_id()); })
      .def("public_only", &KeySet::public_only)
      .def("public_to_bytes", [](const KeySet& k) { return to_pybytes(k.public_to_bytes()); })
      .def("secret_to_bytes",
           [](const KeySet& k) {
             std::vector<uint8_t> v = k.secret_to_bytes();  // sized once (keys.cpp): the only copy to wipe
             py::bytes out(reinterpret_cast<const char*>(v.data()), v.size());
             secure_zero(v.data(), v.size());
             return out;
           })
      .def_static("from_bytes", [](const ParamsPtr& p, const py::bytes& b) {
        // Read in place: a std::string copy would leave the secret key's bytes
        // in freed memory.
        char* data = nullptr;
        Py_ssize_t len = 0;
        if (PyBytes_AsStringAndSize(b.ptr(), &data, &len) != 0) throw py::error_already_set();
        return KeySet::from_bytes(p, reinterpret_cast<const uint8_t*>(data), static_cast<size_t>(len));
      });
  m.def("keygen", [](const ParamsPtr& p) {
    py::gil_scoped_release release;
    return KeySet::generate(p);
  });
  m.def("keygen_derand", [](const ParamsPtr& p, const py::bytes& seed) { return KeySet::generate_derand(p, seed_from(seed)); });

  py::class_<CiphertextBatch, BatchPtr>(m, "CiphertextBatch", py::buffer_protocol())
      .def_property_readonly("params", [](const CiphertextBatch& c) { return c.params; })
      .def_property_readonly("key_id", [](const CiphertextBatch& c) { return to_pybytes(c.key_id); })
      .def_property_readonly("n_values", [](const CiphertextBatch& c) { return c.n_values; })
      .def_property_readonly("n_blocks", [](const CiphertextBatch& c) { return c.n_blocks; })
      .def_property_readonly("shape", [](const CiphertextBatch& c) { return py::tuple(py::cast(c.shape)); })
      .def_property_readonly("dtype", [](const CiphertextBatch& c) { return dtype_name(c.dtype); })
      .def_property_readonly("origin", [](const CiphertextBatch& c) { return origin_name(c.origin); })
      .def_property_readonly("scale", [](const CiphertextBatch& c) { return c.scale; })
      .def_property_readonly("bound", [](const CiphertextBatch& c) { return c.bound; })
      .def_property_readonly("seeded", [](const CiphertextBatch& c) { return c.seeded(); })
      .def_property_readonly("c1_form", [](const CiphertextBatch& c) { return c1_form_name(c.c1_form); })
      .def_property_readonly("seeds_per_block", [](const CiphertextBatch& c) { return c.seeds_per_block; })
      .def_property_readonly("nbytes", [](const CiphertextBatch& c) { return serialized_size(c); })
      .def("to_bytes", [](const CiphertextBatch& c) {
        // Straight into the bytes object: no second copy of a large message.
        const size_t size = serialized_size(c);
        PyObject* obj = PyBytes_FromStringAndSize(nullptr, static_cast<Py_ssize_t>(size));
        if (obj == nullptr) throw py::error_already_set();
        py::bytes out = py::reinterpret_steal<py::bytes>(obj);
        auto* dst = reinterpret_cast<uint8_t*>(PyBytes_AS_STRING(obj));
        {
          py::gil_scoped_release release;
          // A bytes object above glibc's mmap threshold (32 MiB at most) is
          // a fresh, untouched mapping: 2 MiB pages make its first-touch
          // faults 512 times fewer. Smaller ones may reuse heap memory; the
          // advice is then only a hint on pages that are ours until freed.
          advise_huge_pages(dst, size);
          serialize_into(c, dst, size);
        }
        return out;
      })
      .def_static("from_bytes", [](const ParamsPtr& p, const py::buffer& data) {
        const py::buffer_info info = data.request();
        if (info.ndim != 1 || info.itemsize != 1 || info.strides[0] != 1) {
          throw py::type_error("from_bytes needs a contiguous bytes-like object");
        }
        auto out = std::make_shared<CiphertextBatch>();
        {
          py::gil_scoped_release release;
          *out = deserialize(p, static_cast<const uint8_t*>(info.ptr), static_cast<size_t>(info.shape[0]));
        }
        return out;
      })
      // Zero-copy, read-only view of c0 as (n_blocks, L, N) uint64 residues.
      .def_buffer([](CiphertextBatch& c) {
        const size_t L = c.params->num_primes(), n = c.params->n();
        return py::buffer_info(c.c0.data(), sizeof(u64), py::format_descriptor<uint64_t>::format(), 3,
                               {static_cast<py::ssize_t>(c.n_blocks), static_cast<py::ssize_t>(L), static_cast<py::ssize_t>(n)},
                               {static_cast<py::ssize_t>(L * n * sizeof(u64)), static_cast<py::ssize_t>(n * sizeof(u64)),
                                static_cast<py::ssize_t>(sizeof(u64))},
                               /*readonly=*/true);
      });

  m.def("encrypt", &encrypt_py, py::arg("keys"), py::arg("values"), py::arg("shape"), py::arg("mode"), py::arg("threads"),
        py::arg("seed") = py::none());
  m.def("decrypt", &decrypt_py, py::arg("keys"), py::arg("ct"), py::arg("dtype"), py::arg("threads"));
  m.def("aggregate", &aggregate_py, py::arg("inputs"), py::arg("weights"), py::arg("threads"),
        py::arg("compact") = true);
  m.attr("MAX_SEEDS_PER_BLOCK") = kMaxSeedsPerBlock;
  // The weight exponent aggregate() would use; throws as aggregate() does (xcloud.dyadic_weights builds on it).
  m.def(
      "aggregate_weight_bits",
      [](const std::vector<BatchPtr>& inputs, const std::vector<double>& weights) {
        return aggregate_weight_bits(raw_inputs(inputs), weights);
      },
      py::arg("inputs"), py::arg("weights"));

  py::module_ t = m.def_submodule("testing");
  bind_testing(t);
}
