"""Probes: the emulated probe recovers a known link; the socket probe measures loopback."""

from __future__ import annotations

import math
import threading

import pytest

from xcloud.net import (
    PRESETS,
    EmulatedLink,
    LinkProfile,
    ProbeResult,
    expected_transfer_time,
    probe_emulated,
    probe_socket,
)


@pytest.mark.parametrize("name", ["same-region", "cross-region", "cross-cloud"])
def test_emulated_probe_recovers_a_known_link_within_10_percent(name: str) -> None:
    # Prepare
    profile = PRESETS[name]
    link = EmulatedLink(profile, seed=2024)

    # Execute
    result = probe_emulated(link)

    # Assert
    assert result.throughput_mbps == pytest.approx(profile.up_mbps, rel=0.10)
    assert result.rtt_ms == pytest.approx(2 * profile.latency_ms, rel=0.10)
    if profile.jitter_ms > 0:
        assert result.jitter_ms == pytest.approx(profile.jitter_ms, rel=0.10)
    else:
        assert result.jitter_ms == pytest.approx(0.0, abs=1e-9)
    assert result.samples == 600


@pytest.mark.parametrize("name", ["intercontinental", "edge"])
def test_emulated_probe_on_a_lossy_link_measures_goodput_within_10_percent(name: str) -> None:
    # Prepare: with loss, retransmissions cut the payload rate below the raw bandwidth;
    # the model's expected goodput is payload * 8 / (expected time - one-way latency).
    profile = PRESETS[name]
    payload = 4_000_000
    goodput_mbps = payload * 8 / (expected_transfer_time(profile, payload) - profile.latency_ms / 1000) / 1e6
    link = EmulatedLink(profile, seed=2024)

    # Execute
    result = probe_emulated(link, payload_bytes=payload)

    # Assert
    assert goodput_mbps < profile.up_mbps
    assert result.throughput_mbps == pytest.approx(goodput_mbps, rel=0.10)
    assert result.rtt_ms == pytest.approx(2 * profile.latency_ms, rel=0.10)
    assert result.jitter_ms == pytest.approx(profile.jitter_ms, rel=0.10)


def test_emulated_probe_measures_the_requested_direction() -> None:
    # Prepare
    profile = LinkProfile("asym", up_mbps=20.0, down_mbps=80.0, latency_ms=30.0, jitter_ms=3.0)

    # Execute
    up = probe_emulated(EmulatedLink(profile, seed=1), payload_bytes=2_000_000, direction="up")
    down = probe_emulated(EmulatedLink(profile, seed=1), payload_bytes=2_000_000, direction="down")

    # Assert
    assert up.throughput_mbps == pytest.approx(20.0, rel=0.10)
    assert down.throughput_mbps == pytest.approx(80.0, rel=0.10)
    assert up.jitter_ms == pytest.approx(3.0, rel=0.10)


def test_emulated_probe_only_uses_simulated_time() -> None:
    # Prepare
    link = EmulatedLink(PRESETS["intercontinental"], seed=0)

    # Execute
    probe_emulated(link, rounds=10)

    # Assert: 10 large transfers of 4 MB at 100 Mbit/s alone take >= 3.2 simulated seconds
    assert link.clock.now > 3.2


def test_emulated_probe_bad_input() -> None:
    # Prepare
    link = EmulatedLink(PRESETS["same-region"], seed=0)

    # Execute / Assert
    with pytest.raises(ValueError, match="payload_bytes"):
        probe_emulated(link, payload_bytes=0)
    with pytest.raises(ValueError, match="rounds"):
        probe_emulated(link, rounds=1)


def _probe_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "xcloud-probe-server"]


def test_socket_probe_measures_loopback() -> None:
    # Execute
    result = probe_socket(payload_bytes=256 * 1024, rounds=5, timeout_s=10.0)

    # Assert: positive finite numbers; no claim about how fast this machine is
    assert isinstance(result, ProbeResult)
    assert math.isfinite(result.throughput_mbps) and result.throughput_mbps > 0
    assert math.isfinite(result.rtt_ms) and result.rtt_ms > 0
    assert math.isfinite(result.jitter_ms) and result.jitter_ms >= 0
    assert result.samples == 10
    assert _probe_threads() == []


def test_socket_probe_respects_its_timeout() -> None:
    # Execute / Assert: a deadline of a microsecond passes before the first message
    with pytest.raises(TimeoutError, match="exceeded timeout_s"):
        probe_socket(payload_bytes=1 << 20, rounds=5, timeout_s=1e-6)
    assert _probe_threads() == []


def test_socket_probe_times_out_mid_transfer_and_cleans_up() -> None:
    # Prepare: 50 x 64 MiB (3.4 GB) in 50 ms would need > 500 Gbit/s over loopback.
    payload = 64 << 20

    # Execute / Assert
    with pytest.raises(TimeoutError, match="exceeded timeout_s=0.05"):
        probe_socket(payload_bytes=payload, rounds=50, timeout_s=0.05)
    assert _probe_threads() == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"host": "0.0.0.0"}, "only listens on loopback"),
        ({"host": "localhost"}, "only listens on loopback"),
        ({"timeout_s": 0.0}, "timeout_s must be a positive number"),
        ({"timeout_s": float("inf")}, "timeout_s must be finite"),
        ({"rounds": 0}, "rounds"),
        ({"payload_bytes": -5}, "payload_bytes"),
    ],
)
def test_socket_probe_bad_input(kwargs: dict[str, object], message: str) -> None:
    # Execute / Assert
    with pytest.raises(ValueError, match=message):
        probe_socket(**kwargs)  # type: ignore[arg-type]
