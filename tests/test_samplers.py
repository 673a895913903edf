"""Statistical and known-answer tests of the samplers (cpp/src/ring/sampler.h).

Each statistical test compares a statistic with a bound that a correct sampler
exceeds with probability about 1e-6 or less, so the suite as a whole has a
negligible false-failure rate while a biased sampler fails reliably.

Chi-square critical values are hardcoded for p = 1e-6; they were computed with
``scipy.stats.chi2.isf(1e-6, df)`` (for df = 2 the closed form is
``-2 * ln(1e-6)``). Mean and variance bounds are 6 standard errors of the
estimate (two-sided normal tail about 2e-9).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

import xcloud
from xcloud._native import testing

# chi2.isf(1e-6, df) for the degrees of freedom used below.
CHI2_CRITICAL_1E6 = {
    2: 27.631021115928547,
    6: 38.25833637720969,
    8: 42.700913926544274,
    26: 75.54740535230464,
    63: 131.36970205168686,
}
SIGMAS = 6.0

SEED_A = bytes(range(32))
SEED_B = bytes(range(1, 33))

# Moduli: NTT primes of 20, 36 and 50 bits, a modulus just above a power of two
# (rejection rate near 1/2) and the largest 64-bit prime (no masking at all).
UNIFORM_MODULI = [
    int(testing.generate_ntt_primes(20, 8192, 1)[0]),
    int(testing.generate_ntt_primes(36, 8192, 1)[0]),
    int(testing.generate_ntt_primes(50, 8192, 1)[0]),
    2**40 + 1,
    2**64 - 59,
]


def chi_square(observed: np.ndarray, expected: np.ndarray) -> float:
    assert observed.sum() == pytest.approx(expected.sum())
    return float(((observed - expected) ** 2 / expected).sum())


def keystream_words(seed: bytes, count: int) -> list[int]:
    """The little-endian 64-bit words of ChaCha20(key=seed, nonce=0, counter=0), from OpenSSL."""
    enc = Cipher(algorithms.ChaCha20(seed, bytes(16)), mode=None).encryptor()
    data = enc.update(bytes(8 * count))
    return [int.from_bytes(data[8 * i : 8 * i + 8], "little") for i in range(count)]


# -- sample_uniform_mod ---------------------------------------------------------------


@pytest.mark.parametrize("q", UNIFORM_MODULI)
def test_uniform_mod_is_in_range_with_the_right_mean(q: int) -> None:
    # Prepare
    n = 200_000
    # Execute
    v = testing.sample_uniform_mod(SEED_A, q, n)
    # Assert: range, and mean (q-1)/2 within 6 standard errors (sd of one draw: sqrt((q^2-1)/12)).
    assert v.dtype == np.uint64 and v.shape == (n,)
    assert int(v.max()) < q
    mean = float(np.mean(v.astype(np.float64)))
    assert abs(mean - (q - 1) / 2) <= SIGMAS * math.sqrt((q * q - 1) / 12 / n)


@pytest.mark.parametrize("q", UNIFORM_MODULI)
def test_uniform_mod_high_part_is_uniform_by_chi_square(q: int) -> None:
    # Prepare: 64 buckets [ceil(b q / 64), ceil((b+1) q / 64)) with their exact sizes.
    n, buckets = 200_000, 64
    edges = [-(-b * q // buckets) for b in range(buckets + 1)]
    expected = n * np.array([(edges[b + 1] - edges[b]) / q for b in range(buckets)])
    # Execute
    v = testing.sample_uniform_mod(SEED_A, q, n)
    idx = np.searchsorted(np.array(edges[:-1], dtype=np.uint64), v, side="right") - 1
    observed = np.bincount(idx, minlength=buckets)
    # Assert
    assert chi_square(observed, expected) < CHI2_CRITICAL_1E6[buckets - 1]


@pytest.mark.parametrize("q", UNIFORM_MODULI)
def test_uniform_mod_low_bits_are_uniform_by_chi_square(q: int) -> None:
    # Prepare: v mod 64; residue r occurs q // 64 + (r < q % 64) times in [0, q).
    n, buckets = 200_000, 64
    expected = n * np.array([(q // buckets + (r < q % buckets)) / q for r in range(buckets)])
    # Execute
    v = testing.sample_uniform_mod(SEED_B, q, n)
    observed = np.bincount((v % np.uint64(buckets)).astype(np.int64), minlength=buckets)
    # Assert
    assert chi_square(observed, expected) < CHI2_CRITICAL_1E6[buckets - 1]


def test_uniform_mod_small_modulus_hits_every_value_equally() -> None:
    # Prepare: q = 7 takes 3-bit words and rejects 1 in 8.
    n, q = 70_000, 7
    # Execute
    v = testing.sample_uniform_mod(SEED_A, q, n)
    observed = np.bincount(v.astype(np.int64), minlength=q)
    # Assert
    assert len(observed) == q
    assert chi_square(observed, np.full(q, n / q)) < CHI2_CRITICAL_1E6[q - 1]


def test_uniform_mod_modulus_one_gives_zeros() -> None:
    # Prepare / Execute
    v = testing.sample_uniform_mod(SEED_A, 1, 100)
    # Assert
    assert not v.any()


@pytest.mark.parametrize("q", [7, 2**40 + 1, UNIFORM_MODULI[1]])
def test_uniform_mod_is_rejection_sampling_over_the_keystream(q: int) -> None:
    # Prepare: the documented construction, modelled over OpenSSL's ChaCha20 keystream
    # (key = seed, zero nonce, counter 0): bit_length(q)-bit words, reject those >= q.
    n = 500
    mask = (1 << q.bit_length()) - 1
    accepted = [w & mask for w in keystream_words(SEED_A, 4 * n) if w & mask < q]
    # Execute
    v = testing.sample_uniform_mod(SEED_A, q, n)
    # Assert
    assert [int(x) for x in v] == accepted[:n]


# -- sample_uniform_mod_ctr (the uniform c1 of wire version 2) ----------------------------------


def aes_ctr_keystream(seed: bytes, n: int) -> bytes:
    """AES-256-CTR keystream from OpenSSL: key = seed, initial counter block zero."""
    from cryptography.hazmat.primitives.ciphers import modes

    enc = Cipher(algorithms.AES(seed), modes.CTR(bytes(16))).encryptor()
    return enc.update(bytes(n)) + enc.finalize()


@pytest.mark.parametrize("q", [7, 2**40 + 1, *UNIFORM_MODULI[:3], int(testing.generate_ntt_primes(47, 8192, 1)[0])])
def test_uniform_ctr_is_rejection_sampling_over_ceil_bits_bytes(q: int) -> None:
    # Prepare: the documented construction over OpenSSL's AES-256-CTR: ceil(bits/8)-byte
    # little-endian words, their low bit_length(q) bits, those >= q rejected.
    n, bits = 700, q.bit_length()
    width, mask = (bits + 7) // 8, (1 << bits) - 1
    ks = aes_ctr_keystream(SEED_A, width * 4 * n)
    words = [int.from_bytes(ks[width * i : width * i + width], "little") & mask for i in range(4 * n)]
    accepted = [w for w in words if w < q]
    # Execute
    v = testing.sample_uniform_mod_ctr(SEED_A, q, n)
    # Assert
    assert [int(x) for x in v] == accepted[:n]


@pytest.mark.parametrize("q", UNIFORM_MODULI[:3])
def test_uniform_ctr_is_uniform_by_chi_square(q: int) -> None:
    n, buckets = 200_000, 64
    edges = [-(-b * q // buckets) for b in range(buckets + 1)]
    expected = n * np.array([(edges[b + 1] - edges[b]) / q for b in range(buckets)])
    v = testing.sample_uniform_mod_ctr(SEED_B, q, n)
    assert int(v.max()) < q
    idx = np.searchsorted(np.array(edges[:-1], dtype=np.uint64), v, side="right") - 1
    assert chi_square(np.bincount(idx, minlength=buckets), expected) < CHI2_CRITICAL_1E6[buckets - 1]


# -- sample_ternary -----------------------------------------------------------------------


def test_ternary_values_are_uniform_on_minus_one_zero_one() -> None:
    # Prepare
    n = 300_000
    # Execute
    s = testing.sample_ternary(SEED_A, n)
    # Assert
    assert s.dtype == np.int8 and s.shape == (n,)
    assert set(np.unique(s).tolist()) <= {-1, 0, 1}
    observed = np.bincount(s.astype(np.int64) + 1, minlength=3)
    assert chi_square(observed, np.full(3, n / 3)) < CHI2_CRITICAL_1E6[2]


def test_ternary_consecutive_pairs_are_independent() -> None:
    # Prepare: the 9 cells of (s[2i], s[2i+1]), 1/9 each for independent uniform draws.
    n = 300_000
    # Execute
    s = testing.sample_ternary(SEED_B, n).astype(np.int64) + 1
    observed = np.bincount(3 * s[0::2] + s[1::2], minlength=9)
    # Assert
    assert chi_square(observed, np.full(9, n / 2 / 9)) < CHI2_CRITICAL_1E6[8]


def test_ternary_is_the_top_of_three_times_a_keystream_word() -> None:
    # Prepare: the documented construction, out = floor(3 r / 2^64) - 1 for 64-bit words r.
    n = 1000
    expected = [(3 * r >> 64) - 1 for r in keystream_words(SEED_A, n)]
    # Execute
    s = testing.sample_ternary(SEED_A, n)
    # Assert
    assert s.tolist() == expected


# -- sample_ternary_packed (the ephemeral u of a public-key encryption) ----------------------


def packed_trits(words: list[int], n: int) -> list[int]:
    """The documented construction: 8 base-3 digits of r / 2^64 per 64-bit word r, each minus 1."""
    out: list[int] = []
    for r in words:
        for _ in range(8):
            p = 3 * r
            out.append((p >> 64) - 1)
            r = p & (2**64 - 1)
    return out[:n]


@pytest.mark.parametrize("n", [1, 7, 8, 9, 1000, 2051])
def test_ternary_packed_is_eight_base_3_digits_per_keystream_word(n: int) -> None:
    # Prepare: ceil(n / 8) words of OpenSSL's ChaCha20 keystream.
    expected = packed_trits(keystream_words(SEED_A, -(-n // 8)), n)
    # Execute
    s = testing.sample_ternary_packed(SEED_A, n)
    # Assert
    assert s.dtype == np.int8 and s.shape == (n,)
    assert s.tolist() == expected


def test_ternary_packed_digits_of_a_word_are_floor_of_3_to_the_8_times_r() -> None:
    # Prepare: the 8 digits of word w, read as a base-3 number, are floor(3^8 r_w / 2^64).
    words = keystream_words(SEED_B, 500)
    # Execute
    s = testing.sample_ternary_packed(SEED_B, 8 * len(words)).astype(np.int64) + 1
    # Assert
    digits = s.reshape(-1, 8)
    values = digits @ (3 ** np.arange(7, -1, -1, dtype=np.int64))
    assert values.tolist() == [(3**8 * r) >> 64 for r in words]


def test_ternary_packed_values_are_uniform_in_every_digit_position() -> None:
    # Prepare: 300,000 coefficients; each of the 8 positions within a word, and all pooled.
    n = 300_000
    # Execute
    s = testing.sample_ternary_packed(SEED_A, n).astype(np.int64) + 1
    # Assert
    assert chi_square(np.bincount(s, minlength=3), np.full(3, n / 3)) < CHI2_CRITICAL_1E6[2]
    for pos in range(8):
        col = s[pos::8]
        assert chi_square(np.bincount(col, minlength=3), np.full(3, len(col) / 3)) < CHI2_CRITICAL_1E6[2], pos


@pytest.mark.parametrize("shift", [1, 7, 8])
def test_ternary_packed_pairs_are_independent(shift: int) -> None:
    # Prepare: pairs (s[i], s[i + shift]) within a word (1), across a word boundary (7 from position 1,
    # mostly) and one word apart (8), 1/9 per cell; non-overlapping pairs.
    n = 300_000
    s = testing.sample_ternary_packed(SEED_B, n).astype(np.int64) + 1
    idx = np.arange(0, n - shift, 2 * shift)[: n // (2 * shift)]
    idx = np.concatenate([idx + k for k in range(shift)])
    idx = idx[idx + shift < n]
    # Execute
    observed = np.bincount(3 * s[idx] + s[idx + shift], minlength=9)
    # Assert
    assert chi_square(observed, np.full(9, len(idx) / 9)) < CHI2_CRITICAL_1E6[8]


# -- sample_cbd ----------------------------------------------------------------------------

ETA = 21


def cbd_probabilities() -> dict[int, float]:
    """P(e = k) for e = popcount(a) - popcount(b), a, b 21-bit: e + 21 ~ Binomial(42, 1/2)."""
    return {k: math.comb(2 * ETA, ETA + k) / 2 ** (2 * ETA) for k in range(-ETA, ETA + 1)}


def test_cbd_range_mean_and_variance() -> None:
    # Prepare
    n = 200_000
    # Execute
    e = testing.sample_cbd(SEED_A, n)
    # Assert: range; mean 0 with standard error sqrt(10.5 / n) = 0.0072; variance 10.5 with
    # standard error sqrt((mu4 - sigma^4) / n) = sqrt(215.25 / n) = 0.033, where
    # mu4 = 10.5 * (1 + 3 * 40 / 4) = 325.5 is the binomial's fourth central moment.
    assert e.dtype == np.int32 and e.shape == (n,)
    assert -ETA <= int(e.min()) and int(e.max()) <= ETA
    assert abs(float(e.mean())) <= SIGMAS * math.sqrt(10.5 / n)
    assert abs(float(e.var()) - 10.5) <= SIGMAS * math.sqrt(215.25 / n)


def test_cbd_matches_the_binomial_distribution_by_chi_square() -> None:
    # Prepare: cells -12..12, with the tails |k| >= 13 pooled (expected count about 6.9 each
    # side at n = 200,000; single cells further out expect fewer than 5): 27 cells, df = 26.
    n, tail = 200_000, 13
    p = cbd_probabilities()
    cells = [sum(p[k] for k in range(-ETA, -tail + 1))]
    cells += [p[k] for k in range(-tail + 1, tail)]
    cells += [sum(p[k] for k in range(tail, ETA + 1))]
    expected = n * np.array(cells)
    # Execute
    e = testing.sample_cbd(SEED_B, n).astype(np.int64)
    clipped = np.clip(e, -tail, tail) + tail
    observed = np.bincount(clipped, minlength=2 * tail + 1)
    # Assert
    assert len(observed) == len(cells) == 27
    assert chi_square(observed, expected) < CHI2_CRITICAL_1E6[26]


def test_cbd_is_the_popcount_difference_of_two_21_bit_words() -> None:
    # Prepare: the documented construction, one 6-byte little-endian keystream word per
    # sample (OpenSSL's ChaCha20, key = seed, zero nonce), a = its low 21 bits, b = the next 21.
    n, mask = 1000, (1 << ETA) - 1
    enc = Cipher(algorithms.ChaCha20(SEED_A, bytes(16)), mode=None).encryptor()
    data = enc.update(bytes(6 * n))
    words = [int.from_bytes(data[6 * i : 6 * i + 6], "little") for i in range(n)]
    expected = [(w & mask).bit_count() - ((w >> ETA) & mask).bit_count() for w in words]
    # Execute
    e = testing.sample_cbd(SEED_A, n)
    # Assert
    assert e.tolist() == expected


# -- noise from AES-256-CTR (a stream for a secret key) ----------------------------------------

CTR_KEY = bytes(range(3, 35))
CTR_BLOCK = bytes(range(200, 212)) + (7).to_bytes(4, "big")


def aes_ctr_keystream_from(key: bytes, counter_block: bytes, n: int) -> bytes:
    from cryptography.hazmat.primitives.ciphers import modes

    enc = Cipher(algorithms.AES(key), modes.CTR(counter_block)).encryptor()
    return enc.update(bytes(n)) + enc.finalize()


def with_paths(fn: Callable[[], Any], scalar: bool, portable: bool, ni: bool = False) -> Any:
    """fn() with the SIMD path forced off (scalar), the AES kernel forced to the CT one (portable) or to AES-NI."""
    s, p, a = testing.set_force_scalar(scalar), testing.aes256_force_portable(portable), testing.aes256_force_ni(ni)
    try:
        return fn()
    finally:
        testing.aes256_force_ni(a)
        testing.aes256_force_portable(p)
        testing.set_force_scalar(s)


# (scalar, portable, ni): fast (VAES or AES-NI); AES-NI; the AVX2 converter over the CT AES; all scalar.
PATHS = [(False, False, False), (False, False, True), (False, True, False), (True, False, False)]


@pytest.mark.parametrize(("scalar", "portable", "ni"), PATHS)
@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 255, 256, 257, 1000, 4096])
def test_cbd_from_aes_ctr_is_the_popcount_difference_of_6_byte_words(
    n: int, scalar: bool, portable: bool, ni: bool
) -> None:
    # Prepare: the documented construction over OpenSSL's AES-256-CTR keystream, exactly as for ChaCha20.
    mask = (1 << ETA) - 1
    data = aes_ctr_keystream_from(CTR_KEY, CTR_BLOCK, 6 * n)
    words = [int.from_bytes(data[6 * i : 6 * i + 6], "little") for i in range(n)]
    expected = [(w & mask).bit_count() - ((w >> ETA) & mask).bit_count() for w in words]
    # Execute
    fast = with_paths(lambda: testing.sample_cbd_ctr(CTR_KEY, CTR_BLOCK, n), scalar, portable, ni)
    reference = with_paths(lambda: testing.sample_cbd_ctr(CTR_KEY, CTR_BLOCK, n, reference=True), scalar, portable, ni)
    # Assert
    assert fast.dtype == np.int32 and fast.shape == (n,)
    assert fast.tolist() == expected
    np.testing.assert_array_equal(reference, fast)


@pytest.mark.parametrize(("scalar", "portable", "ni"), PATHS)
@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 1000, 2051, 4096])
def test_ternary_packed_from_aes_ctr_is_eight_base_3_digits_per_word(
    n: int, scalar: bool, portable: bool, ni: bool
) -> None:
    # Prepare: ceil(n / 8) little-endian 8-byte words of OpenSSL's AES-256-CTR keystream.
    data = aes_ctr_keystream_from(CTR_KEY, CTR_BLOCK, 8 * -(-n // 8))
    words = [int.from_bytes(data[8 * i : 8 * i + 8], "little") for i in range(len(data) // 8)]
    expected = packed_trits(words, n)
    # Execute
    fast = with_paths(lambda: testing.sample_ternary_packed_ctr(CTR_KEY, CTR_BLOCK, n), scalar, portable, ni)
    reference = with_paths(
        lambda: testing.sample_ternary_packed_ctr(CTR_KEY, CTR_BLOCK, n, reference=True), scalar, portable, ni
    )
    # Assert
    assert fast.dtype == np.int8 and fast.shape == (n,)
    assert fast.tolist() == expected
    np.testing.assert_array_equal(reference, fast)


def test_cbd_from_aes_ctr_has_the_binomial_mean_and_variance() -> None:
    # Prepare / Execute (bounds as in test_cbd_range_mean_and_variance)
    n = 200_000
    e = testing.sample_cbd_ctr(SEED_B, bytes(16), n)
    # Assert
    assert -ETA <= int(e.min()) and int(e.max()) <= ETA
    assert abs(float(e.mean())) <= SIGMAS * math.sqrt(10.5 / n)
    assert abs(float(e.var()) - 10.5) <= SIGMAS * math.sqrt(215.25 / n)


@pytest.mark.parametrize("reference", [False, True])
def test_noise_from_aes_ctr_refuses_a_stream_for_a_public_key(reference: bool) -> None:
    # Prepare: a stream constructed for public use may take the table AES, which is not constant-time.
    for scalar in (False, True):
        for call in (
            lambda: testing.sample_cbd_ctr(CTR_KEY, CTR_BLOCK, 8, reference=reference, use="public"),
            lambda: testing.sample_ternary_packed_ctr(CTR_KEY, CTR_BLOCK, 8, reference=reference, use="public"),
        ):
            # Execute / Assert
            with pytest.raises(ValueError, match="secret use"):
                with_paths(call, scalar, False)


# -- determinism and seeds --------------------------------------------------------------

SAMPLERS = {
    "uniform": lambda seed: testing.sample_uniform_mod(seed, UNIFORM_MODULI[1], 4096),
    "ternary": lambda seed: testing.sample_ternary(seed, 4096),
    "ternary_packed": lambda seed: testing.sample_ternary_packed(seed, 4096),
    "cbd": lambda seed: testing.sample_cbd(seed, 4096),
}


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_sampler_is_deterministic_in_its_seed(name: str) -> None:
    # Prepare
    sample = SAMPLERS[name]
    # Execute
    first, second = sample(SEED_A), sample(bytes(SEED_A))
    # Assert
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_sampler_outputs_differ_for_different_seeds(name: str) -> None:
    # Prepare: seeds differing in the first and in the last byte only.
    sample = SAMPLERS[name]
    flipped_last = SEED_A[:31] + bytes([SEED_A[31] ^ 1])
    flipped_first = bytes([SEED_A[0] ^ 0x80]) + SEED_A[1:]
    # Execute
    base, last, first = sample(SEED_A), sample(flipped_last), sample(flipped_first)
    # Assert: 4096 draws agreeing by chance is impossible in practice; require most to differ.
    for other in (last, first):
        assert np.mean(base != other) > 0.5


@pytest.mark.parametrize("seed_len", [0, 31, 33])
def test_samplers_reject_a_seed_that_is_not_32_bytes(seed_len: int) -> None:
    # Prepare
    seed = bytes(seed_len)
    # Execute / Assert
    for call in (
        lambda: testing.sample_uniform_mod(seed, 97, 8),
        lambda: testing.sample_ternary(seed, 8),
        lambda: testing.sample_ternary_packed(seed, 8),
        lambda: testing.sample_cbd(seed, 8),
    ):
        with pytest.raises(ValueError, match="32 bytes"):
            call()


# -- secret keys -----------------------------------------------------------------------------


def secret_coefficients_of(keys: xcloud.KeySet) -> np.ndarray:
    """The ternary secret of a key set, decoded from its key file (``secret_bytes``).

    The key format (cpp/src/ckks/keys.cpp) ends with the secret packed two bits
    per coefficient, least significant bits first (codes 0, 1, 2 for 0, 1, -1),
    then a 32-byte SHA-256 checksum; the kernel has no other way out for it.
    Code 3 never occurs in a secret (it would in any other slice: a quarter of
    the 2-bit groups of public residues).
    """
    data = keys.secret_bytes()
    n = keys.ctx.n
    packed = np.frombuffer(data[-32 - n // 4 : -32], dtype=np.uint8)
    codes = ((packed[:, None] >> np.array([0, 2, 4, 6], dtype=np.uint8)) & 3).reshape(-1)
    assert set(np.unique(codes).tolist()) <= {0, 1, 2}
    return np.where(codes == 2, -1, codes).astype(np.int8)


def test_keygen_secret_coefficients_are_uniform_ternary() -> None:
    # Prepare: keys from the OS CSPRNG at the default (secure) parameters.
    ctx = xcloud.CkksContext()
    # Execute
    secrets = [secret_coefficients_of(ctx.keygen()) for _ in range(4)]
    # Assert: ternary, N coefficients each, fresh per call, about 1/3 each overall.
    for s in secrets:
        assert s.shape == (ctx.n,)
        assert set(np.unique(s).tolist()) <= {-1, 0, 1}
    assert not np.array_equal(secrets[0], secrets[1])
    pooled = np.concatenate(secrets).astype(np.int64)
    observed = np.bincount(pooled + 1, minlength=3)
    assert chi_square(observed, np.full(3, len(pooled) / 3)) < CHI2_CRITICAL_1E6[2]
