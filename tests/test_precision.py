"""Precision tests: decrypt(encrypt(x)) and decrypt(aggregate(encrypt(x_i))) against numpy.

The claims (from the issue, for the DEFAULT context, inputs in [-1, 1]):

- a fresh ciphertext decrypts with max abs error <= 2^-20, in secret-key mode
  and in public-key mode (``keys.public_only()`` encrypts in public-key mode);
- the weighted aggregate of 1,000 such inputs with weights summing to 1 has
  max abs error <= 2^-16 against numpy's weighted sum; so does the compact
  ('seeded-sum') aggregate of up to MAX_SEEDS_PER_BLOCK secret-key inputs,
  which decrypts to the same bits as the full one.

Property tests over shapes and dtypes use the small insecure context
(N = 1024) to stay fast; the precision claims use ``CkksContext()``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import xcloud

FRESH_BOUND = 2.0**-20
AGGREGATE_BOUND = 2.0**-16
N_INPUTS = 1000
AGG_LEN = 4096  # one block of the default context per input: keeps 1,000 inputs fast


def max_abs_error(decrypted: np.ndarray, expected: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(decrypted, dtype=np.float64) - np.asarray(expected, dtype=np.float64))))


def encrypt_in_mode(keys: xcloud.KeySet, x: np.ndarray, mode: str) -> xcloud.CiphertextBlocks:
    """Secret mode with the full keys; public mode the way a sender does it: with public-only keys."""
    if mode == "secret":
        return xcloud.encrypt_blocks(keys, x)
    return xcloud.encrypt_blocks(keys.public_only(), x)


def adversarial_inputs(n: int, max_value: float) -> dict[str, np.ndarray]:
    """Named inputs that stress the encoder's extremes (length n, not a multiple of N)."""
    spike = np.zeros(n)
    spike[n // 3] = max_value
    neg_spike = np.zeros(n)
    neg_spike[-1] = -max_value
    edges = np.where(np.arange(n) % 7 < 3, max_value, -max_value)
    tiny = np.array([5e-324, -5e-324, 2.2250738585072014e-308, -1e-300, 1e-45, -1.4e-45, 1e-30, 0.0, -0.0])
    return {
        "all_plus_one": np.full(n, max_value),
        "all_minus_one": np.full(n, -max_value),
        "alternating": np.where(np.arange(n) % 2 == 0, max_value, -max_value),
        "single_spike": spike,
        "single_negative_spike_at_end": neg_spike,
        "zeros": np.zeros(n),
        "exactly_at_max_value_blocks": edges,
        "tiny_denormal_ish": np.resize(tiny, n),
        "max_next_to_tiny": np.resize(np.array([max_value, 5e-324, -max_value, -5e-324]), n),
    }


# -- fresh ciphertexts, default context ------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mode", ["secret", "public"])
def test_fresh_precision_on_200k_random_values(default_keys, rng, mode, dtype):
    # Prepare
    x = rng.uniform(-1.0, 1.0, size=200_003).astype(dtype)
    # Execute
    ct = encrypt_in_mode(default_keys, x, mode)
    y = xcloud.decrypt_blocks(default_keys, ct)
    # Assert
    assert ct.origin == ("secret-key" if mode == "secret" else "public-key")
    assert y.dtype == dtype and y.shape == x.shape
    err = max_abs_error(y, x)
    assert err <= FRESH_BOUND, f"{mode}/{np.dtype(dtype).name}: max error 2^{math.log2(err):.2f} > 2^-20"


@pytest.mark.parametrize("mode", ["secret", "public"])
def test_fresh_precision_without_output_rounding(default_keys, rng, mode):
    """float32 inputs decrypted to float64: the kernel's own error, not float32's rounding."""
    # Prepare
    x = rng.uniform(-1.0, 1.0, size=50_000).astype(np.float32)
    # Execute
    ct = encrypt_in_mode(default_keys, x, mode)
    y = xcloud.decrypt_blocks(default_keys, ct, dtype="float64")
    # Assert
    assert y.dtype == np.float64
    assert max_abs_error(y, x) <= FRESH_BOUND


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mode", ["secret", "public"])
@pytest.mark.parametrize("case", sorted(adversarial_inputs(8, 1.0)))
def test_fresh_precision_on_adversarial_inputs(default_ctx, default_keys, mode, dtype, case):
    # Prepare: 3 full blocks and a partial one
    n = 3 * default_ctx.n + 123
    x = adversarial_inputs(n, default_ctx.max_value)[case].astype(dtype)
    assert np.max(np.abs(x)) <= default_ctx.max_value
    # Execute
    ct = encrypt_in_mode(default_keys, x, mode)
    y = xcloud.decrypt_blocks(default_keys, ct)
    # Assert
    assert y.dtype == dtype and y.shape == x.shape
    err = max_abs_error(y, x)
    assert err <= FRESH_BOUND, f"{case} {mode}/{np.dtype(dtype).name}: max error 2^{math.log2(err):.2f} > 2^-20"


@pytest.mark.parametrize("mode", ["secret", "public"])
def test_fresh_precision_at_a_larger_max_value(rng, mode):
    """With max_value = 4 the bound scales: error <= 2^-20 * max_value."""
    # Prepare
    ctx = xcloud.CkksContext(max_value=4.0)
    keys = ctx.keygen()
    x = np.concatenate([rng.uniform(-4.0, 4.0, size=20_000), [4.0, -4.0]])
    # Execute
    y = xcloud.decrypt_blocks(keys, encrypt_in_mode(keys, x, mode))
    # Assert
    assert max_abs_error(y, x) <= FRESH_BOUND * 4.0


# -- shapes, lengths and dtypes (property tests, small context) -------------

FLOAT_DTYPES = st.sampled_from([np.dtype(np.float32), np.dtype(np.float64)])


def _lengths(n: int) -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from([1, 2, n - 1, n, n + 1, 2 * n - 1, 2 * n + 1, 3 * n]), st.integers(1, 4 * n))


@st.composite
def flat_arrays(draw: st.DrawFn) -> np.ndarray:
    dtype = draw(FLOAT_DTYPES)
    length = draw(_lengths(1024))
    width = 32 if dtype == np.float32 else 64
    elems = st.floats(-1.0, 1.0, width=width, allow_nan=False, allow_infinity=False)
    return draw(hnp.arrays(dtype, length, elements=elems))


@st.composite
def shaped_arrays(draw: st.DrawFn) -> np.ndarray:
    dtype = draw(FLOAT_DTYPES)
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=5, min_side=1, max_side=9))
    width = 32 if dtype == np.float32 else 64
    elems = st.floats(-1.0, 1.0, width=width, allow_nan=False, allow_infinity=False)
    return draw(hnp.arrays(dtype, shape, elements=elems))


PROPERTY_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check_round_trip(ctx: xcloud.CkksContext, keys: xcloud.KeySet, x: np.ndarray, mode: str) -> None:
    # Execute
    ct = encrypt_in_mode(keys, x, mode)
    y = xcloud.decrypt_blocks(keys, ct)
    # Assert
    assert ct.shape == x.shape
    assert ct.size == x.size
    assert len(ct) == -(-x.size // ctx.n)
    assert ct.dtype == x.dtype.name
    assert isinstance(y, np.ndarray)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert max_abs_error(y, x) <= FRESH_BOUND


@PROPERTY_SETTINGS
@given(x=flat_arrays(), mode=st.sampled_from(["secret", "public"]))
def test_round_trip_preserves_length_and_dtype(small_ctx, small_keys, x, mode):
    _check_round_trip(small_ctx, small_keys, x, mode)


@PROPERTY_SETTINGS
@given(x=shaped_arrays(), mode=st.sampled_from(["secret", "public"]))
def test_round_trip_preserves_shape_and_dtype(small_ctx, small_keys, x, mode):
    _check_round_trip(small_ctx, small_keys, x, mode)


@pytest.mark.parametrize("shape", [(), (1,), (1, 1, 1), (4096,), (2, 4096), (3, 5, 7, 11), (4097, 1), (1, 8193)])
def test_round_trip_of_fixed_shapes_in_default_context(default_ctx, default_keys, rng, shape):
    # Prepare
    x = rng.uniform(-1.0, 1.0, size=shape)
    # Execute / Assert
    _check_round_trip(default_ctx, default_keys, np.asarray(x), "secret")


# -- aggregation, default context -------------------------------------------


def _encrypt_rows(keys: xcloud.KeySet, xs: np.ndarray, modes: list[str]) -> list[xcloud.CiphertextBlocks]:
    public = keys.public_only()
    return [xcloud.encrypt_blocks(keys if m == "secret" else public, row) for row, m in zip(xs, modes, strict=True)]


@pytest.fixture(scope="module")
def thousand_inputs(default_keys):
    """Cache of 1,000 encrypted inputs per (inputs, mode): encryption dominates these tests' cost."""
    cache: dict[tuple[str, str], tuple[np.ndarray, list[xcloud.CiphertextBlocks]]] = {}

    def get(inputs: str, mode: str) -> tuple[np.ndarray, list[xcloud.CiphertextBlocks]]:
        if (inputs, mode) not in cache:
            if inputs == "uniform_random":
                xs = np.random.default_rng(20).uniform(-1.0, 1.0, size=(N_INPUTS, AGG_LEN))
            else:
                xs = np.ones((N_INPUTS, AGG_LEN))
            cache[inputs, mode] = (xs, _encrypt_rows(default_keys, xs, [mode] * N_INPUTS))
        return cache[inputs, mode]

    return get


@pytest.mark.parametrize(
    ("inputs", "mode"), [("uniform_random", "secret"), ("all_plus_one", "secret"), ("uniform_random", "public")]
)
def test_weighted_aggregate_of_1000_inputs(default_keys, thousand_inputs, rng, inputs, mode):
    # Prepare
    xs, cts = thousand_inputs(inputs, mode)
    weights = rng.dirichlet(np.ones(N_INPUTS))
    # Execute
    total = xcloud.aggregate(cts, weights)
    y = xcloud.decrypt_blocks(default_keys, total)
    # Assert
    assert total.origin == "aggregate"
    expected = np.tensordot(weights, xs, axes=1)
    err = max_abs_error(y, expected)
    assert err <= AGGREGATE_BOUND, f"{inputs}/{mode}: max error 2^{math.log2(err):.2f} > 2^-16"


@pytest.mark.parametrize("concentration", [0.01, 100.0])
def test_weighted_aggregate_of_1000_inputs_with_skewed_or_flat_weights(
    default_keys, thousand_inputs, rng, concentration
):
    """Concentration 0.01: one client holds almost all the weight, the others get weights
    near or below 2^-30; 100: nearly uniform weights, none exactly representable."""
    # Prepare
    xs, cts = thousand_inputs("uniform_random", "secret")
    weights = rng.dirichlet(np.full(N_INPUTS, concentration))
    # Execute
    y = xcloud.decrypt_blocks(default_keys, xcloud.aggregate(cts, weights))
    # Assert
    assert max_abs_error(y, np.tensordot(weights, xs, axes=1)) <= AGGREGATE_BOUND


def test_mean_of_1000_all_plus_one_inputs(default_keys, thousand_inputs):
    # Prepare
    xs, cts = thousand_inputs("all_plus_one", "secret")
    # Execute
    y = xcloud.decrypt_blocks(default_keys, xcloud.aggregate(cts))
    # Assert
    assert max_abs_error(y, xs.mean(axis=0)) <= AGGREGATE_BOUND


@pytest.mark.parametrize("k", [1, 2, 3, 5, 8])
def test_default_weights_give_the_mean(default_keys, rng, k):
    # Prepare
    xs = rng.uniform(-1.0, 1.0, size=(k, 3 * AGG_LEN + 5))
    cts = [xcloud.encrypt_blocks(default_keys, row) for row in xs]
    # Execute
    y = xcloud.decrypt_blocks(default_keys, xcloud.aggregate(cts))
    # Assert
    assert max_abs_error(y, xs.mean(axis=0)) <= AGGREGATE_BOUND


@settings(max_examples=40, deadline=None)
@given(
    weights=st.lists(st.floats(-4.0, 4.0, allow_nan=False, allow_infinity=False), min_size=1, max_size=6),
    length=st.sampled_from([1, 100, 1024, 1500]),
    seed=st.integers(0, 2**32 - 1),
)
def test_aggregate_with_arbitrary_real_weights(small_keys, weights, length, seed):
    """Any weights with |w| <= 4 on up to 6 fresh inputs: error <= 2^-16 * max(1, sum |w|)."""
    # Prepare
    rng = np.random.default_rng(seed)
    xs = rng.uniform(-1.0, 1.0, size=(len(weights), length))
    cts = [xcloud.encrypt_blocks(small_keys, row) for row in xs]
    # Execute
    y = xcloud.decrypt_blocks(small_keys, xcloud.aggregate(cts, weights))
    # Assert
    expected = np.tensordot(np.array(weights), xs, axes=1)
    assert max_abs_error(y, expected) <= AGGREGATE_BOUND * max(1.0, float(np.sum(np.abs(weights))))


@pytest.mark.parametrize("mode", ["secret", "public"])
def test_add_equals_sum_of_plaintexts(default_keys, rng, mode):
    # Prepare
    a = rng.uniform(-1.0, 1.0, size=(3, 3000))
    b = rng.uniform(-1.0, 1.0, size=(3, 3000))
    ca, cb = encrypt_in_mode(default_keys, a, mode), encrypt_in_mode(default_keys, b, mode)
    # Execute
    s1 = xcloud.add(ca, cb)
    s2 = ca + cb
    y1 = xcloud.decrypt_blocks(default_keys, s1)
    y2 = xcloud.decrypt_blocks(default_keys, s2)
    # Assert
    assert y1.shape == a.shape
    assert max_abs_error(y1, a + b) <= 2 * FRESH_BOUND
    assert np.array_equal(y1, y2)
    assert s1.to_bytes() == s2.to_bytes()


def test_aggregate_of_secret_and_public_key_ciphertexts(default_keys, rng):
    # Prepare: alternate secret-key and public-key senders under the same keys
    n_inputs = 200
    xs = rng.uniform(-1.0, 1.0, size=(n_inputs, AGG_LEN + 7))
    modes = ["secret" if i % 2 == 0 else "public" for i in range(n_inputs)]
    cts = _encrypt_rows(default_keys, xs, modes)
    weights = rng.dirichlet(np.ones(n_inputs))
    # Execute
    total = xcloud.aggregate(cts, weights)
    y = xcloud.decrypt_blocks(default_keys, total)
    # Assert
    assert {c.origin for c in cts} == {"secret-key", "public-key"}
    assert max_abs_error(y, np.tensordot(weights, xs, axes=1)) <= AGGREGATE_BOUND


def test_aggregate_of_aggregates_with_integer_weights(default_keys, rng):
    # Prepare
    a, b, c, d = rng.uniform(-1.0, 1.0, size=(4, 2 * AGG_LEN + 1))
    ca, cb, cc, cd = (xcloud.encrypt_blocks(default_keys, v) for v in (a, b, c, d))
    ab = xcloud.aggregate([ca, cb], [2, -1])
    cd_ = xcloud.aggregate([cc, cd], [1, 3])
    # Execute
    total = xcloud.aggregate([ab, cd_], [1, 2])
    y = xcloud.decrypt_blocks(default_keys, total)
    # Assert: 2a - b + 2c + 6d, values up to 11 in magnitude
    expected = 2 * a - b + 2 * c + 6 * d
    assert max_abs_error(y, expected) <= AGGREGATE_BOUND


def test_aggregate_of_weighted_aggregates(default_keys, rng):
    """Two groups averaged with real weights, then summed: the hierarchical FedAvg case."""
    # Prepare
    xs = rng.uniform(-1.0, 1.0, size=(6, AGG_LEN))
    cts = [xcloud.encrypt_blocks(default_keys, v) for v in xs]
    w1 = rng.dirichlet(np.ones(3)) / 2
    w2 = rng.dirichlet(np.ones(3)) / 2
    g1 = xcloud.aggregate(cts[:3], w1)
    g2 = xcloud.aggregate(cts[3:], w2)
    # Execute
    y = xcloud.decrypt_blocks(default_keys, xcloud.aggregate([g1, g2], [1, 1]))
    # Assert
    expected = np.tensordot(np.concatenate([w1, w2]), xs, axes=1)
    assert max_abs_error(y, expected) <= AGGREGATE_BOUND


@pytest.mark.parametrize("kind", ["secret", "public", "aggregate"])
def test_deserialised_ciphertext_decrypts_identically(default_ctx, default_keys, rng, kind):
    # Prepare
    x = rng.uniform(-1.0, 1.0, size=(2, 5000)).astype(np.float32)
    if kind == "aggregate":
        ct = xcloud.aggregate(
            [encrypt_in_mode(default_keys, x, "secret"), encrypt_in_mode(default_keys, x, "public")], [0.25, 0.75]
        )
    else:
        ct = encrypt_in_mode(default_keys, x, kind)
    # Execute
    back = xcloud.CiphertextBlocks.from_bytes(default_ctx, ct.to_bytes())
    # Assert
    y0 = xcloud.decrypt_blocks(default_keys, ct)
    y1 = xcloud.decrypt_blocks(default_keys, back)
    assert y1.shape == x.shape and y1.dtype == x.dtype
    assert y0.tobytes() == y1.tobytes()
    assert max_abs_error(y1, x) <= FRESH_BOUND


# -- compact (seeded-sum) aggregates, default context ---------------------------


@pytest.mark.parametrize("concentration", [0.01, 1.0, 100.0])
def test_compact_aggregate_of_the_most_seeds_meets_the_bound(default_keys, thousand_inputs, rng, concentration):
    # Prepare: as many secret-key inputs as one compact block may carry
    k = xcloud.crypto.blocks.MAX_SEEDS_PER_BLOCK
    xs, cts = thousand_inputs("uniform_random", "secret")
    xs, cts = xs[:k], cts[:k]
    weights = rng.dirichlet(np.full(k, concentration))
    # Execute
    total = xcloud.aggregate(cts, weights)
    y = xcloud.decrypt_blocks(default_keys, total)
    # Assert
    assert (total.c1_form, total.seeds_per_block) == ("seeded-sum", k)
    assert max_abs_error(y, np.tensordot(weights, xs, axes=1)) <= AGGREGATE_BOUND


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compact_aggregate_of_ten_200k_inputs_meets_the_bound(default_keys, rng, dtype):
    # Prepare
    xs = rng.uniform(-1.0, 1.0, size=(10, 200_003)).astype(dtype)
    cts = [xcloud.encrypt_blocks(default_keys, row) for row in xs]
    weights = rng.dirichlet(np.ones(10)) * np.where(np.arange(10) % 3 == 0, -1.0, 1.0)
    # Execute
    total = xcloud.aggregate(cts, weights)
    y = xcloud.decrypt_blocks(default_keys, total)
    # Assert
    assert total.c1_form == "seeded-sum" and y.dtype == dtype
    assert max_abs_error(y, np.tensordot(weights, xs.astype(np.float64), axes=1)) <= AGGREGATE_BOUND
