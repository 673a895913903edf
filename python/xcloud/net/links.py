"""Emulated wide-area links on a simulated clock.

A :class:`LinkProfile` describes one cloud's link to the aggregator (uplink and
downlink bandwidth, one-way latency, jitter, packet loss, MTU). An
:class:`EmulatedLink` turns a message size into the time the message would take
over that link, on a :class:`SimClock`; nothing ever sleeps, so a simulated run
on one machine reports cross-cloud times and stays fast and deterministic.

Transfer model
--------------
For a message of ``B`` bytes sent over bandwidth ``b`` Mbit/s with one-way
latency ``L`` ms, jitter ``J`` ms, loss ``p`` and MTU ``M`` bytes:

1. serialisation: ``B * 8 / (b * 1e6)`` seconds;
2. propagation: ``max(0, L + u) / 1000`` seconds, ``u ~ Uniform[-J, +J]``;
3. loss: the message is ``n = max(1, ceil(B / M))`` packets. Each attempt
   loses each outstanding packet independently with probability ``p`` (one
   binomial draw per attempt, so cost does not grow with ``n``). If ``k > 0``
   packets were lost, the sender waits one nominal round trip ``2 L / 1000``
   seconds and resends the ``k`` packets, costing ``k * M * 8 / (b * 1e6)``
   seconds more; repeat until none is lost.

With ``J = 0`` and ``p = 0`` the time is exactly ``B * 8 / (b * 1e6) + L / 1000``.
:func:`expected_transfer_time` gives the analytic expectation of the model.

The randomness is simulation randomness from a seeded :class:`numpy.random.Generator`,
not cryptographic randomness.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

__all__ = [
    "PRESETS",
    "Direction",
    "EmulatedLink",
    "LinkProfile",
    "SimClock",
    "expected_transfer_time",
    "load_profiles",
    "parse_link",
]

Direction = Literal["up", "down"]

# Retransmission attempts after which a transfer is declared broken. With loss
# at most 0.5 and n packets, the chance of reaching it is below n * 2**-1000.
_MAX_ATTEMPTS = 1000


def _finite_number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{field} must be a number, got {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{field} must be finite, got {value!r}")
    return out


@dataclass(frozen=True)
class LinkProfile:
    """One link's bandwidth, latency, jitter, loss and MTU (validated, immutable).

    Parameters
    ----------
    name : str
        Label of the link (for example the cloud it connects).
    up_mbps : float
        Uplink bandwidth, client to aggregator, in Mbit/s (10**6 bit/s); at least 0.001 (1 kbit/s).
    down_mbps : float
        Downlink bandwidth, aggregator to client, in Mbit/s; at least 0.001.
    latency_ms : float
        One-way latency in milliseconds; >= 0.
    jitter_ms : float, optional
        Half-width of the uniform jitter added to the one-way latency, in
        milliseconds; >= 0. Default 0.
    loss : float, optional
        Independent per-packet loss probability, in [0, 0.5]. Default 0.
    mtu_bytes : int, optional
        Packet size used for the loss model, in bytes; >= 1. Default 1500.

    Raises
    ------
    ValueError
        If any field is out of its range or of the wrong type.
    """

    name: str
    up_mbps: float
    down_mbps: float
    latency_ms: float
    jitter_ms: float = 0.0
    loss: float = 0.0
    mtu_bytes: int = 1500

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
        for field in ("up_mbps", "down_mbps"):
            # At least 1 kbit/s: the aggregator refuses updates that report less (xcloud.fl.messages).
            if _finite_number(getattr(self, field), f"{self.name}: {field}") < 1e-3:
                raise ValueError(f"{self.name}: {field} must be at least 0.001 Mbit/s, got {getattr(self, field)!r}")
        for field in ("latency_ms", "jitter_ms"):
            if _finite_number(getattr(self, field), f"{self.name}: {field}") < 0.0:
                raise ValueError(f"{self.name}: {field} must be >= 0, got {getattr(self, field)!r}")
        loss = _finite_number(self.loss, f"{self.name}: loss")
        if not 0.0 <= loss <= 0.5:
            raise ValueError(f"{self.name}: loss must be in [0, 0.5], got {self.loss!r}")
        if isinstance(self.mtu_bytes, bool) or not isinstance(self.mtu_bytes, int) or self.mtu_bytes < 1:
            raise ValueError(f"{self.name}: mtu_bytes must be a positive integer, got {self.mtu_bytes!r}")

    def bandwidth_mbps(self, direction: Direction) -> float:
        """Bandwidth in Mbit/s for ``direction`` ("up" or "down").

        Raises
        ------
        ValueError
            If ``direction`` is neither "up" nor "down".
        """
        if direction == "up":
            return float(self.up_mbps)
        if direction == "down":
            return float(self.down_mbps)
        raise ValueError(f"direction must be 'up' or 'down', got {direction!r}")


# Illustrative presets for typical cross-cloud pairs: round numbers chosen to
# span the plausible range, NOT measurements of any provider's network.
PRESETS: Mapping[str, LinkProfile] = {
    p.name: p
    for p in (
        LinkProfile("same-region", up_mbps=1000.0, down_mbps=1000.0, latency_ms=1.0),
        LinkProfile("cross-region", up_mbps=500.0, down_mbps=500.0, latency_ms=20.0, jitter_ms=2.0),
        LinkProfile("cross-cloud", up_mbps=200.0, down_mbps=200.0, latency_ms=40.0, jitter_ms=5.0),
        LinkProfile("intercontinental", up_mbps=100.0, down_mbps=100.0, latency_ms=120.0, jitter_ms=10.0, loss=0.001),
        LinkProfile("edge", up_mbps=50.0, down_mbps=20.0, latency_ms=60.0, jitter_ms=15.0, loss=0.005),
    )
}

_PROFILE_FIELDS = ("up_mbps", "down_mbps", "latency_ms", "jitter_ms", "loss", "mtu_bytes")
_REQUIRED_FIELDS = ("up_mbps", "down_mbps", "latency_ms")


def load_profiles(path: str | Path) -> dict[str, LinkProfile]:
    """Read link profiles from a TOML file, one table per profile.

    Example file::

        [cross-cloud]
        up_mbps = 200
        down_mbps = 200
        latency_ms = 40
        jitter_ms = 5        # optional, default 0
        loss = 0.0           # optional, default 0
        mtu_bytes = 1500     # optional, default 1500

    Parameters
    ----------
    path : str or pathlib.Path
        The TOML file.

    Returns
    -------
    dict[str, LinkProfile]
        Profiles keyed by table name, in file order.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is not valid TOML, holds no profile, a top-level entry is
        not a table, a table misses a required key or has an unknown one, or a
        value is out of range.
    """
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        try:
            import tomli as tomllib
        except ImportError as exc:
            raise ImportError("load_profiles needs Python >= 3.11 or the 'tomli' package") from exc
    path = Path(path)
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from exc
    if not document:
        raise ValueError(f"{path}: no link profiles (expected one [table] per profile)")
    profiles: dict[str, LinkProfile] = {}
    for name, table in document.items():
        if not isinstance(table, dict):
            raise ValueError(f"{path}: top-level key {name!r} must be a [table] describing one link, got {table!r}")
        unknown = sorted(set(table) - set(_PROFILE_FIELDS))
        if unknown:
            raise ValueError(f"{path}: [{name}] has unknown keys {unknown}; allowed: {list(_PROFILE_FIELDS)}")
        missing = [key for key in _REQUIRED_FIELDS if key not in table]
        if missing:
            raise ValueError(f"{path}: [{name}] misses required keys {missing}")
        try:
            profiles[name] = LinkProfile(name=name, **table)
        except ValueError as exc:
            raise ValueError(f"{path}: [{name}]: {exc}") from exc
    return profiles


def parse_link(spec: str, profiles: Mapping[str, LinkProfile] | None = None) -> LinkProfile:
    """Resolves a link spec: a name in ``profiles``, a preset, or ``UP:DOWN:LATENCY[:JITTER[:LOSS]]``.

    The numeric form gives uplink and downlink bandwidth in Mbit/s, one-way
    latency and jitter in ms, and the loss probability; for example
    ``"100:100:20"`` or ``"50:20:60:15:0.005"``.

    Parameters
    ----------
    spec : str
        The link spec.
    profiles : Mapping[str, LinkProfile], optional
        Named profiles (from :func:`load_profiles`); searched before the presets.

    Returns
    -------
    LinkProfile

    Raises
    ------
    ValueError
        If ``spec`` names no profile or preset and is not a valid numeric spec.
    """
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"link spec must be a non-empty string, got {spec!r}")
    if profiles and spec in profiles:
        return profiles[spec]
    if spec in PRESETS:
        return PRESETS[spec]
    parts = spec.split(":")
    if not 3 <= len(parts) <= 5:
        known = sorted(set(PRESETS) | set(profiles or {}))
        raise ValueError(f"unknown link {spec!r}: use one of {known} or UP:DOWN:LATENCY[:JITTER[:LOSS]]")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"link {spec!r}: UP:DOWN:LATENCY[:JITTER[:LOSS]] must be numbers") from None
    names = ("up_mbps", "down_mbps", "latency_ms", "jitter_ms", "loss")
    return LinkProfile(name=spec, **dict(zip(names, values, strict=False)))


class SimClock:
    """A simulated clock in seconds that only moves forward and never sleeps.

    Parameters
    ----------
    start : float, optional
        Initial time in seconds; finite and >= 0. Default 0.

    Notes
    -----
    Not thread-safe: share one clock per simulated run and advance it from one
    thread.
    """

    def __init__(self, start: float = 0.0) -> None:
        start = _finite_number(start, "start")
        if start < 0.0:
            raise ValueError(f"start must be >= 0, got {start!r}")
        self._now = start

    @property
    def now(self) -> float:
        """Current simulated time in seconds."""
        return self._now

    def advance(self, dt: float) -> float:
        """Move the clock forward by ``dt`` seconds and return the new time.

        Raises
        ------
        ValueError
            If ``dt`` is negative, not finite or not a number.
        """
        dt = _finite_number(dt, "dt")
        if dt < 0.0:
            raise ValueError(f"dt must be >= 0 (the clock only moves forward), got {dt!r}")
        self._now += dt
        return self._now


def _packets(nbytes: int, mtu_bytes: int) -> int:
    return max(1, -(-nbytes // mtu_bytes))


def _check_nbytes(nbytes: int) -> int:
    if isinstance(nbytes, bool) or not isinstance(nbytes, (int, np.integer)) or nbytes < 0:
        raise ValueError(f"nbytes must be a non-negative integer, got {nbytes!r}")
    return int(nbytes)


def expected_transfer_time(profile: LinkProfile, nbytes: int, direction: Direction = "up") -> float:
    """Analytic expectation of :meth:`EmulatedLink.transfer` under the model.

    With ``n`` packets and loss ``p``, the expected number of resent packets is
    ``n p / (1 - p)`` and the expected number of retransmission rounds (each
    costing one nominal RTT) is ``sum_{r >= 1} (1 - (1 - p**r)**n)``. Jitter
    has zero mean as long as it never clamps (``jitter_ms <= latency_ms``).

    Parameters
    ----------
    profile : LinkProfile
        The link.
    nbytes : int
        Message size in bytes; >= 0.
    direction : {"up", "down"}
        Which bandwidth to use.

    Returns
    -------
    float
        Expected seconds.
    """
    nbytes = _check_nbytes(nbytes)
    bw_bps = profile.bandwidth_mbps(direction) * 1e6
    base = nbytes * 8 / bw_bps + profile.latency_ms / 1000.0
    p = float(profile.loss)
    if p == 0.0:
        return base
    n = _packets(nbytes, profile.mtu_bytes)
    resent = n * p / (1.0 - p)
    rounds = 0.0
    r = 1
    while True:
        term = -math.expm1(n * math.log1p(-(p**r)))  # 1 - (1 - p^r)^n
        rounds += term
        if term < 1e-15 or r >= _MAX_ATTEMPTS:
            break
        r += 1
    rtt = 2.0 * profile.latency_ms / 1000.0
    return base + rounds * rtt + resent * profile.mtu_bytes * 8 / bw_bps


class EmulatedLink:
    """A link that reports how long messages take, on a simulated clock.

    Parameters
    ----------
    profile : LinkProfile
        Bandwidth, latency, jitter, loss and MTU of the link.
    seed : int
        Seed of the link's own :class:`numpy.random.Generator` (jitter and
        loss draws). Equal seeds give equal sequences of transfer times.
    clock : SimClock, optional
        Clock that every transfer advances; a private clock if omitted.

    Notes
    -----
    See the module docstring for the transfer model. Not thread-safe.
    """

    def __init__(self, profile: LinkProfile, seed: int, clock: SimClock | None = None) -> None:
        if not isinstance(profile, LinkProfile):
            raise TypeError(f"profile must be a LinkProfile, got {type(profile).__name__}")
        self.profile = profile
        self.clock = clock if clock is not None else SimClock()
        self._rng = np.random.default_rng(seed)

    def rng_state(self) -> dict[str, Any]:
        """The state of the link's jitter and loss draws (for checkpoints)."""
        return dict(self._rng.bit_generator.state)

    def set_rng_state(self, state: Mapping[str, Any]) -> None:
        """Restores a state from :meth:`rng_state`: the link continues the same sequence of draws.

        Raises
        ------
        ValueError
            If ``state`` is not a state of this link's generator type.
        """
        try:
            self._rng.bit_generator.state = dict(state)
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(f"{self.profile.name}: not a link generator state: {exc}") from None

    def transfer(self, nbytes: int, direction: Direction = "up") -> float:
        """Send ``nbytes`` bytes in ``direction``; advance the clock; return the seconds taken.

        Parameters
        ----------
        nbytes : int
            Message size in bytes; >= 0.
        direction : {"up", "down"}
            "up" uses ``up_mbps``, "down" uses ``down_mbps``.

        Returns
        -------
        float
            Simulated duration in seconds (>= 0).

        Raises
        ------
        ValueError
            If ``nbytes`` is negative or not an integer, or ``direction`` is invalid.
        RuntimeError
            If a transfer needs more than 1000 attempts (practically impossible
            for loss <= 0.5).
        """
        nbytes = _check_nbytes(nbytes)
        prof = self.profile
        bw_bps = prof.bandwidth_mbps(direction) * 1e6
        seconds = nbytes * 8 / bw_bps
        latency_ms = prof.latency_ms
        if prof.jitter_ms > 0.0:
            latency_ms += float(self._rng.uniform(-prof.jitter_ms, prof.jitter_ms))
        seconds += max(0.0, latency_ms) / 1000.0
        if prof.loss > 0.0:
            rtt = 2.0 * prof.latency_ms / 1000.0
            outstanding = _packets(nbytes, prof.mtu_bytes)
            for _ in range(_MAX_ATTEMPTS):
                outstanding = int(self._rng.binomial(outstanding, prof.loss))
                if outstanding == 0:
                    break
                seconds += rtt + outstanding * prof.mtu_bytes * 8 / bw_bps
            else:
                raise RuntimeError(
                    f"{prof.name}: transfer of {nbytes} bytes not delivered after {_MAX_ATTEMPTS} attempts"
                )
        self.clock.advance(seconds)
        return seconds
