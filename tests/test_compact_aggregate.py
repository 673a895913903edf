"""The compact ('seeded-sum') aggregate of seeded ciphertexts.

An aggregate of secret-key ciphertexts can keep its c1 as the inputs' seeds
plus the integer weights (cpp/src/ckks/aggregate.h): c1 = sum_k w_k a_k, with
every a_k expanded from a public seed. These tests check that it decrypts to
exactly the bits of the full-form aggregate of the same inputs, when it is
and is not produced, its size, and that malformed compact bytes are refused.

Wire layout of the form (wire.h): after the shape, u32 K then L x K u64
weights (prime-major); per block, c0 then K 32-byte seeds.
"""

from __future__ import annotations

import hashlib
import struct

import numpy as np
import pytest

import xcloud
from xcloud import _native

CHECKSUM = 32
OFF_ORIGIN, OFF_FORM = 6, 7


def reseal(data: bytes | bytearray) -> bytes:
    body = bytes(data[:-CHECKSUM])
    return body + hashlib.sha256(body).digest()


def form_header_at(ct: xcloud.CiphertextBlocks) -> int:
    """Offset of the seed count K: just after the shape."""
    return 92 + 8 * len(ct.shape)


def encrypt_rows(keys: xcloud.KeySet, xs: np.ndarray, mode: str = "secret") -> list[xcloud.CiphertextBlocks]:
    return [xcloud.encrypt_blocks(keys, x, threads=1, mode=mode) for x in xs]


def decrypted_bytes(
    keys: xcloud.KeySet, ct: xcloud.CiphertextBlocks, dtype: str | None = None, threads: int = 2
) -> bytes:
    return np.asarray(xcloud.decrypt_blocks(keys, ct, threads=threads, dtype=dtype)).tobytes()


def assert_same_ciphertext_except_c1(a: xcloud.CiphertextBlocks, b: xcloud.CiphertextBlocks) -> None:
    assert (a.shape, a.dtype, a.origin, a.scale, a.bound, a.key_id) == (
        b.shape,
        b.dtype,
        b.origin,
        b.scale,
        b.bound,
        b.key_id,
    )
    assert np.array_equal(a.c0_view(), b.c0_view())


def mixed_weights(k: int, rng: np.random.Generator) -> list[float]:
    """Weights of both signs, mostly not multiples of any small power of two."""
    w = rng.uniform(-1.0, 1.0, size=k) / k
    w[0] = 0.3 / k  # non-dyadic
    if k > 1:
        w[1] = -0.125  # dyadic and negative
    return [float(v) for v in w]


# -- bit-identical decryption: compact vs full -------------------------------


@pytest.mark.parametrize("k", [1, 2, 4, 9, 17])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
def test_compact_decrypts_to_the_bits_of_the_full_form(small_keys, rng, k, dtype, threads):
    # Prepare: two full blocks and a partial one per input
    xs = rng.uniform(-1.0, 1.0, size=(k, 2 * 1024 + 77)).astype(dtype)
    cts = encrypt_rows(small_keys, xs)
    weights = mixed_weights(k, rng)
    # Execute
    compact = xcloud.aggregate(cts, weights, threads=threads)
    full = xcloud.aggregate(cts, weights, threads=threads, compact=False)
    # Assert
    assert (compact.c1_form, compact.seeds_per_block) == ("seeded-sum", k)
    assert (full.c1_form, full.seeds_per_block) == ("full", 0)
    assert_same_ciphertext_except_c1(compact, full)
    for out in (None, "float32", "float64"):
        assert decrypted_bytes(small_keys, compact, out, threads) == decrypted_bytes(small_keys, full, out, threads)
    err = np.max(np.abs(np.asarray(xcloud.decrypt_blocks(small_keys, compact), np.float64) - np.asarray(weights) @ xs))
    assert err <= 2.0**-16


def test_compact_decryption_does_not_depend_on_threads(small_keys, rng):
    cts = encrypt_rows(small_keys, rng.uniform(-1, 1, size=(5, 5000)))
    agg = xcloud.aggregate(cts, [0.1, 0.2, -0.3, 0.15, 0.35], threads=1)
    assert agg.to_bytes() == xcloud.aggregate(cts, [0.1, 0.2, -0.3, 0.15, 0.35], threads=2).to_bytes()
    assert decrypted_bytes(small_keys, agg, threads=1) == decrypted_bytes(small_keys, agg, threads=2)


def test_default_context_compact_matches_full(default_keys, rng):
    xs = rng.uniform(-1.0, 1.0, size=(3, 3 * 4096 + 5)).astype(np.float32)
    cts = encrypt_rows(default_keys, xs)
    compact = xcloud.aggregate(cts, [0.5, 0.3, 0.2])
    full = xcloud.aggregate(cts, [0.5, 0.3, 0.2], compact=False)
    assert compact.c1_form == "seeded-sum"
    assert decrypted_bytes(default_keys, compact) == decrypted_bytes(default_keys, full)


def test_nested_compact_aggregates_concatenate_their_seeds(small_keys, rng):
    """aggregate(aggregate(...)) multiplies the weights through, mod each prime."""
    # Prepare: dyadic weights, so the nested scale 2^(38 + k1 + k2) stays within the modulus
    xs = rng.uniform(-1.0, 1.0, size=(5, 1500))
    cts = encrypt_rows(small_keys, xs)
    inner_a = xcloud.aggregate(cts[:3], [0.5, -0.25, 0.75])
    inner_b = xcloud.aggregate(cts[3:] + cts[:1], [-0.5, 0.25, 0.25])
    inner_b_full = xcloud.aggregate(cts[3:] + cts[:1], [-0.5, 0.25, 0.25], compact=False)
    # Execute
    nested = xcloud.aggregate([inner_a, inner_b], [0.75, -1.5])
    nested_full = xcloud.aggregate([inner_a, inner_b], [0.75, -1.5], compact=False)
    mixed = xcloud.aggregate([inner_a, inner_b_full], [0.75, -1.5])
    summed = inner_a + inner_b
    # Assert
    assert (nested.c1_form, nested.seeds_per_block) == ("seeded-sum", 6)
    assert mixed.c1_form == "full"  # one full input: the sum is full
    assert (summed.c1_form, summed.seeds_per_block) == ("seeded-sum", 6)
    ref = decrypted_bytes(small_keys, nested_full)
    assert decrypted_bytes(small_keys, nested) == ref == decrypted_bytes(small_keys, mixed)
    expected = 0.75 * np.array([0.5, -0.25, 0.75]) @ xs[:3] - 1.5 * np.array([-0.5, 0.25, 0.25]) @ xs[[3, 4, 0]]
    assert np.max(np.abs(xcloud.decrypt_blocks(small_keys, nested) - expected)) <= 2.0**-16
    # the composed weights are the residues of the integer products
    k1 = _native.testing.aggregate_weight_bits([c._native for c in cts[:3]], [0.5, -0.25, 0.75])
    k2 = _native.testing.aggregate_weight_bits([inner_a._native, inner_b._native], [0.75, -1.5])
    w = _native.testing.seed_weights(nested._native).reshape(len(small_keys.ctx.primes), 6)
    for j, q in enumerate(small_keys.ctx.primes):
        assert int(w[j, 0]) == (round(0.5 * 2**k1) * round(0.75 * 2**k2)) % q
        assert int(w[j, 1]) == (round(-0.25 * 2**k1) * round(0.75 * 2**k2)) % q


def test_a_ciphertext_added_to_itself_keeps_both_seeds(small_keys, rng):
    ct = xcloud.encrypt_blocks(small_keys, rng.uniform(-0.5, 0.5, 3000))
    twice = xcloud.add(ct, ct)
    assert (twice.c1_form, twice.seeds_per_block) == ("seeded-sum", 2)
    assert decrypted_bytes(small_keys, twice) == decrypted_bytes(small_keys, xcloud.add(ct, ct, compact=False))


# -- when the compact form is (not) produced ---------------------------------


def test_public_key_inputs_give_the_full_form(small_keys, rng):
    x = rng.uniform(-1, 1, 2000)
    secret = xcloud.encrypt_blocks(small_keys, x)
    public = xcloud.encrypt_blocks(small_keys.public_only(), x)
    assert xcloud.aggregate([public, public]).c1_form == "full"
    mixed = xcloud.aggregate([secret, public], [0.25, 0.75])
    assert mixed.c1_form == "full"
    assert public.c1_form == "full" and secret.c1_form == "seeded"
    assert (secret.seeds_per_block, public.seeds_per_block) == (1, 0)


def test_seed_limit_falls_back_to_the_full_form(default_keys):
    """Default context (one block's c1 is 36,864 bytes, 256 seeds and weights 12,292): the seed count decides."""
    keys = default_keys
    limit = xcloud.crypto.blocks.MAX_SEEDS_PER_BLOCK
    assert limit == _native.MAX_SEEDS_PER_BLOCK == 256
    ct = xcloud.encrypt_blocks(keys, np.linspace(-1, 1, 100))
    at_limit = xcloud.aggregate([ct] * limit)
    over = xcloud.aggregate([ct] * (limit + 1))
    assert (at_limit.c1_form, at_limit.seeds_per_block) == ("seeded-sum", limit)
    assert over.c1_form == "full"
    assert decrypted_bytes(keys, at_limit) == decrypted_bytes(keys, xcloud.aggregate([ct] * limit, compact=False))
    # nested: 200 + 200 seeds exceed the limit, so the outer sum is full
    inner = xcloud.aggregate([ct] * 200, [1 / 256] * 200)
    outer = xcloud.aggregate([inner, inner], [0.5, 0.5])
    assert outer.c1_form == "full"
    assert decrypted_bytes(keys, outer) == decrypted_bytes(
        keys, xcloud.aggregate([inner, inner], [0.5, 0.5], compact=False)
    )


@pytest.mark.parametrize("blocks", [1, 2])
def test_no_compact_form_larger_than_the_full_one(blocks):
    """N = 128, two 36-bit primes: a packed c1 is 1,152 bytes per block, the compact form
    costs 4 + 16 K bytes once and 32 K per block, so it is smaller for K < (1152 b - 4) / (16 + 32 b)."""
    # Prepare
    ctx = xcloud.CkksContext.insecure(log_n=7)
    ct = xcloud.encrypt_blocks(ctx.keygen(), np.zeros(128 * blocks))
    most = (1152 * blocks - 4 - 1) // (16 + 32 * blocks)  # 23 for one block, 28 for two
    # Execute / Assert
    assert _native.testing.aggregate_compact_seeds([ct._native] * most) == most
    assert _native.testing.aggregate_compact_seeds([ct._native] * (most + 1)) == 0
    assert xcloud.aggregate([ct] * (most + 1)).c1_form == "full"
    small = xcloud.aggregate([ct] * most)
    assert small.c1_form == "seeded-sum"
    assert small.nbytes < xcloud.aggregate([ct] * most, compact=False).nbytes


def test_compact_must_be_a_bool(small_keys):
    ct = xcloud.encrypt_blocks(small_keys, np.zeros(10))
    with pytest.raises(TypeError, match="compact"):
        xcloud.aggregate([ct, ct], compact="yes")  # type: ignore[arg-type]


# -- sizes -------------------------------------------------------------------


def test_compact_aggregate_of_four_uploads_is_about_one_upload(default_keys, rng):
    """K = 4 default-context batches of 200,000 values: 49 blocks, each 36,864 bytes of c0
    plus 4 x 32 bytes of seeds (one upload: 36,864 + 32), plus 4 + 4 x 2 x 8 header bytes."""
    # Prepare
    cts = encrypt_rows(default_keys, rng.uniform(-1, 1, size=(4, 200_000)).astype(np.float32))
    # Execute
    compact = xcloud.aggregate(cts, [0.4, 0.3, 0.2, 0.1])
    full = xcloud.aggregate(cts, [0.4, 0.3, 0.2, 0.1], compact=False)
    # Assert
    upload = cts[0].nbytes
    assert compact.nbytes == len(compact.to_bytes()) == 92 + 8 + 4 + 4 * 2 * 8 + 49 * (36_864 + 4 * 32) + 32
    assert compact.nbytes <= 1.01 * upload
    assert full.nbytes == 92 + 8 + 49 * 2 * 36_864 + 32
    assert full.nbytes / compact.nbytes > 1.98


# -- wire format of the form -------------------------------------------------


@pytest.fixture(scope="module")
def compact_ct(small_keys) -> xcloud.CiphertextBlocks:
    x = np.linspace(-1.0, 1.0, 1400).reshape(2, 700)
    cts = [xcloud.encrypt_blocks_derand(small_keys, x * s, bytes([i]) * 32) for i, s in enumerate((1.0, -0.5, 0.25))]
    return xcloud.aggregate(cts, [0.5, -0.25, 0.3])


def test_wire_fields_of_the_compact_form(small_ctx, compact_ct):
    data = compact_ct.to_bytes()
    at = form_header_at(compact_ct)
    assert struct.unpack_from("<HBB", data, 4) == (2, 3, 2)  # version 2, origin aggregate, form 2
    assert struct.unpack_from("<I", data, at) == (3,)
    weights = struct.unpack_from("<6Q", data, at + 4)
    assert list(weights) == [int(v) for v in _native.testing.seed_weights(compact_ct._native)]
    for j, q in enumerate(small_ctx.primes):  # weights [0.5, -0.25, 0.3] at k = 30 (0.3 is not dyadic)
        assert weights[3 * j : 3 * j + 2] == (2**29 % q, -(2**28) % q)
    assert len(data) == at + 4 + 6 * 8 + 2 * (9216 + 3 * 32) + CHECKSUM


def test_compact_round_trip(small_ctx, small_keys, compact_ct):
    data = compact_ct.to_bytes()
    back = xcloud.CiphertextBlocks.from_bytes(small_ctx, data)
    assert back.to_bytes() == data
    assert (back.c1_form, back.seeds_per_block) == ("seeded-sum", 3)
    assert decrypted_bytes(small_keys, back) == decrypted_bytes(small_keys, compact_ct)


@pytest.mark.parametrize("count", [0, 1, 2, 4, 257, 2**16, 2**32 - 1])
def test_tampered_seed_count_is_rejected(small_ctx, compact_ct, count):
    buf = bytearray(compact_ct.to_bytes())
    struct.pack_into("<I", buf, form_header_at(compact_ct), count)
    with pytest.raises(xcloud.IntegrityError):
        xcloud.CiphertextBlocks.from_bytes(small_ctx, reseal(buf))


@pytest.mark.parametrize("index", [0, 2, 3, 5])
@pytest.mark.parametrize("excess", [0, 1, 2**63])
def test_weight_not_below_its_prime_is_rejected(small_ctx, compact_ct, index, excess):
    q = small_ctx.primes[index // 3]
    buf = bytearray(compact_ct.to_bytes())
    struct.pack_into("<Q", buf, form_header_at(compact_ct) + 4 + 8 * index, min(q + excess, 2**64 - 1))
    with pytest.raises(xcloud.IntegrityError, match="weight"):
        xcloud.CiphertextBlocks.from_bytes(small_ctx, reseal(buf))


def test_weight_just_below_its_prime_is_accepted(small_ctx, compact_ct):
    q = small_ctx.primes[1]
    buf = bytearray(compact_ct.to_bytes())
    struct.pack_into("<Q", buf, form_header_at(compact_ct) + 4 + 8 * 5, q - 1)
    back = xcloud.CiphertextBlocks.from_bytes(small_ctx, reseal(buf))
    assert int(_native.testing.seed_weights(back._native)[5]) == q - 1


@pytest.mark.parametrize(
    ("what", "offset", "value"),
    [
        ("secret-key origin", OFF_ORIGIN, 1),
        ("public-key origin", OFF_ORIGIN, 2),
        ("seeded form", OFF_FORM, 0),
        ("full form", OFF_FORM, 1),
        ("form 3", OFF_FORM, 3),
    ],
)
def test_compact_body_under_another_header_is_rejected(small_ctx, compact_ct, what, offset, value):
    buf = bytearray(compact_ct.to_bytes())
    buf[offset] = value
    with pytest.raises(xcloud.IntegrityError):
        xcloud.CiphertextBlocks.from_bytes(small_ctx, reseal(buf))
        pytest.fail(f"accepted: {what}")


def test_full_body_claiming_the_compact_form_is_rejected(small_ctx, small_keys):
    x = np.linspace(-1, 1, 1400)
    full = xcloud.aggregate([xcloud.encrypt_blocks(small_keys, x)] * 2, compact=False)
    buf = bytearray(full.to_bytes())
    buf[OFF_FORM] = 2
    with pytest.raises(xcloud.IntegrityError):
        xcloud.CiphertextBlocks.from_bytes(small_ctx, reseal(buf))


def test_compact_bytes_from_another_context_are_rejected(compact_ct):
    with pytest.raises(xcloud.IntegrityError, match="fingerprint"):
        xcloud.CiphertextBlocks.from_bytes(
            xcloud.CkksContext.insecure(log_n=10, prime_bits=(36, 35)), compact_ct.to_bytes()
        )


# -- bad input to aggregate and decrypt ---------------------------------------


def test_compact_aggregate_with_another_contexts_ciphertext_is_refused(compact_ct):
    ctx = xcloud.CkksContext.insecure(log_n=10, prime_bits=(36, 35))
    other = xcloud.encrypt_blocks(ctx.keygen(), np.zeros(1400).reshape(2, 700))
    with pytest.raises(ValueError, match="different parameter sets"):
        xcloud.aggregate([compact_ct, other])
    with pytest.raises(ValueError, match="different parameter sets"):
        xcloud.aggregate([other, compact_ct])


def test_compact_aggregate_with_another_keys_ciphertext_is_refused(small_ctx, compact_ct):
    other = xcloud.encrypt_blocks(small_ctx.keygen(), np.zeros(1400).reshape(2, 700))
    with pytest.raises(ValueError, match="different keys"):
        xcloud.aggregate([compact_ct, other])


def test_compact_aggregate_and_fresh_input_at_different_scales_are_refused(small_keys, compact_ct):
    fresh = xcloud.encrypt_blocks(small_keys, np.zeros(1400).reshape(2, 700))
    with pytest.raises(ValueError, match="different scales"):
        xcloud.add(compact_ct, fresh)


def test_compact_aggregate_does_not_decrypt_under_other_keys(small_ctx, compact_ct):
    with pytest.raises(ValueError, match="another key"):
        xcloud.decrypt_blocks(small_ctx.keygen(), compact_ct)
    with pytest.raises(ValueError, match="no secret key"):
        xcloud.decrypt_blocks(small_ctx.keygen().public_only(), compact_ct)
