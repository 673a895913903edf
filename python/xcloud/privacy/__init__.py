"""Differential privacy at two levels.

- ``record_dp``: record-level DP-SGD inside each client's local training,
  through Opacus (per-example clipping, noise and its RDP accountant).
- ``client_dp``: client-level DP for many-client deployments: clip each update
  and add a 1/sqrt(K) share of Gaussian noise, accounted with dp-accounting.

Privacy spent always comes from a maintained accountant, never from a formula
of xcloud's own.
"""

from xcloud.privacy.client_dp import (
    client_level_epsilon,
    clip_update,
    make_generator,
    noise_multiplier_for,
    noise_share,
)
from xcloud.privacy.record_dp import RecordDP, RecordDPConfig, quiet_rdp_conversion

__all__ = [
    "RecordDP",
    "RecordDPConfig",
    "client_level_epsilon",
    "clip_update",
    "make_generator",
    "noise_multiplier_for",
    "noise_share",
    "quiet_rdp_conversion",
]
