"""Tests of the CKKS encoder (cpp/src/ckks/encoder.h): N reals <-> a real polynomial.

The definition checked here, from encoder.h: slot k holds z_k = m(zeta^(4k+1))
with zeta = exp(i pi / N), and two reals share a slot: z_k = x_k + i x_{k+N/2}.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import xcloud
from xcloud._native import Params, testing

SQRT2 = math.sqrt(2.0)


@functools.cache
def params(log_n: int) -> Params:
    """Native parameters of ring degree 2^log_n (insecure below 2^11: the encoder does not care)."""
    return xcloud.CkksContext.insecure(log_n=log_n)._params


def slot_points(n: int) -> np.ndarray:
    """zeta^(4k+1) for k < N/2, zeta = exp(i pi / N)."""
    k = np.arange(n // 2)
    return np.exp(1j * np.pi * (4 * k + 1) / n)


def evaluate_at_slots(m: np.ndarray) -> np.ndarray:
    """m(zeta^(4k+1)) for every slot k, directly from the definition (O(N^2))."""
    n = len(m)
    k, j = np.meshgrid(np.arange(n // 2), np.arange(n), indexing="ij")
    # zeta^((4k+1) j), with the exponent reduced mod 2N before the exponential for accuracy.
    powers = np.exp(1j * np.pi * (((4 * k + 1) * j) % (2 * n)) / n)
    return powers @ m


def random_values(log_n: int, seed: int, magnitude: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-magnitude, magnitude, size=1 << log_n)


# -- round trip -------------------------------------------------------------------------------------


@settings(deadline=None, max_examples=60)
@given(log_n=st.integers(min_value=4, max_value=13), seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_decode_inverts_encode_on_random_vectors(log_n: int, seed: int) -> None:
    # Prepare
    x = random_values(log_n, seed)
    # Execute
    back = testing.decode(params(log_n), testing.encode(params(log_n), x))
    # Assert
    assert np.max(np.abs(back - x)) < 1e-12


@settings(deadline=None, max_examples=60)
@given(
    x=hnp.arrays(
        np.float64,
        st.sampled_from([16, 32, 64]),
        elements=st.floats(-1.0, 1.0, allow_subnormal=False),
    )
)
def test_decode_inverts_encode_on_arbitrary_values(x: np.ndarray) -> None:
    # Prepare
    p = params(len(x).bit_length() - 1)
    # Execute
    back = testing.decode(p, testing.encode(p, x))
    # Assert
    assert np.max(np.abs(back - x)) < 1e-12


@pytest.mark.parametrize("count", [0, 1, 7, 8, 9, 15])
def test_missing_values_encode_as_zeros(count: int) -> None:
    # Prepare: N = 16, so slots pair x_k with x_{k+8}; counts either side of N/2.
    p = params(4)
    x = random_values(4, count)
    padded = np.where(np.arange(16) < count, x, 0.0)
    # Execute
    m_short, m_padded = testing.encode(p, x[:count]), testing.encode(p, padded)
    back = testing.decode(p, m_short)
    # Assert
    np.testing.assert_array_equal(m_short, m_padded)
    assert np.max(np.abs(back - padded)) < 1e-12


# -- the coefficient bound |m_j| <= sqrt(2) max |x| -----------------------------------------


@settings(deadline=None, max_examples=60)
@given(
    log_n=st.integers(min_value=4, max_value=12),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    magnitude=st.sampled_from([1e-6, 1.0, 1e6]),
)
def test_coefficients_obey_the_sqrt2_bound(log_n: int, seed: int, magnitude: float) -> None:
    # Prepare
    x = random_values(log_n, seed, magnitude)
    # Execute
    m = testing.encode(params(log_n), x)
    # Assert (1e-12 relative slack for floating-point rounding)
    assert np.max(np.abs(m)) <= SQRT2 * np.max(np.abs(x)) * (1 + 1e-12)


@pytest.mark.parametrize("log_n", [4, 8, 12])
def test_all_ones_encodes_to_one_plus_x_to_the_half_n(log_n: int) -> None:
    # Prepare: every slot is 1 + i, and X^(N/2) = i at every slot point.
    n = 1 << log_n
    expected = np.zeros(n)
    expected[0] = expected[n // 2] = 1.0
    # Execute
    m = testing.encode(params(log_n), np.ones(n))
    # Assert
    assert np.max(np.abs(m)) <= SQRT2 * (1 + 1e-12)
    np.testing.assert_allclose(m, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("log_n", [4, 8, 12])
def test_alternating_signs_attain_the_sqrt2_bound(log_n: int) -> None:
    # Prepare: x_k = (-1)^k gives z_k = (-1)^k (1 + i) = m(zeta^(4k+1)) for m = sqrt(2) X^(N/4),
    # since (zeta^(4k+1))^(N/4) = (-1)^k exp(i pi / 4): the bound is tight.
    n = 1 << log_n
    x = (-1.0) ** np.arange(n)
    expected = np.zeros(n)
    expected[n // 4] = SQRT2
    # Execute
    m = testing.encode(params(log_n), x)
    # Assert
    assert np.max(np.abs(m)) <= SQRT2 * (1 + 1e-12)
    np.testing.assert_allclose(m, expected, rtol=0, atol=1e-12)


# -- linearity ----------------------------------------------------------------------------------


@settings(deadline=None, max_examples=40)
@given(
    log_n=st.integers(min_value=4, max_value=12),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    a=st.floats(-10.0, 10.0),
    b=st.floats(-10.0, 10.0),
)
def test_encoding_is_linear(log_n: int, seed: int, a: float, b: float) -> None:
    # Prepare
    p = params(log_n)
    x, y = random_values(log_n, seed), random_values(log_n, seed + 1)
    # Execute
    combined = testing.encode(p, a * x + b * y)
    separate = a * testing.encode(p, x) + b * testing.encode(p, y)
    # Assert: both sides have coefficients of size at most sqrt(2) (|a| + |b|).
    assert np.max(np.abs(combined - separate)) <= 1e-12 * max(1.0, abs(a) + abs(b))


# -- the slot definition -----------------------------------------------------------------------------


@pytest.mark.parametrize("log_n", [4, 6, 8])
def test_encoded_polynomial_takes_the_slot_values_at_the_slot_points(log_n: int) -> None:
    # Prepare
    n = 1 << log_n
    x = random_values(log_n, 100 + log_n)
    # Execute
    m = testing.encode(params(log_n), x)
    z = evaluate_at_slots(m)
    # Assert: z_k = m(zeta^(4k+1)) = x_k + i x_{k+N/2}.
    np.testing.assert_allclose(z, x[: n // 2] + 1j * x[n // 2 :], rtol=0, atol=1e-12)


@pytest.mark.parametrize("log_n", [4, 6, 8])
def test_decode_evaluates_any_real_polynomial_at_the_slot_points(log_n: int) -> None:
    # Prepare: an arbitrary real polynomial, not one produced by encode.
    m = random_values(log_n, 200 + log_n)
    z = evaluate_at_slots(m)
    # Execute
    x = testing.decode(params(log_n), m)
    # Assert
    np.testing.assert_allclose(x, np.concatenate([z.real, z.imag]), rtol=0, atol=1e-12)


def test_slot_points_are_the_odd_2n_th_roots_one_of_each_conjugate_pair() -> None:
    # Prepare: N = 16; the 2N-th primitive roots are zeta^e for odd e.
    n = 16
    # Execute
    exponents = {(4 * k + 1) % (2 * n) for k in range(n // 2)}
    conjugates = {(-e) % (2 * n) for e in exponents}
    # Assert: together they are all N odd exponents, disjoint: the slot map is a bijection.
    assert exponents.isdisjoint(conjugates)
    assert exponents | conjugates == set(range(1, 2 * n, 2))
    np.testing.assert_allclose(slot_points(n) ** (n // 2), 1j, atol=1e-12)


# -- bad input -------------------------------------------------------------------------------------


def test_encode_rejects_more_than_n_values() -> None:
    # Prepare
    p = params(4)
    # Execute / Assert
    with pytest.raises(ValueError, match="at most N"):
        testing.encode(p, np.zeros(17))


@pytest.mark.parametrize("length", [0, 15, 17])
def test_decode_rejects_a_coefficient_vector_of_the_wrong_length(length: int) -> None:
    # Prepare
    p = params(4)
    # Execute / Assert
    with pytest.raises(ValueError, match="exactly N"):
        testing.decode(p, np.zeros(length))
