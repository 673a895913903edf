"""Differential privacy at two levels.

- ``record_dp``: record-level DP-SGD inside each client's local training,
  through Opacus (per-example clipping, noise and its RDP accountant).
- ``client_dp``: client-level DP for many-client deployments: clip each update
  and add a 1/sqrt(K) share of Gaussian noise, accounted with dp-accounting.
- ``randomness``: the noise and the Poisson batches of both, from the kernel's
  AES-256-CTR under keys from the OS CSPRNG (``DPRandom``).

Privacy spent always comes from a maintained accountant, never from a formula
of xcloud's own.

``RecordDP`` and its helpers load Opacus (about 2.5 s of imports), so they are
imported on first use: a process that never trains with record-level DP (a
Flower ClientApp of a method without it) does not pay for Opacus.
"""

from typing import TYPE_CHECKING, Any

from xcloud.privacy.client_dp import (
    client_level_epsilon,
    client_level_epsilon_of,
    clip_update,
    effective_multiplier,
    noise_multiplier_for,
    noise_share,
)
from xcloud.privacy.randomness import DPRandom

if TYPE_CHECKING:
    from xcloud.privacy.record_dp import RecordDP, RecordDPConfig, quiet_rdp_conversion

_RECORD_DP_NAMES = ("RecordDP", "RecordDPConfig", "quiet_rdp_conversion")


def __getattr__(name: str) -> Any:
    if name in _RECORD_DP_NAMES:
        from xcloud.privacy import record_dp

        return getattr(record_dp, name)
    raise AttributeError(f"module 'xcloud.privacy' has no attribute {name!r}")


__all__ = [
    "DPRandom",
    "RecordDP",
    "RecordDPConfig",
    "client_level_epsilon",
    "client_level_epsilon_of",
    "clip_update",
    "effective_multiplier",
    "noise_multiplier_for",
    "noise_share",
    "quiet_rdp_conversion",
]
