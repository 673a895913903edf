"""The aggregation server: verifies updates, weights them, adds ciphertexts it cannot read.

Transport-agnostic: the simulation calls it directly, the Flower app from its
strategy. It never holds a secret key and never sees a plaintext encrypted part.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import xcloud
from xcloud.crypto import CiphertextBlocks, CkksContext
from xcloud.errors import IntegrityError
from xcloud.fl.compression import Codec, CodecError, ErrorFeedback, compress, decode
from xcloud.fl.errors import NotEnoughClients, RoundFailed, UpdateRejected
from xcloud.fl.messages import (
    MAX_BANDWIDTH_MBPS,
    MIN_BANDWIDTH_MBPS,
    AggregateHeader,
    open_update,
    pack_aggregate,
)
from xcloud.fl.protection import ProtectionPlan
from xcloud.fl.strategies.base import ClientReport, Strategy

__all__ = ["Aggregator", "RoundSummary"]

log = logging.getLogger("xcloud.aggregator")

# Plausible ranges of the reported metadata: outside them an update is
# rejected (a zero or tiny loss, say, would break loss-based weighting).
MAX_SAMPLES = 1 << 40
MIN_LOSS, MAX_LOSS = 1e-6, 1e6
# Largest magnitude of a plain update value. Model deltas and control variates
# are far below it; finite float32 values near 3e38 would overflow the weighted
# sum to inf and wreck the global model (the encrypted part is bounded by the
# parameters' max_value already).
MAX_PLAIN_MAGNITUDE = 1e6


@dataclass
class RoundSummary:
    """What the server did in a round."""

    round_id: int
    accepted: list[str]
    rejected: dict[str, str] = field(default_factory=dict)
    weights: list[float] = field(default_factory=list)
    aggregate_seconds: float = 0.0
    bytes_in: int = 0
    bytes_out: int = 0


class Aggregator:
    """Accepts the round's updates and releases their weighted aggregate.

    Parameters
    ----------
    ctx : CkksContext
    plan : ProtectionPlan
        The agreed split into encrypted and plain values.
    strategy : Strategy
        Computes the weights from the clients' reports.
    mac_keys : mapping of client id to bytes
        Per-client keys authenticating updates (in deployment these come
        with node authentication).
    signing_key : Ed25519PrivateKey
        Signs the aggregate; clients verify it with the matching public key.
    key_id : bytes
        Id of the key the clients encrypt under ("" if nothing is encrypted).
    min_clients : int
        A round with fewer valid updates fails with :class:`NotEnoughClients`.
    threads : int, optional
        Worker threads for ciphertext aggregation.
    downlink : Codec, optional
        Codec of the aggregate's plain part (the server sees it anyway);
        lossy codecs go through the server's error-feedback residual,
        :attr:`downlink_feedback`. None (default): float32, as before.
        Updates are accepted in any codec their authenticated header names.
    """

    def __init__(
        self,
        ctx: CkksContext,
        plan: ProtectionPlan,
        strategy: Strategy,
        mac_keys: Mapping[str, bytes],
        signing_key: Ed25519PrivateKey,
        key_id: bytes,
        min_clients: int = 1,
        threads: int | None = None,
        downlink: Codec | None = None,
    ) -> None:
        if min_clients < 1:
            raise ValueError("min_clients must be at least 1")
        self.ctx, self.plan, self.strategy = ctx, plan, strategy
        self.mac_keys = dict(mac_keys)
        self.signing_key = signing_key
        self.key_id = key_id
        self.min_clients = min_clients
        self.threads = threads
        self.downlink = downlink
        self.downlink_feedback = ErrorFeedback()  # checkpointed with the run
        self._mask = plan.mask()
        self._n_enc = int(self._mask.sum())
        self._n_plain = int(self._mask.size - self._n_enc)
        self._round: int | None = None
        self._max_staleness = 0
        # (client, base round) of every update aggregated in the replay window.
        self.seen_updates: set[tuple[str, int]] = set()
        self._reports: list[ClientReport] = []
        self._plain: list[np.ndarray] = []
        self._cts: list[CiphertextBlocks] = []
        self._summary = RoundSummary(-1, [])

    def start_round(self, round_id: int, max_staleness: int = 0) -> None:
        """Opens round ``round_id``.

        Updates computed from global model ``round_id - s`` with
        ``0 <= s <= max_staleness`` are accepted with staleness ``s`` (carried
        stragglers, asynchronous FedBuff buffers); older or newer ones are
        rejected as stale. Synchronous rounds use ``max_staleness=0``.
        """
        if max_staleness < 0:
            raise ValueError(f"max_staleness must be >= 0, got {max_staleness}")
        self._round = round_id
        self._max_staleness = max_staleness
        # (client, base round) pairs already aggregated can never be replayed.
        self.seen_updates = {k for k in self.seen_updates if k[1] >= round_id - max_staleness}
        self._reports, self._plain, self._cts = [], [], []
        self._summary = RoundSummary(round_id, [])

    def reject(self, client_id: str, reason: str) -> None:
        """Records a client that is left out of the round (rejected or failed)."""
        self._summary.rejected[client_id] = reason
        log.warning("round %s: client %s left out: %s", self._round, client_id, reason)

    def receive(self, client_id: str, data: bytes) -> ClientReport:
        """Verifies one update and keeps it for the round.

        Raises
        ------
        UpdateRejected
            With the reason; the update is not kept and the round goes on.
        """
        try:
            return self._receive(client_id, data)
        except UpdateRejected as e:
            if client_id in self._summary.accepted:
                # A later message of a client whose update is in: logged, but the
                # client is not also listed as left out of the round.
                log.warning("round %s: client %s: extra message refused: %s", self._round, client_id, e)
            else:
                self.reject(client_id, str(e))
            raise

    def _receive(self, client_id: str, data: bytes) -> ClientReport:
        if self._round is None:
            raise UpdateRejected("no-round", "no round is open")
        key = self.mac_keys.get(client_id)
        if key is None:
            raise UpdateRejected("unknown-client", f"client {client_id!r} is not registered")
        try:
            header, plain_b, ct = open_update(data, key, self.ctx)
        except IntegrityError as e:
            raise UpdateRejected("integrity", str(e)) from None
        if header.client_id != client_id:
            raise UpdateRejected("wrong-sender", f"update names client {header.client_id!r}")
        staleness = self._round - header.round_id
        if not 0 <= staleness <= self._max_staleness:
            raise UpdateRejected(
                "stale-round",
                f"update is for round {header.round_id}, this is round {self._round}"
                + (f" (at most {self._max_staleness} rounds late accepted)" if self._max_staleness else ""),
            )
        if client_id in self._summary.accepted:
            # One update per client and aggregation, whatever its base round: a second
            # (stale) one would double the client's weight.
            raise UpdateRejected("duplicate", f"client {client_id!r} already sent an update to round {self._round}")
        if (client_id, header.round_id) in self.seen_updates:
            raise UpdateRejected(
                "duplicate", f"client {client_id!r} already sent its update for round {header.round_id}"
            )
        if header.fingerprint != self.ctx.fingerprint.hex():
            raise UpdateRejected("wrong-context", "update was made under other CKKS parameters")
        if header.plan != self.plan.digest().hex():
            raise UpdateRejected("wrong-plan", "update follows another model layout or protection plan")
        if header.n_plain != self._n_plain or header.n_encrypted != self._n_enc:
            raise UpdateRejected("bad-shape", f"update has {header.n_plain}+{header.n_encrypted} values")
        try:  # only now that its announced size is the planned one
            plain = decode(plain_b, header.n_plain, header.codec)
        except CodecError as e:
            raise UpdateRejected("bad-encoding", f"plain part ({header.codec:.40}): {e}") from None
        if self._n_enc:
            if ct is None or ct.size != self._n_enc:
                raise UpdateRejected("bad-shape", "encrypted part missing or of the wrong size")
            if ct.key_id != self.key_id or header.key_id != self.key_id.hex():
                raise UpdateRejected("wrong-key", "encrypted part is under another key")
            # A fresh encryption of a flat vector, as the plan says: anything else
            # (another shape or scale, an aggregate, a forged bound) would make
            # the whole round's aggregation fail later.
            # Public-key encryptions may use their own scale (the compact preset's 2^34).
            scale = self.ctx.public_scale if ct.origin == "public-key" else self.ctx.scale
            if (
                ct.shape != (self._n_enc,)
                or ct.scale != scale
                or ct.origin not in ("secret-key", "public-key")
                or not 0 < ct.bound <= self.ctx.max_value
            ):
                raise UpdateRejected("bad-ciphertext", "encrypted part is not a fresh encryption of the planned values")
            if self._cts and self._cts[0].scale != ct.scale:
                raise UpdateRejected(
                    "bad-ciphertext", f"a {ct.origin} encryption cannot join the round's {self._cts[0].origin} ones"
                )
        elif ct is not None:
            raise UpdateRejected("bad-shape", "unexpected encrypted part")
        if not np.all(np.isfinite(plain)):
            raise UpdateRejected("non-finite", "plain part contains NaN or Inf")
        if plain.size and float(np.max(np.abs(plain))) > MAX_PLAIN_MAGNITUDE:
            raise UpdateRejected("bad-values", f"plain part holds values beyond +-{MAX_PLAIN_MAGNITUDE:g}")
        if not 0 < header.num_samples <= MAX_SAMPLES:
            raise UpdateRejected("bad-metadata", f"sample count must be in [1, {MAX_SAMPLES}]")
        if not (math.isfinite(header.loss) and MIN_LOSS <= header.loss <= MAX_LOSS):
            raise UpdateRejected("bad-metadata", f"loss must be in [{MIN_LOSS}, {MAX_LOSS}]")
        if not (
            math.isfinite(header.bandwidth_mbps) and MIN_BANDWIDTH_MBPS <= header.bandwidth_mbps <= MAX_BANDWIDTH_MBPS
        ):
            raise UpdateRejected(
                "bad-metadata", f"bandwidth must be in [{MIN_BANDWIDTH_MBPS}, {MAX_BANDWIDTH_MBPS}] Mbit/s"
            )
        report = ClientReport(client_id, header.num_samples, header.loss, header.bandwidth_mbps, staleness)
        self._reports.append(report)
        self._plain.append(plain)
        if ct is not None:
            self._cts.append(ct)
        self.seen_updates.add((client_id, header.round_id))
        self._summary.accepted.append(client_id)
        self._summary.rejected.pop(client_id, None)  # an earlier bad message of its no longer leaves it out
        self._summary.bytes_in += len(data)
        return report

    def finish_round(self) -> tuple[bytes, RoundSummary]:
        """Weights the kept updates and returns the authenticated aggregate message.

        Raises
        ------
        NotEnoughClients
            If fewer than ``min_clients`` updates were accepted.
        """
        if len(self._reports) < self.min_clients:
            raise NotEnoughClients(
                f"round {self._round}: {len(self._reports)} valid updates, at least {self.min_clients} needed"
            )
        t0 = time.perf_counter()
        # A canonical order (client, staleness), so the float sum of the plain
        # parts does not depend on the order in which updates arrived.
        order = sorted(
            range(len(self._reports)), key=lambda i: (self._reports[i].client_id, self._reports[i].staleness)
        )
        self._reports = [self._reports[i] for i in order]
        self._plain = [self._plain[i] for i in order]
        if self._cts:
            self._cts = [self._cts[i] for i in order]
        self._summary.accepted = [r.client_id for r in self._reports]  # aligned with the weights
        try:
            w = self.strategy.weights(self._reports)
            if self._cts:
                # The weights the kernel applies exactly (multiples of 2^-k): the
                # plain half uses the same ones, and the header publishes them.
                w = np.asarray(xcloud.dyadic_weights(self._cts, list(w)))
            plain = np.zeros(self._n_plain, dtype=np.float64)
            for wk, p in zip(w, self._plain, strict=True):
                plain += wk * p
            agg_ct = xcloud.aggregate(self._cts, weights=list(w), threads=self.threads) if self._cts else None
        except (ValueError, OverflowError) as e:
            # Every update was validated on receipt, so this is a server-side fault.
            raise RoundFailed(f"round {self._round}: aggregation failed: {e}") from e
        codec = self.downlink if (self.downlink is not None and self._n_plain) else Codec("none")
        header = AggregateHeader(
            round_id=int(self._round if self._round is not None else -1),
            fingerprint=self.ctx.fingerprint.hex(),
            plan=self.plan.digest().hex(),
            clients=[r.client_id for r in self._reports],
            weights=[float(x) for x in w],
            n_plain=self._n_plain,
            n_encrypted=self._n_enc,
            codec=codec.name,
        )
        plain32 = plain.astype(np.float32)
        payload = plain32 if codec.name == "none" else compress(plain32, codec, self.downlink_feedback)
        msg = pack_aggregate(header, payload, agg_ct, self.signing_key)
        self._summary.weights = header.weights
        self._summary.aggregate_seconds = time.perf_counter() - t0
        self._summary.bytes_out = len(msg)
        self._round = None
        return msg, self._summary
