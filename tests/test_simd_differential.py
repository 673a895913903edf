"""Differential tests: the AVX2 + FMA kernels against the scalar references.

Every SIMD kernel must give the scalar reference's output bit for bit (HEXL's
practice): the NTT on its own, the ChaCha20 keystream and the samplers, and
whole derandomised ciphertexts, aggregates and decryptions, both in process
(``_native.testing.set_force_scalar``) and across processes (the
``XCLOUD_FORCE_SCALAR=1`` environment variable, read once at start-up).

On a CPU or build without the SIMD kernels both paths are the scalar one; the
tests that compare them are then skipped, with a message.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import xcloud
from xcloud import _native

T = _native.testing

needs_simd = pytest.mark.skipif(
    not T.simd_supported(), reason="this build or CPU has no AVX2 + FMA kernels: nothing to compare against"
)


@pytest.fixture(autouse=True)
def _restore_dispatch() -> Iterator[None]:
    before = T.set_force_scalar(False)  # read the current setting...
    T.set_force_scalar(before)  # ...and put it back
    yield
    T.set_force_scalar(before)


def both_paths(fn: Callable[[], Any]) -> tuple[Any, Any]:
    """(scalar result, SIMD result) of fn()."""
    before = T.set_force_scalar(True)
    try:
        scalar = fn()
        T.set_force_scalar(False)
        simd = fn()
    finally:
        T.set_force_scalar(before)
    return scalar, simd


def prime(bits: int, n: int, which: int = 0) -> int | None:
    """The which-th largest NTT prime of `bits` bits for degree n, or None."""
    try:
        return int(T.generate_ntt_primes(bits, 2 * n, which + 1)[which])
    except ValueError:
        return None


# -- SHA-256 ------------------------------------------------------------------


@needs_simd
def test_sha256_paths_agree_with_hashlib() -> None:
    # Prepare: every length up to 260 bytes (one to five blocks with every
    # padding case) and a few long messages.
    data = bytes((i * 131 + (i >> 8)) % 256 for i in range(1 << 20))
    messages = [data[:n] for n in range(261)] + [data[: (1 << 20) - k] for k in (0, 1, 55, 64)]
    # Execute
    scalar, simd = both_paths(lambda: ([T.sha256(m) for m in messages], T.sha256_path()))
    # Assert: the CPU's SHA extensions are taken where it has them, and both
    # paths give hashlib's digests.
    expected = [hashlib.sha256(m).digest() for m in messages]
    assert scalar == (expected, "portable")
    assert simd[0] == expected
    assert simd[1] == ("sha-ni" if "sha_ni" in _cpu_flags() else "portable")


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


# -- NTT ----------------------------------------------------------------------

DEGREES = [4, 8, 16, 32, 64, 128, 1024, 4096, 8192, 16384]
BITS = [20, 24, 30, 36, 40, 45, 48, 49, 50]


def edge_inputs(n: int, q: int, rng: np.random.Generator) -> list[np.ndarray]:
    zeros = np.zeros(n, dtype=np.uint64)
    top = np.full(n, q - 1, dtype=np.uint64)
    alternating = np.where(np.arange(n) % 2 == 0, 0, q - 1).astype(np.uint64)
    impulse = zeros.copy()
    impulse[n // 2 + 1 if n > 2 else 0] = q - 1
    small = rng.integers(0, 3, n, dtype=np.uint64)
    near_top = (q - 1 - rng.integers(0, 3, n, dtype=np.uint64)).astype(np.uint64)
    return [zeros, top, alternating, impulse, small, near_top, rng.integers(0, q, n, dtype=np.uint64)]


@needs_simd
@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("n", DEGREES)
def test_ntt_simd_matches_scalar(n: int, bits: int) -> None:
    # Prepare: the largest prime of this size (the tightest case for the
    # double-precision bounds), and the smallest one found below it.
    rng = np.random.default_rng(n * 100 + bits)
    for which in (0, 3):
        q = prime(bits, n, which)
        if q is None:
            continue
        for a in edge_inputs(n, q, rng):
            # Execute
            fwd_ref = T.ntt_forward(q, n, a, scalar=True)
            fwd = T.ntt_forward(q, n, a)
            inv_ref = T.ntt_inverse(q, n, a, scalar=True)
            inv = T.ntt_inverse(q, n, a)
            # Assert: identical, canonical, and a round trip
            assert np.array_equal(fwd, fwd_ref), (n, q)
            assert np.array_equal(inv, inv_ref), (n, q)
            assert int(fwd.max()) < q and int(inv.max()) < q
            assert np.array_equal(T.ntt_inverse(q, n, fwd), a)


@needs_simd
def test_ntt_largest_allowed_prime() -> None:
    # The largest prime below 2^50 that is 1 mod 2N, the edge of the SIMD
    # kernel's range, with every input at q - 1 and at random.
    n = 8192
    q = prime(50, n)
    assert q is not None and q < 2**50
    rng = np.random.default_rng(1)
    for a in (np.full(n, q - 1, dtype=np.uint64), rng.integers(q - 2**20, q, n, dtype=np.uint64)):
        assert np.array_equal(T.ntt_forward(q, n, a), T.ntt_forward(q, n, a, scalar=True))
        assert np.array_equal(T.ntt_inverse(q, n, a), T.ntt_inverse(q, n, a, scalar=True))


@needs_simd
@settings(max_examples=60, deadline=None)
@given(
    log_n=st.integers(min_value=2, max_value=12),
    bits=st.integers(min_value=20, max_value=50),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_ntt_simd_matches_scalar_property(log_n: int, bits: int, seed: int) -> None:
    n = 1 << log_n
    q = prime(bits, n)
    if q is None:
        return
    a = np.random.default_rng(seed).integers(0, q, n, dtype=np.uint64)
    assert np.array_equal(T.ntt_forward(q, n, a), T.ntt_forward(q, n, a, scalar=True))
    assert np.array_equal(T.ntt_inverse(q, n, a), T.ntt_inverse(q, n, a, scalar=True))


# -- randomness -----------------------------------------------------------------

KEY = bytes(range(32))
NONCE = bytes(range(100, 112))


@needs_simd
@pytest.mark.parametrize("n", [0, 1, 8, 63, 64, 65, 511, 512, 513, 4096, 100_003])
@pytest.mark.parametrize("counter", [0, 1, 7, 2**31 + 3])
def test_chacha20_simd_matches_scalar(n: int, counter: int) -> None:
    scalar, simd = both_paths(lambda: T.chacha20_stream(KEY, NONCE, counter, n))
    assert scalar == simd
    assert len(simd) == n


@needs_simd
@pytest.mark.parametrize("blocks_left", [1, 7, 8, 9, 16, 17])
def test_chacha20_simd_at_counter_end(blocks_left: int) -> None:
    # The last blocks before the 32-bit counter would wrap: generated eight
    # at a time where possible, and never past the end.
    counter = 2**32 - blocks_left
    scalar, simd = both_paths(lambda: T.chacha20_stream(KEY, NONCE, counter, 64 * blocks_left))
    assert scalar == simd
    assert simd[-64:] == T.chacha20_block(KEY, 2**32 - 1, NONCE)
    with pytest.raises((ValueError, OverflowError, RuntimeError)):
        T.chacha20_stream(KEY, NONCE, counter, 64 * blocks_left + 1)


@needs_simd
@pytest.mark.parametrize("n", [1, 3, 4, 255, 256, 257, 4096, 10_007])
def test_samplers_simd_match_scalar(n: int) -> None:
    seed = bytes(32 * [n % 251])
    for q in (3, 12289, 2**36 - 2**20 + 1, 2**49 + 1, 2**50 - 27, 2**63 + 29):
        s, v = both_paths(lambda q=q: T.sample_uniform_mod(seed, q, n))
        assert np.array_equal(s, v), q
    # AES-256-CTR uniform: the same keystream on both paths, the rejection loop four tries at a
    # time with AVX2 (q < 2^62; 2^49 + 1 and 2^61 + 1 reject about half the tries, 2^62 + 135 and
    # 2^63 + 29 take the one-at-a-time loop on both paths).
    for q in (
        3,
        257,
        12289,
        2**36 - 2**20 + 1,
        2**47 - 115,
        2**49 + 1,
        2**50 - 27,
        2**61 + 1,
        2**62 - 57,
        2**62 + 135,
        2**63 + 29,
    ):
        s, v = both_paths(lambda q=q: T.sample_uniform_mod_ctr(seed, q, n))
        assert np.array_equal(s, v), q
        assert int(s.max()) < q
    s, v = both_paths(lambda: T.sample_cbd(seed, n))
    assert np.array_equal(s, v)
    s, v = both_paths(lambda: T.sample_ternary(seed, n))
    assert np.array_equal(s, v)
    s, v = both_paths(lambda: T.sample_ternary_packed(seed, n))
    assert np.array_equal(s, v)


@pytest.mark.parametrize("preset", ["default", "compact"])
def test_decryption_sum_and_crt_is_exact_on_both_paths(preset: str) -> None:
    # Prepare: residue rows a, b (decryption's c0 and c1*s) with random values and the edges of
    # the reduction and the centring: sums 0, q - 1, q, q +- 1, Q/2 and Q/2 + 1 (mod q_j), 2q - 2.
    ctx = xcloud.CkksContext() if preset == "default" else xcloud.CkksContext.preset("compact")
    params, primes = ctx._params, [int(q) for q in ctx.primes]
    big_q = 1
    for q in primes:
        big_q *= q
    half = big_q // 2
    rng = np.random.default_rng(11)
    n = 4096
    targets = [0, 1, big_q - 1, half, half + 1, half - 1, big_q - 2] + [int(v) for v in rng.integers(0, 2**62, n - 7)]
    a = np.zeros((len(primes), n), dtype=np.uint64)
    b = np.zeros((len(primes), n), dtype=np.uint64)
    for j, q in enumerate(primes):
        lo = [int(v) for v in rng.integers(0, q, n)]
        lo[1] = lo[6] = q - 1  # a + b = q + 1 and (for one prime) 2q - 2: the reduction's edge and top
        for i, t in enumerate(targets):
            tq = (t % big_q) % q
            a[j, i] = lo[i]
            b[j, i] = (tq - lo[i]) % q
    scale = 2.0**-32
    want = []
    for t in targets:
        x = t % big_q
        want.append(float(x - big_q if x > half else x) * scale)
    # Execute
    s, v = both_paths(lambda: T.crt_centered_doubles_of_sum(params, a.ravel(), b.ravel(), scale))
    # Assert: the double nearest to the centred integer, times the scale, on both paths.
    assert np.array_equal(s, v)
    assert s.tolist() == want


@needs_simd
@pytest.mark.parametrize("log_n", [4, 5, 10, 12, 13, 14])
def test_encoder_simd_matches_scalar(log_n: int) -> None:
    """The AVX2 encoder FFT rounds exactly as the scalar one: the same doubles, full and partial blocks."""
    params = _native.make_params(log_n, [36], 20, 1.0, 128, True)
    n = params.n
    rng = np.random.default_rng(log_n)
    for count in sorted({1, n // 2 - 1, n // 2, n // 2 + 1, n - 1, n}):
        x = rng.uniform(-1, 1, count)
        s, v = both_paths(lambda x=x: T.encode(params, x))
        assert np.array_equal(s.view(np.uint64), v.view(np.uint64)), count
    m = rng.standard_normal(n) * 1e6
    s, v = both_paths(lambda: T.decode(params, m))
    assert np.array_equal(s.view(np.uint64), v.view(np.uint64))


@needs_simd
@pytest.mark.parametrize("n", [1, 17, 4096, 10_007])
def test_uniform_ctr_sampler_simd_matches_scalar(n: int) -> None:
    seed = bytes(32 * [n % 251])
    for q in (3, 2**36 - 2**20 + 1, 2**47 - 115, 2**50 - 27, 2**63 + 29):
        s, v = both_paths(lambda q=q: T.sample_uniform_mod_ctr(seed, q, n))
        assert np.array_equal(s, v), q


def encode_minus_reference(x: np.ndarray, scale: float, e: np.ndarray, t: np.ndarray, q: int) -> np.ndarray:
    """round(x * scale) + e - t mod q in Python integers (x zero-padded to len(t))."""
    prod = x.astype(np.float64) * scale  # one IEEE product, as the kernel's
    m = [int(v) for v in np.rint(prod)] + [0] * (len(t) - len(x))  # rint: ties to even, as nearbyint
    return np.array([(mi + int(ei) - int(ti)) % q for mi, ei, ti in zip(m, e, t, strict=True)], dtype=np.uint64)


def fused_encode_minus(x: np.ndarray, scale: float, e: np.ndarray, q: int) -> np.ndarray:
    """round(x * scale) + e mod q through the SIMD path of encryption, the inverse NTT's last stage (a = 0)."""
    n = len(e)
    zeros = np.zeros(n, dtype=np.uint64)
    return T.ntt_inverse_mul_encode_minus(q, n, zeros, np.ones(n, dtype=np.uint64), x, scale, e)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bits", [20, 36, 47, 50])
def test_encode_minus_matches_reference_on_both_paths(dtype: type, bits: int) -> None:
    q = prime(bits, 4096)
    assert q is not None
    rng = np.random.default_rng(bits)
    for n, count in [(4, 0), (4, 3), (8, 8), (13, 13), (13, 6), (4096, 4093), (4096, 4096), (4096, 1)]:
        x = rng.uniform(-1, 1, count).astype(dtype)
        e = rng.integers(-(2**31) + 1, 2**31 - 1, n).astype(np.int32)
        e[: min(n, 4)] = [2**31 - 1, -(2**31) + 1, 0, -1][: min(n, 4)]
        t = rng.integers(0, q, n, dtype=np.uint64)
        t[0] = q - 1
        for scale in (2.0**20, 2.0**32, 2.0**49 + 1.0, 2.0**51 - 2.0**31, 2.0**51, 2.0**52, 2.0**61):
            want = encode_minus_reference(x, scale, e, t, q)
            assert np.array_equal(T.poly_encode_minus(x, scale, e, t, q), want), (n, count, scale)
            if n >= 8 and n & (n - 1) == 0:  # the transform's sizes
                want0 = encode_minus_reference(x, scale, e, np.zeros(n, dtype=np.uint64), q)
                assert np.array_equal(fused_encode_minus(x, scale, e, q), want0), (n, count, scale)


def test_encode_minus_rounds_ties_to_even_and_mixes_lanes() -> None:
    q = prime(47, 4096)
    assert q is not None
    # x * scale exactly on .5: ties go to the even integer on both paths;
    # one lane above 2^51 in a vector of four takes the slow lane path.
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, 3.0, 2.0**41, 0.25], dtype=np.float64)
    e = np.zeros(8, dtype=np.int32)
    t = np.zeros(8, dtype=np.uint64)
    for scale in (1.0, 2.0**11):
        want = encode_minus_reference(x, scale, e, t, q)
        assert np.array_equal(T.poly_encode_minus(x, scale, e, t, q), want)
        assert np.array_equal(fused_encode_minus(x, scale, e, q), want)
    assert list(fused_encode_minus(x[:5], 1.0, e, q)[:5]) == [0, 2, 2, 0, q - 2]


def test_encode_minus_refuses_bad_arguments() -> None:
    q = prime(47, 4096)
    assert q is not None
    e = np.zeros(4, dtype=np.int32)
    t = np.zeros(4, dtype=np.uint64)
    with pytest.raises(ValueError, match="below 2"):
        T.poly_encode_minus(np.array([2.0**62]), 1.0, e, t, q)
    with pytest.raises(ValueError, match="longer"):
        T.poly_encode_minus(np.zeros(5), 1.0, e, t, q)
    with pytest.raises(ValueError, match="out of range"):
        T.poly_encode_minus(np.zeros(4), 1.0, e, np.full(4, q, dtype=np.uint64), q)


# -- whole ciphertexts ------------------------------------------------------------

CONTEXTS = [
    {"log_n": 12, "prime_bits": (36, 36)},  # the default set, secure
    {"log_n": 10, "prime_bits": (36, 36)},
    {"log_n": 11, "prime_bits": (50,)},
    {"log_n": 12, "prime_bits": (20, 50)},
    {"log_n": 13, "prime_bits": (50, 50)},
    {"log_n": 13, "prime_bits": (40, 40, 40)},
    {"log_n": 14, "prime_bits": (30, 30, 30, 30)},
    # The coefficient encoding: with one prime c0 comes from the transform's
    # last stage (inverse_mul_encode_minus); with two the plaintext exceeds one
    # prime, and at scale 2^52 the SIMD paths' fast-path bound (about 2^51).
    {"log_n": 12, "prime_bits": (47,), "encoding": "coefficients", "scale_bits": 32},
    {"log_n": 12, "prime_bits": (40, 40), "encoding": "coefficients", "scale_bits": 52},
]


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run_everything(spec: dict[str, Any], threads: int) -> dict[str, str]:
    """Digests of derandomised keys, ciphertexts, an aggregate and decryptions."""
    ctx = xcloud.CkksContext.insecure(
        log_n=spec["log_n"],
        prime_bits=spec["prime_bits"],
        scale_bits=spec.get("scale_bits", 38),
        encoding=spec.get("encoding", "slots"),
    )
    keys = ctx.keygen_derand(bytes(32 * [3]))
    rng = np.random.default_rng(spec["log_n"])
    x = rng.uniform(-1, 1, 3 * ctx.n + 5).astype(np.float32)
    x[:4] = [1.0, -1.0, 0.0, np.float32(1e-30)]
    out = {"public_key": digest(keys.public_bytes())}
    cts = []
    for mode in ("secret", "public"):
        ct = xcloud.encrypt_blocks_derand(keys, x, seed=bytes(32 * [9]), threads=threads, mode=mode)
        cts.append(ct)
        out[f"{mode}_ct"] = digest(ct.to_bytes())
        for dtype in ("float32", "float64"):
            y = np.asarray(xcloud.decrypt_blocks(keys, ct, threads=threads, dtype=dtype))
            out[f"{mode}_dec_{dtype}"] = digest(y.tobytes())
    agg = xcloud.aggregate(cts, weights=[0.25, 0.75], threads=threads)
    out["aggregate"] = digest(agg.to_bytes())
    out["aggregate_dec"] = digest(np.asarray(xcloud.decrypt_blocks(keys, agg, dtype="float64")).tobytes())
    # Two secret-key inputs: the compact (seeded-sum) and the full aggregate decrypt alike.
    second = xcloud.encrypt_blocks_derand(keys, x[::-1], seed=bytes(32 * [10]), threads=threads)
    for compact in (True, False):
        agg = xcloud.aggregate([cts[0], second], weights=[0.25, -0.75], threads=threads, compact=compact)
        assert agg.c1_form == ("seeded-sum" if compact else "full")
        out[f"seeded_aggregate_{agg.c1_form}"] = digest(agg.to_bytes())
        y = np.asarray(xcloud.decrypt_blocks(keys, agg, threads=threads, dtype="float64"))
        out[f"seeded_aggregate_dec_{agg.c1_form}"] = digest(y.tobytes())
    assert out["seeded_aggregate_dec_seeded-sum"] == out["seeded_aggregate_dec_full"]
    return out


@needs_simd
@pytest.mark.parametrize(
    "spec",
    CONTEXTS,
    ids=lambda s: (
        f"N{2 ** s['log_n']}-{'-'.join(map(str, s['prime_bits']))}{'-' + s['encoding'] if 'encoding' in s else ''}"
    ),
)
def test_ciphertexts_simd_match_scalar(spec: dict[str, Any]) -> None:
    scalar, simd = both_paths(lambda: run_everything(spec, threads=2))
    assert scalar == simd


@needs_simd
@pytest.mark.parametrize("prime_bits", [(36, 36), (50, 50)])
def test_aggregate_of_many_inputs_simd_matches_scalar(prime_bits: tuple[int, ...]) -> None:
    # Prepare: 19 inputs (more than one pass of the lazy weighted sum), secret-
    # and public-key mixed, weights of both signs.
    ctx = xcloud.CkksContext.insecure(log_n=10, prime_bits=prime_bits)
    keys = ctx.keygen_derand(bytes(32 * [4]))
    x = np.random.default_rng(4).uniform(-1, 1, 2 * ctx.n + 1)
    cts = [
        xcloud.encrypt_blocks_derand(keys, x, bytes([i]) * 32, mode="secret" if i % 3 else "public") for i in range(19)
    ]
    weights = [((-1) ** i) * (i + 1) / 32 for i in range(19)]
    # Execute
    scalar, simd = both_paths(lambda: xcloud.aggregate(cts, weights=weights, threads=2).to_bytes())
    # Assert
    assert scalar == simd


@needs_simd
def test_compact_aggregate_of_many_inputs_simd_matches_scalar() -> None:
    """19 secret-key inputs: the seeded-sum weighted sum at decryption takes more than two passes."""
    # Prepare
    ctx = xcloud.CkksContext.insecure(log_n=10, prime_bits=(50, 50))
    keys = ctx.keygen_derand(bytes(32 * [5]))
    x = np.random.default_rng(5).uniform(-1, 1, 2 * ctx.n + 1)
    cts = [xcloud.encrypt_blocks_derand(keys, x, bytes([i]) * 32) for i in range(19)]
    weights = [((-1) ** i) * (i + 1) / 200 for i in range(19)]

    def run() -> tuple[bytes, bytes, bytes]:
        compact = xcloud.aggregate(cts, weights=weights, threads=2)
        full = xcloud.aggregate(cts, weights=weights, threads=2, compact=False)
        assert compact.c1_form == "seeded-sum"
        dec = np.asarray(xcloud.decrypt_blocks(keys, compact, threads=2)).tobytes()
        assert dec == np.asarray(xcloud.decrypt_blocks(keys, full, threads=2)).tobytes()
        return compact.to_bytes(), full.to_bytes(), dec

    # Execute
    scalar, simd = both_paths(run)
    # Assert
    assert scalar == simd


@needs_simd
@pytest.mark.parametrize("length", [2, 3, 4096 + 1, 4096 + 2, 4096 + 3, 4096 + 7, 2 * 4096])
def test_compact_decryption_of_partial_blocks_simd_matches_scalar(length: int) -> None:
    """The coefficient encoding decrypts straight into the output, 4 values per AVX2 step, the rest on the
    portable path: every tail length, in both dtypes, on both paths, and float32 = float64 rounded."""
    # Prepare
    keys = xcloud.CkksContext.preset("compact").keygen_derand(bytes(32 * [6]))
    x = np.random.default_rng(length).uniform(-1, 1, length).astype(np.float32)
    ct = xcloud.encrypt_blocks_derand(keys, x, bytes(32 * [7]), threads=1)

    def run() -> tuple[bytes, bytes]:
        y32 = np.asarray(xcloud.decrypt_blocks(keys, ct, threads=2, dtype="float32"))
        y64 = np.asarray(xcloud.decrypt_blocks(keys, ct, threads=2, dtype="float64"))
        assert y32.shape == y64.shape == (length,)
        assert np.array_equal(y32, y64.astype(np.float32))
        return y32.tobytes(), y64.tobytes()

    # Execute
    scalar, simd = both_paths(run)
    # Assert
    assert scalar == simd


@needs_simd
def test_threads_and_paths_agree() -> None:
    spec = CONTEXTS[0]
    scalar_1, simd_2 = both_paths(lambda: (run_everything(spec, 1), run_everything(spec, 2)))
    assert scalar_1[0] == simd_2[1]


_CHILD = """
import hashlib, json, sys
import numpy as np
import xcloud
from xcloud import _native
ctx = xcloud.CkksContext()
keys = ctx.keygen_derand(bytes(range(32)))
x = np.linspace(-1.0, 1.0, 9000).astype(np.float32)
out = {"simd_enabled": _native.testing.simd_enabled()}
for mode in ("secret", "public"):
    ct = xcloud.encrypt_blocks_derand(keys, x, seed=bytes(32 * [7]), threads=2, mode=mode)
    out[mode] = hashlib.sha256(ct.to_bytes()).hexdigest()
    out[mode + "_dec"] = hashlib.sha256(np.asarray(xcloud.decrypt_blocks(keys, ct)).tobytes()).hexdigest()
second = xcloud.encrypt_blocks_derand(keys, x[::-1], seed=bytes(32 * [8]), threads=2)
first = xcloud.encrypt_blocks_derand(keys, x, seed=bytes(32 * [7]), threads=2)
compact = xcloud.aggregate([first, second], [0.25, -0.75], threads=2)
out["compact"] = hashlib.sha256(compact.to_bytes()).hexdigest()
out["compact_dec"] = hashlib.sha256(np.asarray(xcloud.decrypt_blocks(keys, compact)).tobytes()).hexdigest()
json.dump(out, sys.stdout)
"""


def run_child(force_scalar: str | None) -> dict[str, Any]:
    env = dict(os.environ)
    env.pop("XCLOUD_FORCE_SCALAR", None)
    if force_scalar is not None:
        env["XCLOUD_FORCE_SCALAR"] = force_scalar
    done = subprocess.run(
        [sys.executable, "-c", _CHILD], check=False, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_force_scalar_environment_variable() -> None:
    # Prepare / Execute: the same derandomised encryption in three processes.
    default = run_child(None)
    forced = run_child("1")
    zero = run_child("0")
    # Assert: the variable selects the path, and the bytes do not depend on it.
    assert forced["simd_enabled"] is False
    assert default["simd_enabled"] is T.simd_supported()
    assert zero["simd_enabled"] is T.simd_supported()
    for key in ("secret", "public", "secret_dec", "public_dec", "compact", "compact_dec"):
        assert default[key] == forced[key] == zero[key], key


def test_set_force_scalar_round_trip() -> None:
    before = T.set_force_scalar(True)
    assert T.simd_enabled() is False
    assert T.set_force_scalar(False) is True
    assert T.simd_enabled() is T.simd_supported()
    T.set_force_scalar(before)
