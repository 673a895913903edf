"""The randomness of differential privacy: the kernel's AES-256-CTR sampler and DPRandom.

Known answers recompute every value in numpy from the AES-256-CTR keystream
(itself pinned to NIST SP 800-38A in test_primitives_kat.py) with numpy's own
log, cos and sin; the AVX2 path must give the scalar reference's bits.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from scipy import stats

from xcloud import _native
from xcloud.models import GPT, GPTConfig
from xcloud.privacy import DPRandom, RecordDP, RecordDPConfig, noise_share

T = _native.testing
KEY = bytes(range(32))


@pytest.fixture(autouse=True)
def _restore_dispatch() -> Iterator[None]:
    before = T.set_force_scalar(False)
    T.set_force_scalar(before)
    yield
    T.set_force_scalar(before)


def keystream_words(key: bytes, n_words: int, segment: int = 0) -> np.ndarray:
    """The sampler's keystream as little-endian 8-byte words: AES-256-CTR from "XDP\\0" || LE64(segment) || 0."""
    counter_block = b"XDP\x00" + struct.pack("<Q", segment) + bytes(4)
    data = T.aes256_ctr_keystream(key, counter_block, 8 * n_words)
    return np.frombuffer(data, dtype="<u8")


def unit(words: np.ndarray) -> np.ndarray:
    return (words >> np.uint64(12)).astype(np.float64) * 2.0**-52


def expected_gaussian(key: bytes, n: int, std: float) -> np.ndarray:
    """Values 2k and 2k + 1 from words 8k..8k+7: four Box-Muller pairs, their cosine and sine sums over 2."""
    pairs = (n + 1) // 2
    w = keystream_words(key, 8 * pairs).reshape(pairs, 4, 2)
    r = np.sqrt(-2 * np.log(1 - unit(w[:, :, 0])))  # (pairs, 4)
    theta = 2 * np.pi * unit(w[:, :, 1])
    even = std * (r * np.cos(theta)).sum(axis=1) / 2
    odd = std * (r * np.sin(theta)).sum(axis=1) / 2
    return np.stack([even, odd], axis=1).reshape(-1)[:n]


# -- known answers ----------------------------------------------------------------------------------


def test_uniform_values_are_the_keystream_words() -> None:
    # Prepare
    sampler = _native.RealSampler(KEY)
    # Execute
    got = sampler.uniform(1000)
    # Assert: exactly (w >> 12) * 2^-52, in keystream order.
    np.testing.assert_array_equal(got, unit(keystream_words(KEY, 1000)))
    assert sampler.bytes_drawn == 8000


@pytest.mark.parametrize("scalar", [False, True], ids=["dispatch", "scalar"])
def test_gaussian_values_match_box_muller_in_numpy(scalar: bool) -> None:
    # Prepare
    T.set_force_scalar(scalar)
    sampler = _native.RealSampler(KEY)
    # Execute: an odd count, so the SIMD path's scalar tail is used too.
    got = sampler.gaussian(20_003, 1.7)
    # Assert: numpy's libm-based transform agrees to rounding.
    want = expected_gaussian(KEY, 20_003, 1.7)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-13)
    assert sampler.bytes_drawn == 64 * 10_002  # the odd last value drew its whole pair


def test_simd_and_scalar_paths_give_the_same_bits() -> None:
    if not T.simd_supported():
        pytest.skip("this build or CPU has no AVX2 kernels: nothing to compare against")
    # Prepare / Execute
    T.set_force_scalar(True)
    scalar = _native.RealSampler(KEY).gaussian(100_001, 0.3)
    T.set_force_scalar(False)
    simd = _native.RealSampler(KEY).gaussian(100_001, 0.3)
    # Assert
    assert scalar.tobytes() == simd.tobytes()


def test_calls_of_even_sizes_continue_one_keystream() -> None:
    # Prepare
    one, split = _native.RealSampler(KEY), _native.RealSampler(KEY)
    # Execute: 6 + 1,200 + 2 values (across the 512-value chunks) against 1,208 at once.
    whole = one.gaussian(1208, 1.0)
    parts = np.concatenate([split.gaussian(6, 1.0), split.gaussian(1200, 1.0), split.gaussian(2, 1.0)])
    # Assert
    assert whole.tobytes() == parts.tobytes()
    # An odd count drops its last pair's second value: the next call starts a new pair.
    odd = _native.RealSampler(KEY)
    first, second = odd.gaussian(3, 1.0), odd.gaussian(2, 1.0)
    assert first.tobytes() == whole[:3].tobytes() and second.tobytes() == whole[4:6].tobytes()
    # Uniform and Gaussian values draw from the same stream, one after the other.
    mixed = _native.RealSampler(KEY)
    mixed.uniform(8)  # one pair's eight words
    np.testing.assert_allclose(mixed.gaussian(10, 1.0), expected_gaussian(KEY, 12, 1.0)[2:], atol=1e-13)


def test_the_two_values_of_a_group_are_independent() -> None:
    # Prepare: a value and its neighbour share their four radii, not their
    # angles: their correlation must vanish (r cos t + ... and r sin t + ...).
    z = _native.RealSampler(bytes(32)).gaussian(400_000, 1.0).reshape(-1, 2)
    # Execute
    corr = np.corrcoef(z[:, 0], z[:, 1])[0, 1]
    corr_sq = np.corrcoef(z[:, 0] ** 2, z[:, 1] ** 2)[0, 1]
    # Assert: within 5 standard errors of 0 (1 / sqrt(200,000) = 0.0022). The
    # squares share the radii, E[r^2 r'^2]: their correlation is 0 only if
    # the four radii enter both independently of the angles, as they do.
    assert abs(corr) < 0.011
    assert abs(corr_sq) < 0.011


def test_log_and_turn_functions_match_libm() -> None:
    # Prepare: random points and the edges of the range reductions.
    rng = np.random.default_rng(5)
    edges_u = np.array([2.0**-52, 2.0**-30, 0.5, 1.0, 1 - 2.0**-52, math.sqrt(0.5), math.sqrt(2) / 2 + 1e-16, 0.75])
    u = np.concatenate([rng.uniform(2.0**-52, 1.0, 100_000), 2.0 ** -rng.uniform(0, 52, 10_000), edges_u])
    v = np.concatenate([rng.uniform(0, 1, 100_000), np.arange(16) / 16, [1 - 2.0**-52, 2.0**-52]])
    # Execute
    log_u = T.real_sampler_log(u)
    c, s = T.real_sampler_cos_sin(v)
    # Assert: log within 4 ulp; cos and sin within 2e-15 of numpy's (whose 2 pi v itself rounds).
    ref = np.log(u)
    nonzero = ref != 0
    assert np.all(np.abs(log_u[nonzero] - ref[nonzero]) <= 4 * 2.0**-52 * np.abs(ref[nonzero]))
    assert log_u[u == 1.0].tolist() == [0.0]
    np.testing.assert_allclose(c, np.cos(2 * np.pi * v), rtol=0, atol=2e-15)
    np.testing.assert_allclose(s, np.sin(2 * np.pi * v), rtol=0, atol=2e-15)
    # The quarter turns are exact.
    qc, qs = T.real_sampler_cos_sin(np.array([0.0, 0.25, 0.5, 0.75]))
    assert qc.tolist() == [1.0, 0.0, -1.0, 0.0] and qs.tolist() == [0.0, 1.0, 0.0, -1.0]


# -- statistics -------------------------------------------------------------------------------------


def test_gaussian_is_standard_normal() -> None:
    # Prepare / Execute
    z = _native.RealSampler(bytes(32)).gaussian(1_000_000, 1.0)
    # Assert: moments, tails and a Kolmogorov-Smirnov test at the 1e-4 level.
    assert abs(z.mean()) < 5 / 1000  # 5 standard errors
    assert z.std() == pytest.approx(1.0, abs=5 * math.sqrt(2) / 1000)
    assert stats.kurtosis(z) == pytest.approx(0.0, abs=0.03)
    assert np.mean(np.abs(z) > 3) == pytest.approx(2 * stats.norm.sf(3), rel=0.1)
    assert stats.kstest(z, "norm").pvalue > 1e-4


def test_bernoulli_rate_and_edges() -> None:
    # Prepare
    source = DPRandom(KEY)
    # Execute
    draws = source.bernoulli(200_000, 0.1)
    # Assert
    assert draws.dtype == torch.bool
    assert float(draws.float().mean()) == pytest.approx(0.1, abs=5 * math.sqrt(0.09 / 200_000))
    assert not source.bernoulli(1000, 0.0).any()
    assert source.bernoulli(1000, 1.0).all()


# -- DPRandom ---------------------------------------------------------------------------------------


def test_fresh_sources_differ_and_derived_ones_repeat() -> None:
    # Prepare / Execute
    fresh = [DPRandom().gaussian((64,), 1.0) for _ in range(2)]
    derived = [DPRandom.derived("label", 1, 2).gaussian((64,), 1.0) for _ in range(2)]
    other = DPRandom.derived("label", 1, 3).gaussian((64,), 1.0)
    # Assert
    assert not torch.equal(fresh[0], fresh[1])
    assert torch.equal(derived[0], derived[1])
    assert not torch.equal(derived[0], other)


def test_gaussian_tensor_shape_dtype_and_scale() -> None:
    # Prepare
    source = DPRandom(KEY)
    # Execute
    t = source.gaussian((3, 4, 5), 2.5, dtype=torch.float64)
    empty = source.gaussian((0, 7), 1.0)
    # Assert: the kernel's values, reshaped, times std.
    assert t.shape == (3, 4, 5) and t.dtype == torch.float64
    np.testing.assert_allclose(t.reshape(-1).numpy(), expected_gaussian(KEY, 60, 2.5), atol=1e-12)
    assert empty.shape == (0, 7) and empty.dtype == torch.float32
    assert source.bytes_drawn == 64 * 30


@pytest.mark.parametrize("key", [b"", bytes(31), bytes(33)], ids=["empty", "31", "33"])
def test_keys_of_the_wrong_length_are_refused(key: bytes) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        DPRandom(key)
    with pytest.raises(ValueError, match="32 bytes"):
        _native.RealSampler(key)


@pytest.mark.parametrize("key", ["x" * 32, bytearray(32), memoryview(bytes(64))[::2]], ids=["str", "bytearray", "view"])
def test_keys_that_are_not_bytes_are_refused(key: object) -> None:
    with pytest.raises(TypeError):
        DPRandom(key)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _native.RealSampler(key)  # type: ignore[arg-type]


@pytest.mark.parametrize("std", [-1.0, math.nan, math.inf], ids=["negative", "nan", "inf"])
def test_bad_std_is_refused(std: float) -> None:
    with pytest.raises(ValueError, match="std"):
        DPRandom(KEY).gaussian((4,), std)
    with pytest.raises(ValueError, match="std"):
        _native.RealSampler(KEY).gaussian(4, std)


def test_bad_counts_and_rates_are_refused() -> None:
    source = DPRandom(KEY)
    with pytest.raises(ValueError, match="negative dimension"):
        source.gaussian((2, -1), 1.0)
    with pytest.raises(ValueError, match="non-negative"):
        source.uniform(-1)
    with pytest.raises(TypeError):
        source.uniform(2.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        source.gaussian((2.5,), 1.0)  # type: ignore[arg-type]
    for rate in (-0.1, 1.5, math.nan):
        with pytest.raises(ValueError, match="rate"):
            source.bernoulli(4, rate)
    with pytest.raises(ValueError, match=r"\[2\^-52, 1\]"):
        T.real_sampler_log(np.array([0.0]))
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        T.real_sampler_cos_sin(np.array([1.0]))


# -- where the noise goes ---------------------------------------------------------------------------


def test_dp_sgd_noise_is_the_sources_stream() -> None:
    # Prepare: an empty Poisson batch, so the step's gradient is noise alone.
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=17, block_size=8, n_layer=1, n_head=2, n_embd=8))
    dp = RecordDP(RecordDPConfig(max_grad_norm=0.5), 100, 4, 1, 1, noise_multiplier=1.3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    # Execute
    with dp.private(model, optimizer, noise=DPRandom.derived("t", 9)) as dp_opt:
        dp.empty_step(dp_opt)
        grads = [p.grad.clone() for p in model.parameters() if p.requires_grad]
    # Assert: parameter by parameter, the source's values times sigma * C over the expected batch.
    replay = DPRandom.derived("t", 9)
    for g in grads:
        want = replay.gaussian(g.shape, 1.3 * 0.5, dtype=g.dtype) / 4
        torch.testing.assert_close(g, want, rtol=1e-6, atol=0)


def test_client_level_share_is_the_sources_stream() -> None:
    # Prepare / Execute
    share = noise_share((1000,), 2.0, 1.5, 9, DPRandom.derived("c", 1), dtype=torch.float64)
    # Assert: std z C / sqrt(K) = 1.0 times the stream.
    torch.testing.assert_close(share, DPRandom.derived("c", 1).gaussian((1000,), 1.0, dtype=torch.float64))
