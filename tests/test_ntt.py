"""Known-answer and differential tests of the negacyclic NTT (cpp/src/ring/ntt.h).

The reference is schoolbook multiplication in Z_q[X]/(X^N + 1) in Python
integers: the NTT is correct when forward(a) * forward(b) (pointwise mod q),
transformed back, equals the naive negacyclic product.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from xcloud._native import testing

DEGREES = [16, 64, 256, 1024]
PRIME_BITS = [20, 36, 50]


def ntt_prime(bits: int, n: int) -> int:
    """The largest `bits`-bit prime = 1 (mod 2n), from the kernel's generator."""
    return int(testing.generate_ntt_primes(bits, 2 * n, 1)[0])


def random_residues(rng: np.random.Generator, q: int, n: int) -> np.ndarray:
    return rng.integers(0, q, size=n, dtype=np.uint64)


def naive_negacyclic_product(a: np.ndarray, b: np.ndarray, q: int) -> list[int]:
    """Schoolbook a * b mod (X^N + 1, q) in Python integers: O(N^2)."""
    n = len(a)
    b_obj = np.array([int(v) for v in b], dtype=object)
    full = np.zeros(2 * n, dtype=object)  # the linear product, degree < 2N - 1
    for i, ai in enumerate(int(v) for v in a):
        full[i : i + n] += ai * b_obj
    # X^N = -1: the upper half wraps round with a minus sign.
    return [int(v) % q for v in full[:n] - full[n:]]


def bit_reverse(x: int, bits: int) -> int:
    return int(format(x, f"0{bits}b")[::-1], 2) if bits else 0


def evaluate(coeffs: np.ndarray, x: int, q: int) -> int:
    """A(x) mod q by Horner's rule."""
    acc = 0
    for c in reversed([int(v) for v in coeffs]):
        acc = (acc * x + c) % q
    return acc


# -- known answers ---------------------------------------------------------------


@pytest.mark.parametrize("bits", PRIME_BITS)
@pytest.mark.parametrize("n", DEGREES)
def test_ntt_product_matches_naive_negacyclic_product(n: int, bits: int) -> None:
    # Prepare
    q = ntt_prime(bits, n)
    rng = np.random.default_rng(1000 * n + bits)
    a, b = random_residues(rng, q, n), random_residues(rng, q, n)
    expected = naive_negacyclic_product(a, b, q)
    # Execute
    fa, fb = testing.ntt_forward(q, n, a), testing.ntt_forward(q, n, b)
    pointwise = np.array([int(x) * int(y) % q for x, y in zip(fa, fb, strict=True)], dtype=np.uint64)
    product = testing.ntt_inverse(q, n, pointwise)
    # Assert
    assert [int(v) for v in product] == expected


@pytest.mark.parametrize("bits", [20, 50])
def test_ntt_product_of_extreme_residues(bits: int) -> None:
    # Prepare: all coefficients q - 1 (= -1), the largest inputs the transform accepts.
    n = 64
    q = ntt_prime(bits, n)
    a = np.full(n, q - 1, dtype=np.uint64)
    expected = naive_negacyclic_product(a, a, q)
    # Execute
    fa = testing.ntt_forward(q, n, a)
    product = testing.ntt_inverse(q, n, np.array([int(x) * int(x) % q for x in fa], dtype=np.uint64))
    # Assert
    assert int(fa.max()) < q
    assert [int(v) for v in product] == expected


@pytest.mark.parametrize("bits", PRIME_BITS)
@pytest.mark.parametrize("n", [4, 16, 64])
def test_ntt_forward_evaluates_at_odd_powers_of_psi_in_bit_reversed_order(n: int, bits: int) -> None:
    # Prepare: the claim of ntt.h, a[k] = A(psi^(2*br(k)+1)) with br the log2(N)-bit reversal.
    q = ntt_prime(bits, n)
    psi = int(testing.ntt_psi(q, n))
    log_n = n.bit_length() - 1
    a = random_residues(np.random.default_rng(n + bits), q, n)
    expected = [evaluate(a, pow(psi, 2 * bit_reverse(k, log_n) + 1, q), q) for k in range(n)]
    # Execute
    out = testing.ntt_forward(q, n, a)
    # Assert
    assert [int(v) for v in out] == expected


@pytest.mark.parametrize("bits", PRIME_BITS)
@pytest.mark.parametrize("n", [4, 1024, 65536])
def test_ntt_psi_is_a_primitive_2n_th_root_of_unity(n: int, bits: int) -> None:
    # Prepare
    q = ntt_prime(bits, n)
    # Execute
    psi = int(testing.ntt_psi(q, n))
    # Assert: psi^N = -1 means the order of psi is exactly 2N (it divides 2N, not N).
    assert 1 < psi < q
    assert pow(psi, n, q) == q - 1


@pytest.mark.parametrize("bits", PRIME_BITS)
@pytest.mark.parametrize("n", [16, 4096])
def test_ntt_psi_is_the_first_root_found_from_g_equal_2_3_4(n: int, bits: int) -> None:
    # Prepare: modarith.h's construction, psi = g^((q-1)/2N) for the first g = 2, 3, ...
    # with psi^N = -1; the evaluation order of forward() (and so every KAT) depends on it.
    q = ntt_prime(bits, n)
    e = (q - 1) // (2 * n)
    expected = next(p for p in (pow(g, e, q) for g in range(2, q)) if pow(p, n, q) == q - 1)
    # Execute
    psi = int(testing.ntt_psi(q, n))
    # Assert
    assert psi == expected


# -- round trip and differential ------------------------------------------------


@pytest.mark.parametrize("bits", PRIME_BITS)
@pytest.mark.parametrize("n", [4, 16, 1024, 4096, 65536])
def test_ntt_inverse_undoes_forward(n: int, bits: int) -> None:
    # Prepare
    q = ntt_prime(bits, n)
    a = random_residues(np.random.default_rng(7 * n + bits), q, n)
    # Execute
    back = testing.ntt_inverse(q, n, testing.ntt_forward(q, n, a))
    again = testing.ntt_forward(q, n, testing.ntt_inverse(q, n, a))
    # Assert
    np.testing.assert_array_equal(back, a)
    np.testing.assert_array_equal(again, a)


@pytest.mark.parametrize("bits", PRIME_BITS)
@pytest.mark.parametrize("n", [4, 16, 256, 4096, 65536])
def test_ntt_dispatched_path_equals_scalar_reference_bit_for_bit(n: int, bits: int) -> None:
    # Prepare
    q = ntt_prime(bits, n)
    rng = np.random.default_rng(13 * n + bits)
    a = random_residues(rng, q, n)
    a[:2] = [0, q - 1]  # the extremes of the input range
    # Execute
    fast_fwd, ref_fwd = testing.ntt_forward(q, n, a), testing.ntt_forward(q, n, a, scalar=True)
    fast_inv, ref_inv = testing.ntt_inverse(q, n, a), testing.ntt_inverse(q, n, a, scalar=True)
    # Assert
    np.testing.assert_array_equal(fast_fwd, ref_fwd)
    np.testing.assert_array_equal(fast_inv, ref_inv)


# -- bad input: one test per documented failure -------------------------------------


@pytest.mark.parametrize("transform", [testing.ntt_forward, testing.ntt_inverse], ids=["forward", "inverse"])
def test_ntt_rejects_a_residue_not_below_q(transform: Callable[..., np.ndarray]) -> None:
    # Prepare
    n, q = 16, ntt_prime(36, 16)
    a = np.zeros(n, dtype=np.uint64)
    a[5] = q
    # Execute / Assert
    with pytest.raises(ValueError, match=r"\[0, q\)"):
        transform(q, n, a)


@pytest.mark.parametrize("length", [0, 15, 17, 32])
@pytest.mark.parametrize("transform", [testing.ntt_forward, testing.ntt_inverse], ids=["forward", "inverse"])
def test_ntt_rejects_an_array_of_the_wrong_length(transform: Callable[..., np.ndarray], length: int) -> None:
    # Prepare
    n, q = 16, ntt_prime(36, 16)
    # Execute / Assert
    with pytest.raises(ValueError, match="length"):
        transform(q, n, np.zeros(length, dtype=np.uint64))


@pytest.mark.parametrize("transform", [testing.ntt_forward, testing.ntt_inverse], ids=["forward", "inverse"])
def test_ntt_rejects_a_composite_modulus(transform: Callable[..., np.ndarray]) -> None:
    # Prepare: 97 * 193 = 18721 = 1 + 585 * 32, so it is 1 mod 2N for N = 16 but not prime.
    n, q = 16, 97 * 193
    assert (q - 1) % (2 * n) == 0
    # Execute / Assert
    with pytest.raises(ValueError, match="not a prime"):
        transform(q, n, np.zeros(n, dtype=np.uint64))


@pytest.mark.parametrize("transform", [testing.ntt_forward, testing.ntt_inverse], ids=["forward", "inverse"])
def test_ntt_rejects_a_prime_that_is_not_1_mod_2n(transform: Callable[..., np.ndarray]) -> None:
    # Prepare: 65537 = 1 + 2^16 is 1 mod 2N only for N <= 2^15; 8191 is 2^13 - 1, never 1 mod 32.
    for n, q in [(16, 8191), (65536, 65537)]:
        assert testing.is_prime(q)
        assert (q - 1) % (2 * n) != 0
        # Execute / Assert
        with pytest.raises(ValueError, match="1 mod 2n"):
            transform(q, n, np.zeros(n, dtype=np.uint64))


def test_ntt_rejects_a_prime_of_50_bits_or_more() -> None:
    # Prepare: the smallest prime = 1 mod 32 above 2^50 (the SIMD path needs q < 2^50).
    n = 16
    q = 2**50 + 1
    while not testing.is_prime(q):
        q += 2 * n
    # Execute / Assert
    with pytest.raises(ValueError, match="below 2\\^50"):
        testing.ntt_forward(q, n, np.zeros(n, dtype=np.uint64))


@pytest.mark.parametrize("n", [0, 2, 12, 48, 2**17])
def test_ntt_rejects_a_degree_that_is_not_a_power_of_two_in_range(n: int) -> None:
    # Prepare: a prime = 1 mod 2^18, so only the degree is wrong.
    q = ntt_prime(36, 2**17)
    # Execute / Assert
    with pytest.raises(ValueError, match="power of two"):
        testing.ntt_psi(q, n)


# -- the SIMD kernel's reduction schedules ------------------------------------------
# ntt_avx2.cpp skips the modular reduction of a stage whenever a bound on the
# values allows it, so the stages it reduces depend on the prime's size (from
# none at all for 36-bit primes to every stage of the 50-bit inverse) and on
# the degree (which sets the pass structure: radix-4 passes, a radix-2 stage
# when the stage count is odd, two-group side-by-side code where t = 4); 36-bit
# primes reduce nowhere up to N = 2^15 (once in the inverse at 2^16). The fused
# inverse(a*b) starts from another bound (a product, |.| < 3q/4 + 1) and so has
# schedules of its own. Every size class, at every degree from 2^3 to 2^15,
# with the inputs that stretch the bounds most, must agree bit for bit with
# the scalar reference.

SCHEDULE_BITS = [20, 30, 36, 40, 44, 46, 47, 48, 49, 50]
SCHEDULE_DEGREES = [2**k for k in range(3, 16)]


def extreme_inputs(rng: np.random.Generator, q: int, n: int) -> list[np.ndarray]:
    """All q - 1, alternating 0 / q - 1, a top-heavy random draw, uniform random."""
    alternating = np.where(np.arange(n) % 2 == 1, q - 1, 0).astype(np.uint64)
    top = (q - 1 - rng.integers(0, 1 << 10, size=n)).astype(np.uint64)
    return [np.full(n, q - 1, dtype=np.uint64), alternating, top, random_residues(rng, q, n)]


@pytest.mark.skipif(not testing.simd_supported(), reason="no AVX2 + FMA kernels in this build or CPU")
@pytest.mark.parametrize("bits", SCHEDULE_BITS)
@pytest.mark.parametrize("n", SCHEDULE_DEGREES)
def test_ntt_every_prime_size_and_degree_equals_scalar_reference(n: int, bits: int) -> None:
    # Prepare: the largest prime of the size (the tightest bounds) and a smaller
    # one (small sizes at large degrees have fewer primes = 1 mod 2N, or none).
    primes: list[int] = []
    for count in (2, 1):
        try:
            primes = [int(p) for p in testing.generate_ntt_primes(bits, 2 * n, count)]
            break
        except ValueError:
            continue
    if not primes:
        pytest.skip(f"no {bits}-bit prime = 1 mod {2 * n}")
    rng = np.random.default_rng(31 * n + bits)
    for q in primes:
        for a in extreme_inputs(rng, q, n):
            # Execute
            fwd, fwd_ref = testing.ntt_forward(q, n, a), testing.ntt_forward(q, n, a, scalar=True)
            inv, inv_ref = testing.ntt_inverse(q, n, a), testing.ntt_inverse(q, n, a, scalar=True)
            # Assert: identical to the reference, hence canonical
            np.testing.assert_array_equal(fwd, fwd_ref)
            np.testing.assert_array_equal(inv, inv_ref)
            assert int(fwd.max()) < q and int(inv.max()) < q
            # The fused inverse(a*b), with b the extreme pattern reversed and a random one.
            for b in (a[::-1].copy(), random_residues(rng, q, n)):
                fused = testing.ntt_inverse_mul(q, n, a, b)
                np.testing.assert_array_equal(fused, testing.ntt_inverse_mul(q, n, a, b, scalar=True))


@pytest.mark.skipif(not testing.simd_supported(), reason="no AVX2 + FMA kernels in this build or CPU")
@pytest.mark.parametrize("bits", [20, 36, 47, 48, 50])
@pytest.mark.parametrize("n", [8, 16, 32, 1024, 4096, 8192])
def test_inverse_mul_encode_minus_equals_reference(n: int, bits: int) -> None:
    # The coefficient encoding's fused last stage (c0 = round(x*scale) + e -
    # inverse(a*b)) against the reference transform and the scalar pass, on
    # both pass structures (odd and even stage counts), full and partial
    # blocks, float32 and float64 values, with extreme residues and noise.
    q = ntt_prime(bits, n)
    rng = np.random.default_rng(7 * n + bits)
    e = rng.integers(-(2**31) + 1, 2**31 - 1, n).astype(np.int32)
    e[:4] = [2**31 - 1, -(2**31) + 1, 0, -1]
    for a in extreme_inputs(rng, q, n)[:2] + [random_residues(rng, q, n)]:
        b = random_residues(rng, q, n)
        for count in sorted({0, 1, n // 2 + 3, n - 1, n}):
            for x in (rng.uniform(-1, 1, count).astype(np.float32), rng.uniform(-1, 1, count)):
                for scale in (2.0**30, 2.0**50, 2.0**52):  # below and above the 2^51 - 2^31 fast path
                    fused = testing.ntt_inverse_mul_encode_minus(q, n, a, b, x, scale, e)
                    ref = testing.ntt_inverse_mul_encode_minus(q, n, a, b, x, scale, e, scalar=True)
                    np.testing.assert_array_equal(fused, ref)
    # And the reference is the composition it stands for.
    x = rng.uniform(-1, 1, n - 5)
    via_parts = testing.poly_encode_minus(x, 2.0**30, e, testing.ntt_inverse_mul(q, n, a, b, scalar=True), q)
    np.testing.assert_array_equal(
        testing.ntt_inverse_mul_encode_minus(q, n, a, b, x, 2.0**30, e, scalar=True), via_parts
    )


@pytest.mark.skipif(not testing.simd_supported(), reason="no AVX2 + FMA kernels in this build or CPU")
@pytest.mark.parametrize("bits", [36, 40, 47, 48, 49, 50])
def test_ntt_round_trip_at_the_largest_degree_for_the_tight_prime_sizes(bits: int) -> None:
    # Prepare: N = 2^16, the most stages (the longest stretches without reduction).
    n = 2**16
    q = ntt_prime(bits, n)
    a = extreme_inputs(np.random.default_rng(bits), q, n)[0]
    # Execute
    fwd = testing.ntt_forward(q, n, a)
    # Assert
    np.testing.assert_array_equal(fwd, testing.ntt_forward(q, n, a, scalar=True))
    np.testing.assert_array_equal(testing.ntt_inverse(q, n, fwd), a)
    np.testing.assert_array_equal(testing.ntt_inverse(q, n, a), testing.ntt_inverse(q, n, a, scalar=True))
    b = random_residues(np.random.default_rng(bits + 1), q, n)
    np.testing.assert_array_equal(testing.ntt_inverse_mul(q, n, a, b), testing.ntt_inverse_mul(q, n, a, b, scalar=True))
