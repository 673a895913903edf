"""The coefficient encoding (``encoding="coefficients"``), which the compact preset uses.

Value i of a block is coefficient i of the plaintext, m_i = round(Delta * x_i);
no FFT runs in encryption or decryption. Aggregation only adds ciphertexts and
multiplies them by public scalars, both coefficient-wise, so it gives the same
results as with the slot encoding. What changes is the error of a value: with
the slot encoding it is a sum over all N coefficients' noise, here it is its
own coefficient's noise alone. In secret-key mode that is e_i + (rounding of
Delta * x_i) with |e_i| <= 21 (centred binomial, eta = 21), so every decrypted
value is within 21.5 / Delta of its input, a bound no slot encoding meets
(its errors reach about 2^-22.5 at Delta = 2^32, against 2^-27.57 here).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

import xcloud
from xcloud import _native
from xcloud.crypto.context import PRESETS

T = _native.testing
KEY_SEED = bytes(range(32))
ENC_SEED = bytes(32 * [7])
SLOTS = {**PRESETS["compact"], "encoding": "slots"}

# Known answers of the compact preset with the coefficient encoding (keygen_derand(KEY_SEED);
# encrypt_blocks_derand(..., seed=ENC_SEED) of np.linspace(-1, 1, 5000), two blocks). If one changes,
# a format, the parameter canonicalisation, the encoding or the randomness derivation changed: see
# tests/test_known_answers.py for what that means and when it may happen.
COMPACT_FINGERPRINT = "1509aef3c69f5f1292583790866a1c644a237b7612531fa98a60b6987e593949"
COMPACT_PUBLIC_KEY_SHA256 = "b762e7f3890a3fb84163fa6c5d8b9fcc7fffab75e6bc6078542d743ea41645a9"
COMPACT_SECRET_MODE_CT_SHA256 = "dc49af00dccf66ed19e02cd769caa00cbed84a218d0ad3de523abc1685c20b49"
COMPACT_PUBLIC_MODE_CT_SHA256 = "898a4a79c935fcb96457cc557c32148b2fda9b91354dc569226d3188654e6b70"
COMPACT_AGGREGATE_SHA256 = "9ae905965962f18fcc98583638cac6e582d708c7d0eadb21013eac44e4825599"


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def max_abs_error(y, x) -> float:
    return float(np.max(np.abs(np.asarray(y, dtype=np.float64) - np.asarray(x, dtype=np.float64))))


@pytest.fixture(scope="module")
def ctx() -> xcloud.CkksContext:
    return xcloud.CkksContext.preset("compact")


@pytest.fixture(scope="module")
def keys(ctx) -> xcloud.KeySet:
    return ctx.keygen()


@pytest.fixture(scope="module")
def kat(ctx) -> dict[str, object]:
    keys = ctx.keygen_derand(KEY_SEED)
    x = np.linspace(-1.0, 1.0, 5000)
    secret_ct = xcloud.encrypt_blocks_derand(keys, x, seed=ENC_SEED)
    public_ct = xcloud.encrypt_blocks_derand(keys.public_only(), x, seed=ENC_SEED, mode="public")
    return {"keys": keys, "x": x, "secret_ct": secret_ct, "public_ct": public_ct}


# -- parameters -------------------------------------------------------------------


def test_the_compact_preset_uses_it_and_the_default_does_not(ctx):
    assert ctx.encoding == ctx.literal.encoding == "coefficients"
    assert xcloud.CkksContext().encoding == xcloud.CkksContext.preset("default").encoding == "slots"
    assert "encoding=coefficients" in repr(ctx) and "encoding" not in repr(xcloud.CkksContext())
    assert xcloud.CkksContext(**SLOTS).encoding == "slots"


def test_canonical_bytes_are_version_3_with_the_encoding(ctx):
    data = ctx.canonical_bytes()
    assert data[:4] == b"XCKP" and data[4:6] == (3).to_bytes(2, "little")
    # The version-1 fields, then u8 encoding (2), u64 auxiliary prime, u16 public-key scale bits.
    assert data[-11] == 2
    assert data[-10:-2] == ctx.aux_prime.to_bytes(8, "little") and data[-2:] == (34).to_bytes(2, "little")
    assert ctx.fingerprint.hex() == sha256_hex(data) == COMPACT_FINGERPRINT
    # Without an auxiliary prime the field is 0 and the public-key scale is the scale.
    plain = xcloud.CkksContext(prime_bits=(47,), scale_bits=32, encoding="coefficients").canonical_bytes()
    assert plain[4:6] == (3).to_bytes(2, "little") and plain[-11] == 2
    assert plain[-10:-2] == bytes(8) and plain[-2:] == (32).to_bytes(2, "little")
    # The slot-encoded twins keep their formats (2 with P, 1 without).
    assert xcloud.CkksContext(**SLOTS).canonical_bytes()[4:6] == (2).to_bytes(2, "little")
    assert xcloud.CkksContext(prime_bits=(47,), scale_bits=32).canonical_bytes()[4:6] == (1).to_bytes(2, "little")
    assert xcloud.CkksContext(**SLOTS).fingerprint != ctx.fingerprint


@pytest.mark.parametrize("bad", ["coefficient", "Slots", "", "canonical"])
def test_an_unknown_encoding_is_refused(bad):
    with pytest.raises(xcloud.ParameterError, match="encoding must be"):
        xcloud.CkksContext(encoding=bad)
    with pytest.raises(xcloud.ParameterError, match="encoding must be"):
        _native.make_params(12, [36, 36], 38, 1.0, 128, False, 0, 0, bad)


def test_insecure_contexts_take_it_too():
    small = xcloud.CkksContext.insecure(log_n=6, prime_bits=(40,), scale_bits=30, encoding="coefficients")
    assert small.encoding == "coefficients" and small.insecure_params
    keys = small.keygen()
    x = np.random.default_rng(1).uniform(-1, 1, 200)
    assert max_abs_error(xcloud.decrypt_blocks(keys, xcloud.encrypt_blocks(keys, x)), x) <= 21.5 * 2.0**-30


# -- precision --------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_secret_key_error_is_each_coefficients_own_noise(keys, dtype):
    # Prepare: inputs that fill the range, including its ends and zeros.
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 1, 100_000).astype(dtype)
    x[:4] = [1.0, -1.0, 0.0, 2.0**-40]
    # Execute
    y = xcloud.decrypt_blocks(keys, xcloud.encrypt_blocks(keys, x), dtype="float64")
    # Assert: |e_i| <= 21 and the rounding's 1/2, over Delta = 2^32, for every value.
    assert max_abs_error(y, x) <= 21.5 * 2.0**-32
    # The error is the noise, not a constant: its spread is the binomial's (std 3.24) over Delta.
    err = (y - x.astype(np.float64)) * 2.0**32
    assert 2.9 <= float(np.std(err)) <= 3.6


def test_public_key_precision(keys):
    x = np.random.default_rng(3).uniform(-1, 1, 200_000).astype(np.float32)
    y = xcloud.decrypt_blocks(keys, xcloud.encrypt_blocks(keys.public_only(), x, mode="public"), dtype="float64")
    # r0 + r1*s per coefficient (std about 15 at N = 4096) over Delta = 2^34: measured about 2^-27.7 at
    # 10^6 values; with the slot encoding the same mechanism gives about 2^-21.2.
    assert max_abs_error(y, x) <= 2.0**-26


def test_the_encoding_is_more_precise_than_the_slots_at_the_same_parameters(keys):
    slot_keys = xcloud.CkksContext(**SLOTS).keygen()
    x = np.random.default_rng(4).uniform(-1, 1, 50_000)
    for mode in ("secret", "public"):
        coeff = max_abs_error(xcloud.decrypt_blocks(keys, xcloud.encrypt_blocks(keys, x, mode=mode)), x)
        slots = max_abs_error(xcloud.decrypt_blocks(slot_keys, xcloud.encrypt_blocks(slot_keys, x, mode=mode)), x)
        assert coeff * 2**4 < slots, mode


# -- aggregation ------------------------------------------------------------------


# Secret-key inputs summed with their seeds kept (compact) or with c1 expanded; public-key inputs carry a full c1.
@pytest.mark.parametrize(("mode", "compact"), [("secret", True), ("secret", False), ("public", False)])
def test_weighted_aggregate_equals_the_plain_weighted_sum(keys, mode, compact):
    rng = np.random.default_rng(5)
    xs = [rng.uniform(-1, 1, 3 * 4096 + 17) for _ in range(6)]
    enc_keys = keys if mode == "secret" else keys.public_only()
    cts = [xcloud.encrypt_blocks(enc_keys, v, mode=mode) for v in xs]
    w = xcloud.dyadic_weights(cts, list(rng.dirichlet(np.ones(6))))
    y = xcloud.decrypt_blocks(keys, xcloud.aggregate(cts, w, compact=compact), dtype="float64")
    want = sum(wi * v for wi, v in zip(w, xs, strict=True))
    assert y.shape == want.shape
    assert max_abs_error(y, want) <= 2.0**-26


def test_slots_and_coefficients_aggregate_to_the_same_values(keys):
    slot_keys = xcloud.CkksContext(**SLOTS).keygen()
    rng = np.random.default_rng(6)
    xs = [rng.uniform(-1, 1, 10_000) for _ in range(4)]
    w = [0.25, 0.5, 0.125, 0.125]
    got = {}
    for name, k in (("coefficients", keys), ("slots", slot_keys)):
        cts = [xcloud.encrypt_blocks(k, v) for v in xs]
        got[name] = xcloud.decrypt_blocks(k, xcloud.aggregate(cts, w), dtype="float64")
    assert max_abs_error(got["coefficients"], got["slots"]) <= 2.0**-20


# -- formats and refusals ---------------------------------------------------------


def test_ciphertexts_and_keys_of_one_encoding_are_refused_under_the_other(ctx, keys, tmp_path):
    slots = xcloud.CkksContext(**SLOTS)
    ct = xcloud.encrypt_blocks(keys, np.zeros(100))
    with pytest.raises(xcloud.IntegrityError):
        xcloud.CiphertextBlocks.from_bytes(slots, ct.to_bytes())
    keys.save_public(tmp_path / "pk.bin")
    with pytest.raises(xcloud.IntegrityError):
        slots.load_keys(tmp_path / "pk.bin")
    # Its own context reads both back.
    assert xcloud.CiphertextBlocks.from_bytes(ctx, ct.to_bytes()).to_bytes() == ct.to_bytes()
    assert ctx.load_keys(tmp_path / "pk.bin").key_id == keys.key_id


def test_known_answers(kat):
    keys = kat["keys"]
    assert sha256_hex(keys.public_bytes()) == COMPACT_PUBLIC_KEY_SHA256
    assert sha256_hex(kat["secret_ct"].to_bytes()) == COMPACT_SECRET_MODE_CT_SHA256
    assert sha256_hex(kat["public_ct"].to_bytes()) == COMPACT_PUBLIC_MODE_CT_SHA256
    agg = xcloud.aggregate([kat["secret_ct"], kat["secret_ct"]], [0.25, 0.75])
    assert sha256_hex(agg.to_bytes()) == COMPACT_AGGREGATE_SHA256
    # A key pair is the same polynomials under either encoding: only the fingerprint and key id differ
    # (key file: magic 4, version 2, two flag bytes, fingerprint 32, key id 16, then the body, then a
    # 32-byte checksum).
    twin = xcloud.CkksContext(**SLOTS).keygen_derand(KEY_SEED)
    mine, theirs = keys.public_bytes(), twin.public_bytes()
    assert mine[:8] == theirs[:8] and mine[56:-32] == theirs[56:-32]
    assert mine[8:56] != theirs[8:56]
    for ct in (kat["secret_ct"], kat["public_ct"]):
        assert max_abs_error(xcloud.decrypt_blocks(keys, ct), kat["x"]) <= 2.0**-26


def _nonce(tag: bytes, index: int) -> bytes:
    """ckks/streams.h: 4-byte tag || u32 index || u32 sub (0), little-endian."""
    return tag.ljust(4, b"\0") + index.to_bytes(4, "little") + bytes(4)


def _cbd(stream: bytes, n: int) -> np.ndarray:
    """Centred binomial, eta = 21, from 6-byte little-endian words (ring/sampler.h), in Python."""
    words = [int.from_bytes(stream[6 * i : 6 * i + 6], "little") for i in range(n)]
    mask = (1 << 21) - 1
    return np.array([(w & mask).bit_count() - ((w >> 21) & mask).bit_count() for w in words])


def test_the_noise_is_the_published_derivation_from_the_seed(kat):
    """Under the coefficient encoding a secret-key encryption of zeros decrypts to its noise, exactly
    (e_i / Delta), so the noise can be checked against its derivation done here by hand: the AES-256 key
    is 32 bytes of ChaCha20 under the seed with nonce "XCN" || 0, and block b's noise the centred
    binomial of AES-256-CTR from counter block "XCE" || b || 0 || 0 (ckks/encryptor.cpp)."""
    keys, n = kat["keys"], 4096
    ct = xcloud.encrypt_blocks_derand(keys, np.zeros(2 * n), seed=ENC_SEED)
    e = xcloud.decrypt_blocks(keys, ct, dtype="float64") * 2.0**32
    assert np.array_equal(e, np.rint(e))
    noise_key = bytes(T.chacha20_stream(ENC_SEED, _nonce(b"XCN", 0), 0, 32))
    for b in range(2):
        stream = bytes(T.aes256_ctr_keystream(noise_key, _nonce(b"XCE", b) + bytes(4), 6 * n))
        assert np.array_equal(e[b * n : (b + 1) * n], _cbd(stream, n)), b


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_known_answers_do_not_depend_on_threads(kat, threads):
    again = xcloud.encrypt_blocks_derand(kat["keys"], kat["x"], seed=ENC_SEED, threads=threads)
    assert again.to_bytes() == kat["secret_ct"].to_bytes()


@pytest.mark.skipif(not T.simd_supported(), reason="no AVX2 + FMA kernels in this build or CPU")
@pytest.mark.parametrize("mode", ["secret", "public"])
def test_scalar_and_simd_paths_give_the_same_bytes(kat, mode):
    keys = kat["keys"] if mode == "secret" else kat["keys"].public_only()
    x = np.random.default_rng(7).uniform(-1, 1, 2 * 4096 + 3).astype(np.float32)

    def run() -> tuple[bytes, bytes]:
        ct = xcloud.encrypt_blocks_derand(keys, x, seed=ENC_SEED, mode=mode)
        return ct.to_bytes(), xcloud.decrypt_blocks(kat["keys"], ct).tobytes()

    before = T.set_force_scalar(True)
    try:
        scalar = run()
    finally:
        T.set_force_scalar(before)
    assert scalar == run()


def test_partial_blocks_and_shapes_round_trip(keys):
    for shape in [(1,), (4095,), (4097,), (3, 5, 7), (2, 4096)]:
        x = np.random.default_rng(8).uniform(-1, 1, shape).astype(np.float32)
        y = xcloud.decrypt_blocks(keys, xcloud.encrypt_blocks(keys, x))
        assert y.shape == x.shape and y.dtype == np.float32
        assert max_abs_error(y, x) <= 21.5 * 2.0**-32 + 2.0**-24
