"""Cross-cloud link emulation: link profiles, a simulated clock, probes, round-time prediction.

- :mod:`xcloud.net.links`: :class:`LinkProfile`, presets, TOML profiles,
  :class:`SimClock` and :class:`EmulatedLink`;
- :mod:`xcloud.net.probe`: iperf-like throughput / RTT / jitter probes of an
  emulated link or a real loopback TCP connection;
- :mod:`xcloud.net.predict`: equation 7's round-time prediction.
"""

from xcloud.net.links import (
    PRESETS,
    Direction,
    EmulatedLink,
    LinkProfile,
    SimClock,
    expected_transfer_time,
    load_profiles,
    parse_link,
)
from xcloud.net.predict import RoundPrediction, predict_round_time
from xcloud.net.probe import ProbeResult, probe_emulated, probe_socket

__all__ = [
    "PRESETS",
    "Direction",
    "EmulatedLink",
    "LinkProfile",
    "ProbeResult",
    "RoundPrediction",
    "SimClock",
    "expected_transfer_time",
    "load_profiles",
    "parse_link",
    "predict_round_time",
    "probe_emulated",
    "probe_socket",
]
