"""Public-key mode of the compact preset: encryption modulo Q*P, then a modulus drop.

The compact preset (here with the slot encoding it had until 2026-12-02; the
public-key mechanism is the same with the coefficient encoding) has one 47-bit wire prime q and a 30-bit
auxiliary prime P that only public-key encryption uses: the public key lives
modulo q*P (log2 77 <= 107, the 128-bit bound at N = 4096), an encryption of
zero is made there and divided by P with rounding, and Delta*m (Delta =
2^34 for public-key encryptions, 2^32 for secret-key ones) is added modulo q.
The ciphertext is an ordinary one-prime ciphertext with a full c1.

Noise, worked out: after the drop the noise is r0 + r1*s with r0, r1 uniform in
[-1/2, 1/2] per coefficient and s ternary: variance N*(2/3)/12 = N/18, std 15.1
at N = 4096 (the encryption noise u*e + e1*s + e0, std ~240, is divided by
2^30). In a slot that is a product r1(z)*s(z), heavy-tailed: over 10^6 values
the largest error is about 2^-19.2 at Delta = 2^32, hence Delta = 2^34 for
public-key encryptions (about 2^-21.2 measured).

Headroom: a weighted sum at k fractional weight bits needs
log2(Delta) + k + 0.5 + log2(sum |w| * bound) + 2 < log2 q = 47, so k <= 10 for
public-key inputs (k <= 12 for secret-key ones). The noise of the aggregate
is sum_k W_k * noise_k / (Delta 2^k): for 1,000 inputs with weights summing
to 1 it is below the fresh noise; the coefficient magnitude stays below
Delta * 2^k * sqrt(2) * 4 < q/2 by the check above.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import xcloud
from xcloud import _native
from xcloud.crypto.context import PRESETS

T = _native.testing
FRESH_BOUND = 2.0**-20
AGGREGATE_BOUND = 2.0**-16
KEY_SEED = bytes(range(32))
ENC_SEED = bytes(32 * [7])

# Known answers (keygen_derand(KEY_SEED); encrypt_blocks_derand(..., seed=ENC_SEED) of
# np.linspace(-1, 1, 5000), two blocks). If one changes, a format, the parameter
# canonicalisation or the randomness derivation changed: see test_known_answers.py.
COMPACT_FINGERPRINT = "93716823a28210addcce8776f90337b1acbf0b8f964b37fc893dbd3e2f556218"
# CkksContext(prime_bits=(47,), scale_bits=32): the compact preset before it had an auxiliary prime
# (parameter format version 1), whose keys and messages the new preset refuses.
COMPACT_V1_FINGERPRINT = "495aa38acb18f28d89ac876b913079906415225b85652f7f1038d8e5ca1cacc8"
COMPACT_KEY_ID = "4af533d73aa4be31a42e04fdad07971c"
COMPACT_PUBLIC_KEY_SHA256 = "585c864f6eb3598893e7913d8b43fb538c926650471bc9c2e8a09e3def73c19d"
COMPACT_SECRET_KEY_SHA256 = "a4399b31b5df135d04c8c95eee8a59bf0d8aa287176532723baf948298ec9247"
# Since 2026-12-02 the encryption noise comes from AES-256-CTR (see test_known_answers.py; was 7ea1ac4c...,
# and 0ccb4a5e... for the public-key ciphertext below).
COMPACT_SECRET_MODE_CT_SHA256 = "e52bc225d38913a11716d344c62388fd7f1f4ec3f97ae7bf6fb2bfb975017cdc"
# Since 2026-12-02 the ephemeral u takes one keystream byte per coefficient (was bf33470a...).
COMPACT_PUBLIC_MODE_CT_SHA256 = "a800aebb873e62bece6f44e8018c1de581cf6f9bd358fa1358062509bba74163"
# Key file version 2: header 88 + b modulo q (47 bits) and modulo P (30 bits) + checksum.
COMPACT_PUBLIC_KEY_SIZE = 4 + 2 + 1 + 1 + 32 + 16 + 32 + 4096 * 47 // 8 + 4096 * 30 // 8 + 32  # 39,544
COMPACT_SECRET_KEY_SIZE = COMPACT_PUBLIC_KEY_SIZE + 4096 * 2 // 8
# Wire version 2, unchanged layout: header 100, per block c0 and c1 at 47 bits, checksum.
COMPACT_PUBLIC_MODE_CT_SIZE = 100 + 2 * (2 * 4096 * 47 // 8) + 32  # 96,388


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def max_abs_error(y: np.ndarray, x: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(y, dtype=np.float64) - np.asarray(x, dtype=np.float64))))


# The compact preset as it was until 2026-12-02, with the slot encoding: this file's known answers
# and noise analysis are for it. The preset itself now uses the coefficient encoding, with the same
# primes, scales and public-key mechanism (tests/test_coefficient_encoding.py pins it).
COMPACT_SLOTS = {**PRESETS["compact"], "encoding": "slots"}


@pytest.fixture(scope="module")
def ctx() -> xcloud.CkksContext:
    return xcloud.CkksContext(**COMPACT_SLOTS)


@pytest.fixture(scope="module")
def keys(ctx) -> xcloud.KeySet:
    return ctx.keygen()


@pytest.fixture(scope="module")
def kat(ctx) -> dict[str, object]:
    keys = ctx.keygen_derand(KEY_SEED)
    x = np.linspace(-1.0, 1.0, 5000)
    return {
        "keys": keys,
        "x": x,
        "secret_ct": xcloud.encrypt_blocks_derand(keys, x, seed=ENC_SEED),
        "public_ct": xcloud.encrypt_blocks_derand(keys.public_only(), x, seed=ENC_SEED, mode="public"),
    }


# -- parameters ----------------------------------------------------------------


def test_compact_preset_has_an_auxiliary_prime_within_the_security_bound(ctx):
    p, (q,) = ctx.aux_prime, ctx.primes
    assert p.bit_length() == 30 and q.bit_length() == 47 and p != q
    assert (p - 1) % (2 * ctx.n) == 0 and T.is_prime(p)
    assert ctx.log2_key_modulus == pytest.approx(math.log2(q) + math.log2(p))
    assert math.ceil(ctx.log2_key_modulus) <= _native.max_log_q(4096, 128) == 107
    assert ctx.scale == 2.0**32 and ctx.public_scale == 2.0**34
    assert xcloud.CkksContext().aux_prime == 0 and xcloud.CkksContext().public_scale == 2.0**38


def test_fingerprint_covers_the_auxiliary_prime(ctx):
    data = ctx.canonical_bytes()
    assert data[4:6] == (2).to_bytes(2, "little")  # canonical format version 2 with an auxiliary prime
    assert data[-10:-2] == ctx.aux_prime.to_bytes(8, "little") and data[-2:] == (34).to_bytes(2, "little")
    assert ctx.fingerprint.hex() == COMPACT_FINGERPRINT == sha256_hex(data)
    twin = xcloud.CkksContext(prime_bits=(47,), scale_bits=32)  # the same without P: version 1, as before
    assert twin.canonical_bytes()[4:6] == (1).to_bytes(2, "little")
    assert twin.fingerprint.hex() == COMPACT_V1_FINGERPRINT
    other_p = xcloud.CkksContext(prime_bits=(47,), scale_bits=32, aux_prime_bits=31, public_scale_bits=34)
    other_scale = xcloud.CkksContext(prime_bits=(47,), scale_bits=32, aux_prime_bits=30, public_scale_bits=33)
    assert len({ctx.fingerprint, twin.fingerprint, other_p.fingerprint, other_scale.fingerprint}) == 4


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"aux_prime_bits": 19}, "aux_prime_bits must be 0"),
        ({"aux_prime_bits": 51}, "aux_prime_bits must be 0"),
        ({"public_scale_bits": 34}, "needs an auxiliary prime"),
        ({"aux_prime_bits": 30, "public_scale_bits": 31}, r"in \[scale_bits, 80\]"),
        ({"aux_prime_bits": 30, "public_scale_bits": 45}, "needs log2 Q >"),
        ({"prime_bits": (40, 40), "aux_prime_bits": 30}, r"log2 Q\*P \(the public key's modulus\) = 110 exceeds 107"),
    ],
)
def test_bad_auxiliary_parameters_are_refused(kwargs, match):
    base = {"prime_bits": (47,), "scale_bits": 32}
    with pytest.raises(xcloud.ParameterError, match=match):
        xcloud.CkksContext(**{**base, **kwargs})


# -- fresh ciphertexts -----------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fresh_precision_and_wire_size(keys, dtype):
    x = np.random.default_rng(1).uniform(-1, 1, 200_000).astype(dtype)
    ct = xcloud.encrypt_blocks(keys.public_only(), x)
    assert ct.origin == "public-key" and ct.c1_form == "full"
    err = max_abs_error(xcloud.decrypt_blocks(keys, ct), x)
    assert err <= FRESH_BOUND, f"max error 2^{math.log2(err):.2f}"
    # Two polynomials of one 47-bit prime: 2 * 47 / 32 = 2.94x the float32 bytes (plus headers).
    blocks = -(-x.size // 4096)
    assert ct.nbytes == 100 + blocks * 2 * 4096 * 47 // 8 + 32
    assert ct.nbytes <= 3.0 * 4 * x.size


@pytest.mark.parametrize("case", ["ones", "minus_ones", "alternating", "spike", "zeros"])
def test_fresh_precision_on_adversarial_inputs(keys, case):
    n = 3 * 4096 + 17
    x = {
        "ones": np.ones(n),
        "minus_ones": -np.ones(n),
        "alternating": np.where(np.arange(n) % 2 == 0, 1.0, -1.0),
        "spike": np.eye(1, n, n // 3)[0],
        "zeros": np.zeros(n),
    }[case]
    assert max_abs_error(xcloud.decrypt_blocks(keys, xcloud.encrypt_blocks(keys.public_only(), x)), x) <= FRESH_BOUND


def test_the_drop_removes_the_encryption_noise(keys):
    """The noise std is the rounding's, sqrt(N/2 * N/18) / Delta per value (+-10%), not the direct encryption's."""
    y = xcloud.decrypt_blocks(keys, xcloud.encrypt_blocks(keys.public_only(), np.zeros(40 * 4096)))
    predicted = math.sqrt(2048 * (4096 / 18 + 2 / 12)) / 2.0**34
    assert y.std() == pytest.approx(predicted, rel=0.1)


def test_public_key_inputs_aggregate_and_decrypt_with_the_one_prime_paths(keys):
    rng = np.random.default_rng(2)
    xs = rng.uniform(-1, 1, (3, 9000))
    cts = [xcloud.encrypt_blocks(keys.public_only(), v) for v in xs]
    total = xcloud.aggregate(cts, [0.25, 0.25, 0.5])
    assert total.c1_form == "full" and total.origin == "aggregate"
    back = xcloud.CiphertextBlocks.from_bytes(keys.ctx, total.to_bytes())
    want = 0.25 * xs[0] + 0.25 * xs[1] + 0.5 * xs[2]
    assert max_abs_error(xcloud.decrypt_blocks(keys, back), want) <= FRESH_BOUND


def test_secret_and_public_inputs_do_not_mix_at_different_scales(keys):
    x = np.zeros(100)
    with pytest.raises(ValueError, match="different scales"):
        xcloud.aggregate([xcloud.encrypt_blocks(keys, x), xcloud.encrypt_blocks(keys.public_only(), x)])


# -- 1,000 inputs: headroom and precision ------------------------------------------


@pytest.fixture(scope="module")
def thousand(keys):
    rng = np.random.default_rng(3)
    xs = rng.uniform(-1, 1, (1000, 4096))
    xs[:500] = 1.0  # half of them at the bound: the worst case for the headroom
    public = keys.public_only()
    return xs, [xcloud.encrypt_blocks(public, v) for v in xs]


@pytest.mark.parametrize("concentration", [1.0, 0.01, 100.0])
def test_weighted_aggregate_of_1000_public_key_inputs(keys, thousand, concentration):
    xs, cts = thousand
    w = xcloud.dyadic_weights(cts, list(np.random.default_rng(4).dirichlet(np.full(1000, concentration))))
    k = T.aggregate_weight_bits([c._native for c in cts], w)
    assert k == 10  # 34 + 10 + 0.5 + log2(1) + 2 < 47: the headroom left at the public-key scale
    total = xcloud.aggregate(cts, w)
    back = xcloud.CiphertextBlocks.from_bytes(keys.ctx, total.to_bytes())  # scale 2^44 still reads back
    y = xcloud.decrypt_blocks(keys, back)
    err = max_abs_error(y, np.tensordot(np.array(w), xs, axes=1))
    assert err <= AGGREGATE_BOUND, f"max error 2^{math.log2(err):.2f}"


def test_mean_of_1000_all_plus_one_public_key_inputs(keys, thousand):
    xs, cts = thousand
    ones = cts[:500] * 2  # 1,000 inputs that are all +1
    w = xcloud.dyadic_weights(ones, [1e-3] * 1000)
    assert sum(w) == 1.0
    assert max_abs_error(xcloud.decrypt_blocks(keys, xcloud.aggregate(ones, w)), np.ones(4096)) <= AGGREGATE_BOUND


# -- keys: generated at q*P, version 2, old ones refused ----------------------------


def test_public_key_bytes_and_reload(ctx, kat, tmp_path):
    keys = kat["keys"]
    pub, sec = keys.public_bytes(), keys.secret_bytes()
    assert pub[4:6] == (2).to_bytes(2, "little")  # key format version 2: b modulo q and modulo P
    assert len(pub) == COMPACT_PUBLIC_KEY_SIZE and len(sec) == COMPACT_SECRET_KEY_SIZE
    assert keys.key_id.hex() == COMPACT_KEY_ID
    assert sha256_hex(pub) == COMPACT_PUBLIC_KEY_SHA256
    assert sha256_hex(sec) == COMPACT_SECRET_KEY_SHA256
    keys.save_public(tmp_path / "pk")
    loaded = ctx.load_keys(tmp_path / "pk")
    assert loaded.public_bytes() == pub
    # A public key read back encrypts exactly as the original (the P row, a and the folded P^-1 included).
    x = kat["x"]
    again = xcloud.encrypt_blocks_derand(loaded, x, seed=ENC_SEED, mode="public")
    assert again.to_bytes() == kat["public_ct"].to_bytes()
    keys.save_secret(tmp_path / "sk")
    secret = ctx.load_keys(tmp_path / "sk")
    assert secret.secret_bytes() == sec
    assert max_abs_error(xcloud.decrypt_blocks(secret, again), x) <= FRESH_BOUND


def test_keys_of_the_old_compact_preset_are_refused(ctx):
    twin = xcloud.CkksContext(prime_bits=(47,), scale_bits=32)
    old = twin.keygen_derand(KEY_SEED)
    assert old.public_bytes()[4:6] == (1).to_bytes(2, "little")
    for data in (old.public_bytes(), old.secret_bytes()):
        with pytest.raises(xcloud.IntegrityError, match="auxiliary prime"):
            xcloud.KeySet.from_bytes(ctx, data)
    with pytest.raises(xcloud.IntegrityError, match="auxiliary prime"):
        xcloud.KeySet.from_bytes(twin, ctx.keygen_derand(KEY_SEED).public_bytes())


def test_a_key_file_of_an_unknown_version_is_refused(ctx, kat):
    data = bytearray(kat["keys"].public_bytes())
    data[4:6] = (3).to_bytes(2, "little")
    body = bytes(data[:-32])
    with pytest.raises(xcloud.crypto.UnsupportedVersionError, match="unsupported version 3"):
        xcloud.KeySet.from_bytes(ctx, body + hashlib.sha256(body).digest())


# -- wire: unchanged layout; secret-key mode unchanged but for the fingerprint ---------


def test_ciphertext_known_answers(kat):
    pub = kat["public_ct"].to_bytes()
    assert len(pub) == COMPACT_PUBLIC_MODE_CT_SIZE and pub[4:6] == (2).to_bytes(2, "little")
    assert sha256_hex(pub) == COMPACT_PUBLIC_MODE_CT_SHA256
    assert sha256_hex(kat["secret_ct"].to_bytes()) == COMPACT_SECRET_MODE_CT_SHA256
    assert max_abs_error(xcloud.decrypt_blocks(kat["keys"], kat["public_ct"]), kat["x"]) <= FRESH_BOUND


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_public_key_known_answer_does_not_depend_on_threads(kat, threads):
    ct = xcloud.encrypt_blocks_derand(
        kat["keys"].public_only(), kat["x"], seed=ENC_SEED, threads=threads, mode="public"
    )
    assert sha256_hex(ct.to_bytes()) == COMPACT_PUBLIC_MODE_CT_SHA256


def test_secret_key_mode_is_byte_identical_to_the_old_preset_but_for_fingerprint_and_key_id(kat):
    twin = xcloud.CkksContext(prime_bits=(47,), scale_bits=32)
    old = xcloud.encrypt_blocks_derand(twin.keygen_derand(KEY_SEED), kat["x"], seed=ENC_SEED).to_bytes()
    new = kat["secret_ct"].to_bytes()
    assert len(old) == len(new)
    # Offsets 12-43 fingerprint, 44-59 key id (a hash over the fingerprint), last 32 the checksum.
    assert old[:12] == new[:12] and old[60:-32] == new[60:-32]
    assert old[12:60] != new[12:60]


def test_messages_of_the_old_compact_preset_are_refused(ctx):
    twin = xcloud.CkksContext(prime_bits=(47,), scale_bits=32)
    old_keys = twin.keygen()
    for ct in (
        xcloud.encrypt_blocks(old_keys, np.zeros(10)),
        xcloud.encrypt_blocks(old_keys.public_only(), np.zeros(10)),
    ):
        with pytest.raises(xcloud.IntegrityError, match="fingerprint mismatch"):
            xcloud.CiphertextBlocks.from_bytes(ctx, ct.to_bytes())


# -- the rounding kernel: exact, and the SIMD path bit-identical to the scalar one ---------


def _rescale_case(q: int, p: int, n: int, seed: int, m_bits: int = 40):
    rng = np.random.default_rng(seed)
    y = [
        (int(a) << 31 | int(b)) % (q * p)
        for a, b in zip(rng.integers(0, 2**48, n), rng.integers(0, 2**31, n), strict=True)
    ]
    e = rng.integers(-(2**31) + 1, 2**31 - 1, n).astype(np.int32)
    e[:6] = [0, 0, 0, 0, 21, -21]
    half = (p - 1) // 2
    for i, r in enumerate([0, 1, half, half + 1, p - 1, p - 2]):  # residues mod P at the centring threshold
        y[i] = (r + p * (7 + 12345 * i)) % (q * p)
    m = rng.integers(-(2**m_bits), 2**m_bits, n)
    pinv = pow(p, -1, q)
    t = np.array([(v % q) * pinv % q for v in y], dtype=np.uint64)
    xp = np.array([v % p for v in y], dtype=np.uint64)
    x = [(v + int(d)) % (q * p) for v, d in zip(y, e, strict=True)]
    want = np.array([((v + p // 2) // p + int(mm)) % q for v, mm in zip(x, m, strict=True)], dtype=np.uint64)
    return t, e, xp, m, want


@pytest.mark.parametrize("n", [4096, 4099, 7])
def test_rescale_kernel_rounds_to_nearest_on_both_paths(ctx, n):
    q, p = ctx.primes[0], ctx.aux_prime
    t, e, xp, m, want = _rescale_case(q, p, n, n)
    for scalar in (True, False):
        assert np.array_equal(T.poly_rescale_aux(t, e, xp, m, q, p, scalar), want)
    # Without t and m: (e - [xp + e]_p) * p^-1 alone.
    want2 = (want.astype(object) - t.astype(object) - np.array([int(v) % q for v in m], dtype=object)) % q
    for scalar in (True, False):
        assert list(T.poly_rescale_aux(None, e, xp, None, q, p, scalar)) == list(want2)


def test_rescale_kernel_with_an_auxiliary_prime_above_q():
    q = T.generate_ntt_primes(30, 8192, 1, [])[0]
    p = T.generate_ntt_primes(49, 8192, 1, [])[0]
    t, e, xp, m, want = _rescale_case(q, p, 1000, 5, m_bits=20)
    for scalar in (True, False):
        assert np.array_equal(T.poly_rescale_aux(t, e, xp, m, q, p, scalar), want)


def _digests() -> list[str]:
    ctx = xcloud.CkksContext.preset("compact")
    keys = ctx.keygen_derand(KEY_SEED)
    x = np.random.default_rng(6).uniform(-1, 1, 3 * 4096 + 5).astype(np.float32)
    ct = xcloud.encrypt_blocks_derand(keys.public_only(), x, seed=ENC_SEED, mode="public")
    agg = xcloud.aggregate([ct, ct], [0.5, 0.5])
    y = xcloud.decrypt_blocks(keys, agg)
    return [
        sha256_hex(keys.public_bytes()),
        sha256_hex(ct.to_bytes()),
        sha256_hex(agg.to_bytes()),
        sha256_hex(y.tobytes()),
    ]


@pytest.mark.skipif(not T.simd_supported(), reason="no AVX2 + FMA kernels in this build or CPU")
def test_public_key_encryption_is_bit_identical_on_the_scalar_path():
    before = T.set_force_scalar(True)
    try:
        scalar = _digests()
    finally:
        T.set_force_scalar(before)
    assert scalar == _digests()
    # And across processes with XCLOUD_FORCE_SCALAR=1 (read once at start-up).
    code = "import test_compact_public_key as t, json; print(json.dumps(t._digests()))"
    env = {**os.environ, "XCLOUD_FORCE_SCALAR": "1", "PYTHONPATH": str(Path(__file__).parent)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == scalar
