"""Client-level DP: clipping, the sqrt(K) noise split, and the dp-accounting accountant."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest
import torch
from dp_accounting import dp_event, rdp
from hypothesis import given, settings
from hypothesis import strategies as st

from xcloud.privacy import (
    DPRandom,
    client_level_epsilon,
    client_level_epsilon_of,
    clip_update,
    effective_multiplier,
    noise_multiplier_for,
    noise_share,
)


def test_clip_scales_a_long_update_to_the_bound() -> None:
    vec = torch.tensor([3.0, 4.0])

    clipped, norm = clip_update(vec, 1.0)

    assert norm == pytest.approx(5.0)
    torch.testing.assert_close(clipped, torch.tensor([0.6, 0.8]))


def test_clip_leaves_a_short_update_alone() -> None:
    vec = torch.tensor([0.3, -0.4])

    clipped, norm = clip_update(vec, 1.0)

    assert norm == pytest.approx(0.5)
    assert torch.equal(clipped, vec)
    assert clipped.data_ptr() != vec.data_ptr()


@settings(max_examples=50, deadline=None)
@given(
    values=st.lists(st.floats(-1e3, 1e3, allow_nan=False, width=32), min_size=1, max_size=64),
    clip=st.floats(1e-3, 1e3),
)
def test_clip_respects_the_bound_and_keeps_direction(values: list[float], clip: float) -> None:
    vec = torch.tensor(values, dtype=torch.float32)

    clipped, norm = clip_update(vec, clip)

    assert float(clipped.norm()) <= clip * (1 + 1e-5) + 1e-6
    assert norm == pytest.approx(float(vec.double().norm()), rel=1e-9, abs=1e-12)
    if norm > 0:
        scale = min(1.0, clip / norm)
        torch.testing.assert_close(clipped, vec * scale, rtol=1e-5, atol=1e-6)


def test_clip_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="clip_norm"):
        clip_update(torch.ones(3), 0.0)
    with pytest.raises(ValueError, match="NaN"):
        clip_update(torch.tensor([1.0, float("nan")]), 1.0)
    with pytest.raises(ValueError, match="NaN"):
        clip_update(torch.tensor([float("inf")]), 1.0)


def test_noise_share_has_std_split_by_sqrt_k() -> None:
    clip, z, k, n = 2.0, 1.5, 4, 200_000

    share = noise_share((n,), clip, z, k, DPRandom.derived("test", 1))

    assert share.shape == (n,) and share.dtype == torch.float32
    assert float(share.std()) == pytest.approx(z * clip / math.sqrt(k), rel=0.01)
    assert abs(float(share.mean())) < 4 * z * clip / math.sqrt(k) / math.sqrt(n)


def test_sum_of_k_shares_carries_the_full_noise() -> None:
    clip, z, k, n = 0.5, 2.0, 9, 100_000

    total = sum(noise_share((n,), clip, z, k, DPRandom.derived("test", 100 + i)) for i in range(k))

    assert isinstance(total, torch.Tensor)
    assert float(total.std()) == pytest.approx(z * clip, rel=0.015)


def test_noise_is_os_keyed_unless_a_derived_source_is_given() -> None:
    a = noise_share((1000,), 1.0, 1.0, 1)
    b = noise_share((1000,), 1.0, 1.0, 1)
    c = noise_share((1000,), 1.0, 1.0, 1, DPRandom.derived("test", 5))
    d = noise_share((1000,), 1.0, 1.0, 1, DPRandom.derived("test", 5))

    assert not torch.equal(a, b)
    assert torch.equal(c, d)


def test_zero_noise_multiplier_gives_zeros() -> None:
    assert torch.equal(noise_share((3, 2), 1.0, 0.0, 4, DPRandom.derived("test", 0)), torch.zeros(3, 2))


@pytest.mark.parametrize("args", [(0.0, 1.0, 4), (1.0, -1.0, 4), (1.0, 1.0, 0)], ids=["clip", "noise", "clients"])
def test_noise_share_rejects_bad_input(args: tuple[float, float, int]) -> None:
    clip, z, k = args
    with pytest.raises(ValueError):
        noise_share((4,), clip, z, k, DPRandom.derived("test", 0))


def test_epsilon_comes_from_dp_accounting() -> None:
    accountant = rdp.RdpAccountant()
    accountant.compose(dp_event.GaussianDpEvent(1.2), 10)

    assert client_level_epsilon(1.2, 10, 1e-5) == pytest.approx(accountant.get_epsilon(1e-5), rel=1e-12)


def test_effective_multiplier_of_what_an_aggregation_ran() -> None:
    z, k = 1.5, 4
    assert effective_multiplier(z, [0.25] * 4, k) == pytest.approx(z, rel=1e-15)  # all report, uniform weights
    assert effective_multiplier(z, [0.5, 0.5], k) == pytest.approx(z * math.sqrt(2 / 4), rel=1e-15)  # 2 of 4
    # Unequal weights (a staleness discount, say): z ||w|| / (sqrt K max w), below the uniform case's.
    w = [0.366, 0.634]
    assert effective_multiplier(z, w, 3) == pytest.approx(z * math.hypot(*w) / (math.sqrt(3) * 0.634), rel=1e-15)
    assert effective_multiplier(z, w, 3) < effective_multiplier(z, [0.5, 0.5], 3)
    for bad in ([], [0.0, 0.0], [-0.1, 1.1], [math.nan, 1.0]):
        with pytest.raises(ValueError):
            effective_multiplier(z, bad, k)


def test_composed_epsilon_comes_from_dp_accounting_and_equals_the_uniform_case() -> None:
    accountant = rdp.RdpAccountant()
    accountant.compose(dp_event.GaussianDpEvent(1.2))
    accountant.compose(dp_event.GaussianDpEvent(0.8), 2)
    assert client_level_epsilon_of([1.2, 0.8, 0.8], 1e-5) == pytest.approx(accountant.get_epsilon(1e-5), rel=1e-12)
    assert client_level_epsilon_of([1.2] * 10, 1e-5) == pytest.approx(client_level_epsilon(1.2, 10, 1e-5), rel=1e-9)
    assert client_level_epsilon_of([], 1e-5) == 0.0
    assert client_level_epsilon_of([1.0, 0.0], 1e-5) == math.inf


def test_epsilon_decreases_with_more_noise_and_grows_with_rounds() -> None:
    by_noise = [client_level_epsilon(z, 20, 1e-5) for z in (0.8, 1.0, 2.0, 4.0, 8.0)]
    by_rounds = [client_level_epsilon(1.0, r, 1e-5) for r in (1, 5, 20, 100)]

    assert all(a > b for a, b in pairwise(by_noise))
    assert all(a < b for a, b in pairwise(by_rounds))
    assert client_level_epsilon(1.0, 20, 1e-5, sampling_rate=0.1) < client_level_epsilon(1.0, 20, 1e-5)
    assert client_level_epsilon(0.0, 5, 1e-5) == math.inf
    assert client_level_epsilon(1.0, 0, 1e-5) == 0.0


@pytest.mark.parametrize(("target", "rounds", "rate"), [(1.0, 10, 1.0), (8.0, 5, 1.0), (3.0, 50, 0.2), (0.5, 1, 1.0)])
def test_noise_multiplier_for_inverts_the_accountant(target: float, rounds: int, rate: float) -> None:
    z = noise_multiplier_for(target, rounds, 1e-5, sampling_rate=rate)

    assert client_level_epsilon(z, rounds, 1e-5, rate) <= target
    assert client_level_epsilon(z * (1 - 1e-3), rounds, 1e-5, rate) > target


def test_noise_multiplier_for_round_trips_through_epsilon() -> None:
    for z0 in (0.7, 1.3, 5.0):
        eps = client_level_epsilon(z0, 8, 1e-6)

        assert noise_multiplier_for(eps, 8, 1e-6) == pytest.approx(z0, rel=1e-3)


@pytest.mark.parametrize(
    "call",
    [
        lambda: client_level_epsilon(-1.0, 1, 1e-5),
        lambda: client_level_epsilon(1.0, -1, 1e-5),
        lambda: client_level_epsilon(1.0, 1, 0.0),
        lambda: client_level_epsilon(1.0, 1, 1e-5, sampling_rate=0.0),
        lambda: noise_multiplier_for(0.0, 1, 1e-5),
        lambda: noise_multiplier_for(1.0, 0, 1e-5),
    ],
)
def test_accounting_rejects_bad_input(call: object) -> None:
    with pytest.raises(ValueError):
        call()  # type: ignore[operator]
