"""Synchronisation on the simulated clock: deadlines, carried stragglers, FedBuff buffers.

The federated core (client, aggregator, strategies) does not know about time;
this module holds what the round loop needs to place every update on a
simulated timeline (:class:`xcloud.net.SimClock`):

- :class:`InFlight`: an update on its way to the aggregator, with the
  simulated time it arrives there and the round (global model version) it was
  computed from;
- :class:`ArrivalQueue`: in-flight updates ordered by arrival (asynchronous
  mode, and stragglers carried into the next synchronous round);
- :func:`sync_deadline`: the deadline of a synchronous round, fixed or derived
  from the probed links (equation 7's per-cloud prediction);
- :func:`split_compute`: a client's simulated compute time, measured or modelled.

Synchronous rounds (``sync="sync"``) wait for every cloud, or close at a
deadline and then drop late updates or carry them into the next round with
staleness 1. Asynchronous mode (``sync="async"``) is buffered asynchronous
aggregation (FedBuff, Nguyen et al., AISTATS 2022): the server aggregates as
soon as ``buffer_size`` updates have arrived, whatever model version they were
computed from, discounting an update ``s`` versions old by ``(1 + s)^-a``
(:func:`xcloud.fl.strategies.staleness_discount`; equation 8 as DESIGN.md reads
it). Both work under encryption: an aggregation is still one weighted sum of
ciphertexts.
"""

from __future__ import annotations

import heapq
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from xcloud.net import LinkProfile, predict_round_time

__all__ = ["ArrivalQueue", "InFlight", "fedbuff_buffer", "split_compute", "sync_deadline"]


@dataclass
class InFlight:
    """An update travelling to the aggregator on the simulated clock.

    Attributes
    ----------
    arrival_s : float
        Simulated time at which the last byte reaches the aggregator.
    order : int
        Tie-break between equal arrival times (the client's index).
    client_id : str
    base_round : int
        Global model version (round) the update was computed from.
    message : bytes
        The authenticated update message.
    stats : dict
        The client's :class:`~xcloud.fl.client.FitStats` as a dict.
    train_s, encrypt_s, upload_s : float
        Simulated seconds of local training, encryption and upload.
    """

    arrival_s: float
    order: int
    client_id: str
    base_round: int
    message: bytes
    stats: dict[str, Any]
    train_s: float
    encrypt_s: float
    upload_s: float

    def state(self) -> dict[str, Any]:
        """A checkpointable form (the message as a uint8 tensor, which torch loads with ``weights_only``)."""
        out = dict(self.__dict__)
        out["message"] = torch.frombuffer(bytearray(self.message), dtype=torch.uint8)
        return out

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> InFlight:
        """Inverse of :meth:`state`."""
        kwargs = dict(state)
        kwargs["message"] = bytes(kwargs["message"].numpy().tobytes())
        return cls(**kwargs)


@dataclass
class ArrivalQueue:
    """In-flight updates, popped in order of arrival (then client order)."""

    _heap: list[tuple[float, int, int, InFlight]] = field(default_factory=list)
    _count: int = 0

    def push(self, item: InFlight) -> None:
        """Adds an in-flight update."""
        self._count += 1
        heapq.heappush(self._heap, (item.arrival_s, item.order, self._count, item))

    def pop(self) -> InFlight:
        """Removes and returns the earliest arrival.

        Raises
        ------
        IndexError
            If the queue is empty.
        """
        return heapq.heappop(self._heap)[-1]

    def clients(self) -> set[str]:
        """Ids of the clients with an update in flight."""
        return {entry[-1].client_id for entry in self._heap}

    def __len__(self) -> int:
        return len(self._heap)

    def state(self) -> list[dict[str, Any]]:
        """The in-flight updates in arrival order, checkpointable."""
        return [entry[-1].state() for entry in sorted(self._heap)]

    @classmethod
    def from_state(cls, items: Iterable[Mapping[str, Any]]) -> ArrivalQueue:
        """Inverse of :meth:`state`."""
        queue = cls()
        for item in items:
            queue.push(InFlight.from_state(item))
        return queue


def fedbuff_buffer(buffer_size: int, clouds: int, min_clients: int) -> int:
    """How many updates an asynchronous aggregation waits for (FedBuff's K).

    ``buffer_size`` if set, else half the clouds rounded up; never fewer than
    ``min_clients``, the least an aggregation accepts.
    """
    return max(buffer_size or -(-clouds // 2), min_clients)


def split_compute(
    train_measured_s: float, encrypt_measured_s: float, slowdown: float, modelled_s: float
) -> tuple[float, float]:
    """A client's simulated (training, encryption) seconds.

    With ``modelled_s == 0`` the measured times are scaled by ``slowdown``.
    Otherwise one local round costs ``modelled_s * slowdown`` in total, split
    between training and encryption in the measured proportion; the clock then
    depends on no measured time and a run is reproducible.

    Parameters
    ----------
    train_measured_s, encrypt_measured_s : float
        Measured seconds on this machine; >= 0.
    slowdown : float
        How many times slower this cloud computes; > 0.
    modelled_s : float
        Modelled seconds of a local round at slowdown 1, or 0 to use the measurement.
    """
    if modelled_s <= 0.0:
        return train_measured_s * slowdown, encrypt_measured_s * slowdown
    total = train_measured_s + encrypt_measured_s
    share = encrypt_measured_s / total if total > 0 else 0.0
    return modelled_s * slowdown * (1.0 - share), modelled_s * slowdown * share


def sync_deadline(
    deadline_s: float,
    deadline_factor: float,
    links: Mapping[str, LinkProfile],
    upload_bytes: Mapping[str, int],
    download_bytes: int,
    compute_s: Mapping[str, float],
) -> float | None:
    """The deadline of a synchronous round, in simulated seconds after its start, or None.

    ``deadline_s > 0`` is used as is. Otherwise, with ``deadline_factor > 0``
    and the previous round's payloads and compute times known, the deadline is
    ``deadline_factor`` times the median cloud's predicted time
    (:func:`xcloud.net.predict_round_time` over the measured links): clouds
    much slower than the median are stragglers.
    """
    if deadline_s > 0.0:
        return deadline_s
    if deadline_factor <= 0.0 or not upload_bytes:
        return None
    names = [n for n in links if n in upload_bytes and n in compute_s]
    if not names:
        return None
    prediction = predict_round_time(
        {n: links[n] for n in names},
        {n: upload_bytes[n] for n in names},
        download_bytes,
        {n: compute_s[n] for n in names},
    )
    return deadline_factor * statistics.median(prediction.per_client_s.values())
