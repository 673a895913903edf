"""Round-time prediction from link profiles (equation 7, as DESIGN.md reads it).

The paper writes ``T_total = sum_i (T_sync,i + T_cloud / B_cloud)``. xcloud
reads it as per-cloud latency plus payload bytes over bandwidth plus compute
time. For client ``i`` with link ``(up_i, down_i, L_i)`` (Mbit/s, Mbit/s, ms)::

    T_i = compute_i
          + upload_i * 8 / (up_i * 1e6) + L_i / 1000       # update to the aggregator
          + download * 8 / (down_i * 1e6) + L_i / 1000     # global model back

A synchronous round waits for every client, so it takes ``max_i T_i``; the
client attaining the max is the bottleneck. The paper's literal sum over
clouds, ``sum_i T_i``, is available with ``sum_form=True`` for comparison
(it is the time if the clouds were served one after another).

The prediction uses nominal latency (the jitter has zero mean) and ignores
packet loss; :func:`xcloud.net.links.expected_transfer_time` gives the
expectation with loss.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from xcloud.net.links import LinkProfile

__all__ = ["RoundPrediction", "predict_round_time"]


@dataclass(frozen=True)
class RoundPrediction:
    """Predicted duration of one federated round.

    Attributes
    ----------
    per_client_s : dict[str, float]
        Predicted seconds per client (compute + upload + download).
    total_s : float
        Predicted round time: the max over clients for a synchronous round, or
        the sum when ``sum_form=True``.
    bottleneck : str
        The client with the longest predicted time (first in order on ties).
    """

    per_client_s: dict[str, float]
    total_s: float
    bottleneck: str


def _non_negative(value: float, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what} must be a number, got {value!r}")
    out = float(value)
    if not math.isfinite(out) or out < 0.0:
        raise ValueError(f"{what} must be finite and >= 0, got {value!r}")
    return out


def predict_round_time(
    links: Mapping[str, LinkProfile],
    upload_bytes: Mapping[str, int],
    download_bytes: int,
    compute_s: Mapping[str, float],
    sync: Literal["sync"] = "sync",
    sum_form: bool = False,
) -> RoundPrediction:
    """Predict one round's time from each client's link, payloads and compute.

    Parameters
    ----------
    links : Mapping[str, LinkProfile]
        Link of each client to the aggregator.
    upload_bytes : Mapping[str, int]
        Bytes each client uploads (its update); same keys as ``links``.
    download_bytes : int
        Bytes every client downloads (the global model); >= 0.
    compute_s : Mapping[str, float]
        Local compute seconds per client; same keys as ``links``.
    sync : {"sync"}, optional
        Synchronisation policy. Only synchronous rounds are predicted.
    sum_form : bool, optional
        Use the paper's literal sum over clients instead of the max.

    Returns
    -------
    RoundPrediction

    Raises
    ------
    ValueError
        If ``links`` is empty, the three mappings' keys differ, a size or time
        is negative or not finite, or ``sync`` is not "sync".
    """
    if sync != "sync":
        raise ValueError(f"sync must be 'sync' (only synchronous rounds are predicted), got {sync!r}")
    if not links:
        raise ValueError("links must name at least one client")
    names = list(links)
    for what, mapping in (("upload_bytes", upload_bytes), ("compute_s", compute_s)):
        if set(mapping) != set(names):
            missing = sorted(set(names) - set(mapping))
            extra = sorted(set(mapping) - set(names))
            raise ValueError(f"{what} keys must match links: missing {missing}, unexpected {extra}")
    down = _non_negative(download_bytes, "download_bytes")
    per_client: dict[str, float] = {}
    for name in names:
        link = links[name]
        if not isinstance(link, LinkProfile):
            raise ValueError(f"links[{name!r}] must be a LinkProfile, got {type(link).__name__}")
        up = _non_negative(upload_bytes[name], f"upload_bytes[{name!r}]")
        compute = _non_negative(compute_s[name], f"compute_s[{name!r}]")
        latency_s = link.latency_ms / 1000.0
        upload_s = up * 8 / (link.up_mbps * 1e6) + latency_s
        download_s = down * 8 / (link.down_mbps * 1e6) + latency_s
        per_client[name] = compute + upload_s + download_s
    bottleneck = max(names, key=lambda n: per_client[n])
    total = math.fsum(per_client.values()) if sum_form else per_client[bottleneck]
    return RoundPrediction(per_client_s=per_client, total_s=total, bottleneck=bottleneck)
