"""Link emulation: arithmetic, jitter statistics, loss model, determinism, validation, TOML."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from xcloud.net import PRESETS, EmulatedLink, LinkProfile, SimClock, expected_transfer_time, load_profiles


@pytest.mark.parametrize(
    ("nbytes", "mbps", "latency_ms"),
    [(0, 100.0, 0.0), (1, 10.0, 5.0), (1_000_000, 100.0, 40.0), (123_457, 3.5, 120.0), (10**9, 1000.0, 1.0)],
)
def test_transfer_is_bytes_over_bandwidth_plus_latency(nbytes: int, mbps: float, latency_ms: float) -> None:
    # Prepare
    link = EmulatedLink(LinkProfile("l", up_mbps=mbps, down_mbps=mbps / 2, latency_ms=latency_ms), seed=0)

    # Execute
    up = link.transfer(nbytes, "up")
    down = link.transfer(nbytes, "down")

    # Assert
    assert up == pytest.approx(nbytes * 8 / (mbps * 1e6) + latency_ms / 1000, rel=1e-12, abs=1e-15)
    assert down == pytest.approx(nbytes * 8 / (mbps / 2 * 1e6) + latency_ms / 1000, rel=1e-12, abs=1e-15)
    assert link.clock.now == pytest.approx(up + down, rel=1e-12, abs=1e-15)


def test_transfers_advance_a_shared_clock() -> None:
    # Prepare
    clock = SimClock(start=10.0)
    a = EmulatedLink(PRESETS["same-region"], seed=1, clock=clock)
    b = EmulatedLink(PRESETS["cross-cloud"], seed=2, clock=clock)

    # Execute
    ta = a.transfer(1000)
    tb = b.transfer(1000, "down")

    # Assert
    assert clock.now == pytest.approx(10.0 + ta + tb)


def test_jitter_stays_within_bounds_with_zero_mean() -> None:
    # Prepare
    profile = LinkProfile("j", up_mbps=100.0, down_mbps=100.0, latency_ms=40.0, jitter_ms=5.0)
    link = EmulatedLink(profile, seed=7)
    base = 1000 * 8 / 100e6 + 0.040

    # Execute
    offsets_ms = np.array([link.transfer(1000) - base for _ in range(20_000)]) * 1e3

    # Assert
    assert offsets_ms.min() >= -5.0 - 1e-9
    assert offsets_ms.max() <= 5.0 + 1e-9
    assert abs(offsets_ms.mean()) < 0.1  # std of the mean: 5 / sqrt(3 * 20000) ~ 0.02 ms
    assert offsets_ms.std() == pytest.approx(5.0 / math.sqrt(3), rel=0.03)
    assert offsets_ms.min() < -4.9 and offsets_ms.max() > 4.9  # the whole range is used


def test_jitter_larger_than_latency_is_clamped_at_zero_latency() -> None:
    # Prepare
    link = EmulatedLink(LinkProfile("c", up_mbps=1.0, down_mbps=1.0, latency_ms=1.0, jitter_ms=10.0), seed=3)

    # Execute
    times = np.array([link.transfer(0) for _ in range(2000)])

    # Assert
    assert times.min() == 0.0
    assert times.max() <= 0.011


@pytest.mark.parametrize(("nbytes", "loss"), [(1_500_000, 0.01), (150_000, 0.2), (1500, 0.5)])
def test_loss_matches_the_analytic_expectation(nbytes: int, loss: float) -> None:
    # Prepare
    profile = LinkProfile("lossy", up_mbps=100.0, down_mbps=100.0, latency_ms=30.0, loss=loss)
    lossless = dataclasses.replace(profile, loss=0.0)
    link = EmulatedLink(profile, seed=11)
    draws = 4000

    # Execute
    times = np.array([link.transfer(nbytes) for _ in range(draws)])

    # Assert
    expected = expected_transfer_time(profile, nbytes)
    assert expected > expected_transfer_time(lossless, nbytes)
    assert times.min() >= expected_transfer_time(lossless, nbytes) - 1e-12
    stderr = times.std() / math.sqrt(draws)
    assert abs(times.mean() - expected) < max(5 * stderr, 1e-9)
    assert times.mean() == pytest.approx(expected, rel=0.05)


def test_large_lossy_transfer_stays_cheap() -> None:
    # Prepare: 10 GB is ~6.7 M packets; the binomial model costs a few draws.
    link = EmulatedLink(PRESETS["intercontinental"], seed=5)

    # Execute
    t = link.transfer(10**10)

    # Assert
    assert t > 10**10 * 8 / 100e6


def test_same_seed_same_times_different_seed_different_times() -> None:
    # Prepare
    profile = PRESETS["edge"]

    def run(seed: int) -> list[float]:
        link = EmulatedLink(profile, seed=seed)
        return [link.transfer(n, d) for n in (10, 10**5, 10**7) for d in ("up", "down")]

    # Execute
    a, b, c = run(42), run(42), run(43)

    # Assert
    assert a == b
    assert a != c


def test_presets_are_valid_and_named_by_key() -> None:
    # Assert
    assert {"same-region", "cross-region", "cross-cloud", "intercontinental", "edge"} <= set(PRESETS)
    for name, profile in PRESETS.items():
        assert profile.name == name


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"up_mbps": 0.0}, "up_mbps must be at least 0.001"),
        ({"down_mbps": -1.0}, "down_mbps must be at least 0.001"),
        ({"up_mbps": 0.0008}, "up_mbps must be at least 0.001"),  # the aggregator would refuse every update
        ({"up_mbps": float("inf")}, "up_mbps must be finite"),
        ({"latency_ms": -0.1}, "latency_ms must be >= 0"),
        ({"jitter_ms": -1.0}, "jitter_ms must be >= 0"),
        ({"loss": 0.6}, r"loss must be in \[0, 0.5\]"),
        ({"loss": -0.01}, r"loss must be in \[0, 0.5\]"),
        ({"mtu_bytes": 0}, "mtu_bytes must be a positive integer"),
        ({"mtu_bytes": 1500.0}, "mtu_bytes must be a positive integer"),
        ({"latency_ms": "40"}, "latency_ms must be a number"),
        ({"name": ""}, "name must be a non-empty string"),
    ],
)
def test_profile_bad_input(kwargs: dict[str, object], message: str) -> None:
    # Prepare
    fields: dict[str, object] = {"name": "x", "up_mbps": 10.0, "down_mbps": 10.0, "latency_ms": 1.0}
    fields.update(kwargs)

    # Execute / Assert
    with pytest.raises(ValueError, match=message):
        LinkProfile(**fields)  # type: ignore[arg-type]


def test_transfer_and_clock_bad_input() -> None:
    # Prepare
    link = EmulatedLink(PRESETS["same-region"], seed=0)

    # Execute / Assert
    with pytest.raises(ValueError, match="nbytes must be a non-negative integer"):
        link.transfer(-1)
    with pytest.raises(ValueError, match="nbytes must be a non-negative integer"):
        link.transfer(1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="direction must be 'up' or 'down'"):
        link.transfer(1, "sideways")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="only moves forward"):
        link.clock.advance(-1.0)
    with pytest.raises(ValueError, match="start must be >= 0"):
        SimClock(-1.0)


def test_load_profiles_from_toml(tmp_path: Path) -> None:
    # Prepare
    path = tmp_path / "links.toml"
    path.write_text(
        "[aws-eu]\nup_mbps = 200\ndown_mbps = 400.5\nlatency_ms = 40\njitter_ms = 5\n\n"
        '["gcp us"]\nup_mbps = 50\ndown_mbps = 20\nlatency_ms = 60\nloss = 0.005\nmtu_bytes = 9000\n'
    )

    # Execute
    profiles = load_profiles(path)

    # Assert
    assert list(profiles) == ["aws-eu", "gcp us"]
    assert profiles["aws-eu"] == LinkProfile("aws-eu", 200.0, 400.5, 40.0, jitter_ms=5.0)
    assert profiles["gcp us"] == LinkProfile("gcp us", 50.0, 20.0, 60.0, loss=0.005, mtu_bytes=9000)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no link profiles"),
        ("up_mbps = 3\n", "must be a \\[table\\]"),
        ("[a]\nup_mbps = 1\ndown_mbps = 1\n", r"\[a\] misses required keys \['latency_ms'\]"),
        ("[a]\nup_mbps = 1\ndown_mbps = 1\nlatency_ms = 1\nbandwidth = 3\n", r"unknown keys \['bandwidth'\]"),
        ("[a]\nup_mbps = 1\ndown_mbps = 1\nlatency_ms = 1\nloss = 0.9\n", r"\[a\]: a: loss must be in"),
        ("[a]\nup_mbps = 1\ndown_mbps = 1\nlatency_ms = true\n", "latency_ms must be a number"),
        ("[a\nup_mbps = 1\n", "not valid TOML"),
    ],
)
def test_load_profiles_bad_input(tmp_path: Path, text: str, message: str) -> None:
    # Prepare
    path = tmp_path / "bad.toml"
    path.write_text(text)

    # Execute / Assert
    with pytest.raises(ValueError, match=message):
        load_profiles(path)


def test_load_profiles_missing_file(tmp_path: Path) -> None:
    # Execute / Assert
    with pytest.raises(FileNotFoundError):
        load_profiles(tmp_path / "absent.toml")
