"""The server side of a deployed run: key setup, rounds with a deadline, and the final evaluation.

The loop talks to the clients through a :class:`Transport` (Flower's ``Grid``
in deployment, :mod:`xcloud.deploy.app`; direct calls in tests). What it
aggregates with is the transport-agnostic core: :class:`~xcloud.fl.aggregator.Aggregator`
verifies, weights and adds the updates exactly as in the simulation.

Rounds are synchronous (``sync = "sync"``: every live client trains from
the same global model, the round closes when all answered or at
``round-timeout``) or asynchronous (``sync = "async"``, FedBuff as in the
simulation): every idle client is sent the newest global version; an
aggregation closes as soon as ``buffer-size`` updates have arrived, from
whatever version they were trained on, and the aggregator discounts an
update ``s`` versions old by the strategy's staleness rule and refuses one
more than ``max-staleness`` versions old. Clients still training stay in
flight into the next version. Flower's ``push_messages``/``pull_messages``
are what allow this: nothing waits for a whole round.

Faults: a client that does not answer within ``round-timeout`` seconds (a
killed or slow SuperNode), whose node leaves the federation, whose handler
fails or whose update is rejected is left out of the round and reported
with the reason; the round completes with the others if at least
``min-clients`` valid updates arrived, and fails (model unchanged) otherwise.
A node whose ``hello`` fails, times out or is malformed does not join; it
is listed in that round's ``dropped`` as ``node N`` (it has no client id
yet) and says hello again at the next round.
A restarted SuperNode joins again at the next round: it gets a new identity
and MAC key, the CKKS key resealed to it by a client that holds it, and
the aggregates it lacks to rebuild the global model; in public-key mode,
where it cannot decrypt those, the key holder seals the current global
model to it instead (``handover``).
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from xcloud.deploy.config import DeployOptions, build_run, run_config_from_flower
from xcloud.deploy.fields import blob
from xcloud.deploy.keys import NodeIdentity, open_mac_key
from xcloud.errors import IntegrityError
from xcloud.fl.aggregator import Aggregator, RoundSummary
from xcloud.fl.compression import Codec, make_compression
from xcloud.fl.errors import NotEnoughClients, UpdateRejected
from xcloud.fl.sync import fedbuff_buffer

__all__ = ["DeployRound", "DeployServer", "Reply", "Transport"]

log = logging.getLogger("xcloud.deploy")


@dataclass
class Reply:
    """A client's answer to one message: its payload, or the error it raised."""

    node_id: int
    payload: dict[str, Any] | None
    error: str = ""


class Transport(Protocol):
    """How the server reaches the clients."""

    def node_ids(self) -> list[int]:
        """The nodes connected now."""
        ...

    def send(self, node_id: int, kind: str, payload: dict[str, Any], group: str) -> str:
        """Sends a message of ``kind`` and returns its id."""
        ...

    def poll(self, message_ids: list[str]) -> dict[str, Reply]:
        """The replies that have arrived, by the id of the message they answer (non-blocking)."""
        ...


@dataclass
class _Member:
    client_id: str
    node_id: int
    identity: bytes  # X25519 public key
    mac_key: bytes
    version: int = 0  # aggregates the client has applied, as far as the server knows
    has_key: bool = False


@dataclass
class DeployRound:
    """One row of a deployed run's per-round table."""

    round: int
    accepted: list[str]
    dropped: dict[str, str]
    weights: list[float]
    train_loss: float
    val_loss: float | None  # of the global model after this round (filled in when a client reports it)
    bytes_up: int
    bytes_down: int
    train_s: float  # summed over clients, as the simulation reports it
    encrypt_s: float
    aggregate_s: float
    round_s: float  # wall time of the round at the server
    epsilon: float | None = None
    staleness: list[int] = field(default_factory=list)  # per accepted update, aligned with weights
    in_flight: list[str] = field(default_factory=list)  # async: clients still training when it closed
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Job:
    """A ``train`` message in flight (asynchronous mode)."""

    client_id: str
    node_id: int
    base: int  # the global model version it trains from


class DeployServer:
    """Runs a whole deployed run over a transport.

    Parameters
    ----------
    transport : Transport
    run_config : mapping
        The Flower run config (see :mod:`xcloud.deploy.config`).
    poll_s : float
        Seconds between polls for replies.
    sleep : callable
        ``sleep(seconds)``; tests pass a no-op.
    """

    def __init__(
        self,
        transport: Transport,
        run_config: Mapping[str, Any],
        poll_s: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.transport = transport
        self.run_config = dict(run_config)
        self.cfg = run_config_from_flower(run_config)
        self.opts = DeployOptions(run_config)
        if self.cfg.method == "centralized":
            raise ValueError("a deployed run needs a federated method")
        if self.cfg.deadline_s or self.cfg.deadline_factor:
            raise ValueError(
                "deployed rounds close at a wall-clock deadline (round-timeout), not a simulated one: "
                "leave deadline-s and deadline-factor at 0"
            )
        self.poll_s, self.sleep = poll_s, sleep
        root = Path(self.opts.work_dir or Path(tempfile.gettempdir()) / "xcloud-deploy")
        self.run = build_run(self.cfg, root / "server")
        self.identity = NodeIdentity()
        self.signing_key = Ed25519PrivateKey.generate()
        self.session = os.urandom(16)
        self.members: dict[str, _Member] = {}
        self.join_failures: dict[str, str] = {}  # nodes the last join() could not admit: "node N" -> why
        self.history: list[bytes] = []  # every round's aggregate, for clients that lack some
        self.releases: list[dict[str, bytes]] = []  # public-key mode: the key holder's sealed releases
        self.key_id = b""
        self.public_key = b""
        self.key_holder = ""
        self.rounds: list[DeployRound] = []
        self.final: dict[str, Any] = {}
        self.encrypted = bool(self.run.plan.encrypted)
        # Asynchronous mode: train messages in flight (by message id), replies that arrived
        # but are not aggregated yet (in arrival order), and trainings started per client.
        self.jobs: dict[str, _Job] = {}
        self.arrived: list[tuple[_Job, dict[str, Any]]] = []
        self.local_rounds: dict[str, int] = {}
        self.unused: dict[str, str] = {}  # async: updates that arrived after the last aggregation
        cfg = self.cfg
        downlink = make_compression(
            cfg.downlink_compression, topk_fraction=cfg.topk_fraction, chunk=cfg.compression_chunk
        )
        assert isinstance(downlink, Codec)
        self.aggregator = Aggregator(
            self.run.ctx,
            self.run.plan,
            self.run.strategy,
            {},
            self.signing_key,
            b"",
            min_clients=cfg.min_clients,
            threads=cfg.threads or None,
            downlink=downlink,
        )

    # -- messaging ------------------------------------------------------------------
    def exchange(
        self, sends: Mapping[int, tuple[str, dict[str, Any]]], timeout: float, group: str
    ) -> tuple[dict[int, dict[str, Any]], dict[int, str]]:
        """Sends one message per node and waits for the answers until ``timeout`` seconds.

        Returns
        -------
        (answers, failures)
            Payloads by node id, and a reason for every node that failed
            (raised an error, left the federation, or did not answer in time).
        """
        ids = {self.transport.send(nid, kind, payload, group): nid for nid, (kind, payload) in sends.items()}
        answers: dict[int, dict[str, Any]] = {}
        failures: dict[int, str] = {}
        deadline = time.monotonic() + timeout
        last_check = time.monotonic()
        while True:
            pending = [mid for mid, nid in ids.items() if nid not in answers and nid not in failures]
            if not pending:
                break
            for mid, rep in self.transport.poll(pending).items():
                nid = ids[mid]
                if rep.payload is None:
                    failures[nid] = f"client failed: {rep.error}"
                else:
                    answers[nid] = rep.payload
            if time.monotonic() - last_check > 2.0:
                alive = set(self.transport.node_ids())
                for mid in pending:
                    nid = ids[mid]
                    if nid not in alive and nid not in answers:
                        failures.setdefault(nid, "its SuperNode left the federation")
                last_check = time.monotonic()
            if time.monotonic() >= deadline:
                for mid in pending:
                    nid = ids[mid]
                    if nid not in answers:
                        failures.setdefault(nid, f"no answer within {timeout:g} s (node lost or too slow)")
                break
            self.sleep(self.poll_s)
        return answers, failures

    def _member_by_node(self, node_id: int) -> _Member | None:
        return next((m for m in self.members.values() if m.node_id == node_id), None)

    # -- joining and keys ---------------------------------------------------------------
    def wait_for_nodes(self) -> list[int]:
        """Waits until ``clouds`` nodes are connected (or the join timeout) and returns them."""
        deadline = time.monotonic() + self.opts.join_timeout
        nodes = list(self.transport.node_ids())
        while len(nodes) < self.cfg.clouds and time.monotonic() < deadline:
            self.sleep(self.poll_s)
            nodes = list(self.transport.node_ids())
        return nodes

    def join(self, nodes: list[int]) -> list[str]:
        """Says hello to nodes the server does not know; returns the client ids that joined.

        The nodes that did not join (the exchange failed or timed out, or the
        reply was refused) are in :attr:`join_failures`, keyed ``"node N"``.
        """
        self.join_failures = {}
        known = {m.node_id for m in self.members.values()}
        fresh = [n for n in nodes if n not in known]
        if not fresh:
            return []
        server_sign = self.signing_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        hello = {"session": self.session, "server_sign": server_sign, "server_id": self.identity.public_bytes}
        answers, failures = self.exchange({n: ("hello", hello) for n in fresh}, self.opts.round_timeout, "hello")
        for nid, why in failures.items():
            log.warning("node %s did not join: %s", nid, why)
            self.join_failures[f"node {nid}"] = f"did not join: {why}"
        joined: list[str] = []
        for nid, a in sorted(answers.items(), key=lambda kv: str(kv[1].get("client_id"))):
            try:
                cid, sealed_mac, identity, version, has_key = _parse_hello(a)
                mac = open_mac_key(self.identity, cid, sealed_mac)
            except (ValueError, IntegrityError) as e:  # IntegrityError is a ValueError; named for the reader
                log.warning("node %s refused: %s", nid, e)
                self.join_failures[f"node {nid}"] = f"refused at join: {e}"
                continue
            old = self.members.get(cid)
            if old is not None:
                log.warning("%s joins again on node %s (was node %s)", cid, nid, old.node_id)
                if old.identity != identity:
                    # Releases were sealed to the old identity: the new one cannot open
                    # them, so forget them and let handover() bring the client up to date.
                    for rel in self.releases:
                        rel.pop(cid, None)
            self.members[cid] = _Member(cid, nid, identity, mac, version=version, has_key=has_key)
            self.aggregator.mac_keys[cid] = mac
            joined.append(cid)
        return joined

    def _keygen(self, holder: _Member, recipients: list[_Member], reseal: bool) -> dict[str, bytes]:
        msg = {
            "recipients": [m.client_id for m in recipients],
            "recipient_keys": [m.identity for m in recipients],
            "reseal": reseal,
        }
        answers, failures = self.exchange({holder.node_id: ("keygen", msg)}, self.opts.round_timeout, "keys")
        if holder.node_id in failures:
            raise RuntimeError(f"key setup failed at {holder.client_id}: {failures[holder.node_id]}")
        a = answers[holder.node_id]
        try:
            sealed = _sealed_for(a)
            key_id, public_key = blob(a, "key_id"), blob(a, "public_key")
        except ValueError as e:
            raise RuntimeError(f"key setup failed at {holder.client_id}: {e}") from None
        if self.key_id and key_id != self.key_id:
            raise RuntimeError(f"{holder.client_id} resealed another key than the federation's")
        self.key_id, self.public_key = key_id, public_key
        self.aggregator.key_id = key_id
        holder.has_key = True
        return sealed

    def setup_keys(self, newcomers: list[str]) -> dict[str, bytes]:
        """Key material for clients without keys: sealed secret keys (shared mode); {} otherwise.

        The first setup makes the key set at the key holder (the lowest
        client id); later newcomers get it resealed by a client that holds it.

        Raises
        ------
        NotEnoughClients
            If no key set exists yet and no client has joined to make one.
        """
        if not self.encrypted:
            return {}
        need = [self.members[c] for c in newcomers if not self.members[c].has_key]
        if not self.key_id:
            if not self.members:
                why = "; ".join(f"{k} {v}" for k, v in sorted(self.join_failures.items())) or "no node is connected"
                raise NotEnoughClients(f"no client has joined, so no key set can be made ({why})")
            holder = min(self.members.values(), key=lambda m: m.client_id)
            self.key_holder = holder.client_id
            others = [m for m in self.members.values() if m is not holder]
            return self._keygen(holder, others, reseal=False)
        if not need or self.cfg.key_mode == "public":
            return {}
        holders = [m for m in self.members.values() if m.has_key and m.client_id not in newcomers]
        if self.cfg.key_mode == "shared" and holders:
            return self._keygen(holders[0], need, reseal=True)
        log.warning("no client holds the secret key to reseal it to %s", [m.client_id for m in need])
        return {}

    # -- rounds -----------------------------------------------------------------------
    def _catch_up(self, m: _Member, upto: int, handed: Mapping[str, bytes] | None = None) -> dict[str, Any]:
        """What ``m`` needs to reach global version ``upto``: the aggregates it lacks, or a handed-over model."""
        if handed and m.client_id in handed:
            return {"state": handed[m.client_id], "state_version": upto, "aggregates": [], "aggregate_rounds": []}
        start = min(m.version, upto)
        msg: dict[str, Any] = {
            "aggregates": self.history[start:upto],
            "aggregate_rounds": list(range(start, upto)),
        }
        if self.cfg.key_mode == "public" and self.encrypted:
            msg["releases"] = [self.releases[r].get(m.client_id, b"") for r in range(start, upto)]
        return msg

    def handover(self, members: list[_Member], upto: int) -> dict[str, bytes]:
        """Public-key mode: global version ``upto`` sealed by the key holder to each client that cannot rebuild it.

        A client lacks a release when it was offline in that round or
        joined again with a new identity (a restarted SuperNode); without
        the secret key it cannot decrypt the aggregates itself, so the key
        holder, which holds the same global model, seals it to the client.
        Returns the sealed models by client id ({} when nobody needs one).
        """
        if self.cfg.key_mode != "public" or not self.encrypted or upto == 0:
            return {}
        need = [
            m
            for m in members
            if m.client_id != self.key_holder
            and m.version < upto
            and any(m.client_id not in self.releases[r] for r in range(m.version, upto))
        ]
        holder = self.members.get(self.key_holder)
        if not need or holder is None:
            return {}
        msg = {
            "version": upto,
            "recipients": [m.client_id for m in need],
            "recipient_keys": [m.identity for m in need],
            **self._catch_up(holder, upto),
        }
        answers, failures = self.exchange({holder.node_id: ("handover", msg)}, self.opts.round_timeout, "handover")
        if holder.node_id in failures:
            log.warning("the key holder did not hand the model over to %s: %s", msg["recipients"], failures)
            return {}
        try:
            sealed = _sealed_for(answers[holder.node_id])
        except ValueError as e:
            log.warning("the key holder's handover to %s is malformed: %s", msg["recipients"], e)
            return {}
        holder.version = upto
        log.info("key holder handed global version %d over to %s", upto, msg["recipients"])
        return sealed

    def _key_fields(self, m: _Member, sealed: Mapping[str, bytes]) -> dict[str, Any]:
        if m.has_key or not self.encrypted:
            return {}
        out: dict[str, Any] = {"key_id": self.key_id}
        if m.client_id in sealed:
            out["sealed_key"] = sealed[m.client_id]
        elif self.cfg.key_mode == "public":
            out["public_key"] = self.public_key
        return out

    def train_round(self, r: int) -> DeployRound:
        """Runs round ``r``: join newcomers, send the work, aggregate what arrives in time."""
        t0 = time.perf_counter()
        nodes = list(self.transport.node_ids())
        sealed = self.setup_keys(self.join(nodes))
        alive = set(nodes)
        live = sorted((m for m in self.members.values() if m.node_id in alive), key=lambda m: m.client_id)
        self.aggregator.start_round(r)
        dropped: dict[str, str] = {}
        for m in self.members.values():
            if m.node_id not in alive:
                dropped[m.client_id] = "offline (its SuperNode is not connected)"
        handed = self.handover(live, r)
        sends: dict[int, tuple[str, dict[str, Any]]] = {}
        for i, m in enumerate(live):
            payload = {
                "round": r,
                "validate": i == 0 and r > 0,
                "prior_trainings": self.local_rounds.get(m.client_id, 0),
                **self._catch_up(m, r, handed),
                **self._key_fields(m, sealed),
            }
            sends[m.node_id] = ("train", payload)
            self.local_rounds[m.client_id] = self.local_rounds.get(m.client_id, 0) + 1
        answers, failures = self.exchange(sends, self.opts.round_timeout, f"round-{r}")
        stats: list[dict[str, Any]] = []
        val_loss = None
        for nid, why in failures.items():
            member = self._member_by_node(nid)
            if member is not None:
                dropped[member.client_id] = why
        for cid, why in dropped.items():  # rejected updates are recorded by the aggregator itself
            self.aggregator.reject(cid, why)
        for nid, a in answers.items():
            member = self._member_by_node(nid)
            if member is None or str(a.get("client_id")) != member.client_id:
                continue
            member.version, member.has_key = r, bool(self.encrypted)
            try:
                update, st, vl = _parse_train_reply(a)
            except ValueError as e:
                dropped[member.client_id] = str(e)
                self.aggregator.reject(member.client_id, str(e))
                continue
            if vl is not None and self.rounds:
                val_loss = vl
            try:
                self.aggregator.receive(member.client_id, update)
            except UpdateRejected as e:
                dropped[member.client_id] = f"update rejected: {e}"
                continue
            stats.append(st)
        agg, summary = self.aggregator.finish_round()  # NotEnoughClients below min-clients
        self.history.append(agg)
        if self.rounds and val_loss is not None:
            self.rounds[-1].val_loss = val_loss
        if self.cfg.key_mode == "public" and self.encrypted:
            self.releases.append(self._release(r, agg, live))
        dropped.update(self.join_failures)  # not clients yet: reported, not recorded with the aggregator
        row = self._row(r, summary, dropped, stats, len(live), t0, [0] * len(summary.accepted))
        self.rounds.append(row)
        return row

    @staticmethod
    def _row(
        r: int,
        summary: RoundSummary,
        dropped: Mapping[str, str],
        stats: list[dict[str, Any]],
        receivers: int,
        t0: float,
        staleness: list[int],
        in_flight: list[str] | None = None,
    ) -> DeployRound:
        """The metrics row of an aggregation: the summary plus the accepted clients' training stats."""
        n = sum(s["examples"] for s in stats) or 1
        eps = [s["epsilon"] for s in stats if s.get("epsilon") is not None]
        return DeployRound(
            round=r,
            accepted=list(summary.accepted),
            dropped=dict(sorted(dropped.items())),
            weights=list(summary.weights),
            train_loss=sum(s["loss"] * s["examples"] for s in stats) / n,
            val_loss=None,
            bytes_up=summary.bytes_in,
            bytes_down=summary.bytes_out * receivers,
            train_s=sum(s["train_seconds"] for s in stats),
            encrypt_s=sum(s["encrypt_seconds"] for s in stats),
            aggregate_s=summary.aggregate_seconds,
            round_s=time.perf_counter() - t0,
            epsilon=max(eps) if eps else None,
            staleness=staleness,
            in_flight=list(in_flight or []),
        )

    # -- asynchronous (FedBuff) versions ------------------------------------------------
    def _spent(self, m: _Member) -> bool:
        """A DP client has used the local rounds its record-level budget was calibrated for."""
        return m.client_id in self.run.dp and self.local_rounds.get(m.client_id, 0) >= self.cfg.rounds

    def _dispatch(self, v: int, sealed: Mapping[str, bytes], alive: set[int]) -> None:
        """Sends every idle live client a ``train`` message from global version ``v``."""
        busy = {j.client_id for j in self.jobs.values()} | {j.client_id for j, _ in self.arrived}
        idle = sorted(
            (m for m in self.members.values() if m.node_id in alive and m.client_id not in busy and not self._spent(m)),
            key=lambda m: m.client_id,
        )
        handed = self.handover(idle, v)
        for i, m in enumerate(idle):
            payload = {
                "round": v,
                "validate": i == 0 and v > 0,
                "prior_trainings": self.local_rounds.get(m.client_id, 0),
                **self._catch_up(m, v, handed),
                **self._key_fields(m, sealed),
            }
            mid = self.transport.send(m.node_id, "train", payload, f"version-{v}")
            self.jobs[mid] = _Job(m.client_id, m.node_id, v)
            self.local_rounds[m.client_id] = self.local_rounds.get(m.client_id, 0) + 1

    def _collect(self, dropped: dict[str, str], check_alive: bool) -> None:
        """Moves the replies that have arrived from :attr:`jobs` to :attr:`arrived`; records failed clients."""
        for mid, rep in self.transport.poll(list(self.jobs)).items():
            job = self.jobs.pop(mid)
            m = self.members.get(job.client_id)
            if m is None or m.node_id != job.node_id:
                continue  # the client joined again on another node since
            if rep.payload is None:
                dropped[job.client_id] = f"client failed: {rep.error}"  # it is idle again: retried at the next version
            elif str(rep.payload.get("client_id")) != job.client_id:
                dropped[job.client_id] = f"answered as {rep.payload.get('client_id')!r}"
            else:
                m.version, m.has_key = job.base, bool(self.encrypted)
                self.arrived.append((job, rep.payload))
        if check_alive:
            alive = set(self.transport.node_ids())
            for mid, job in list(self.jobs.items()):
                if job.node_id not in alive:
                    del self.jobs[mid]
                    dropped[job.client_id] = "its SuperNode left the federation"

    def async_version(self, v: int) -> DeployRound:
        """Global version ``v``: start the idle clients from it, aggregate the first ``buffer-size`` updates.

        Raises
        ------
        NotEnoughClients
            If fewer than ``min-clients`` valid updates arrived within ``round-timeout``.
        """
        t0 = time.perf_counter()
        cfg = self.cfg
        nodes = list(self.transport.node_ids())
        sealed = self.setup_keys(self.join(nodes))
        alive = set(nodes)
        dropped: dict[str, str] = {}
        for m in self.members.values():
            if m.node_id not in alive:
                dropped[m.client_id] = "offline (its SuperNode is not connected)"
        # A job whose client joined again on another node can never answer.
        for mid, job in list(self.jobs.items()):
            if self.members[job.client_id].node_id != job.node_id:
                del self.jobs[mid]
        self.arrived = [(j, a) for j, a in self.arrived if self.members[j.client_id].node_id == j.node_id]
        self.aggregator.start_round(v, max_staleness=cfg.max_staleness)
        self._dispatch(v, sealed, alive)
        need = fedbuff_buffer(cfg.buffer_size, cfg.clouds, cfg.min_clients)
        included: list[tuple[_Job, dict[str, Any]]] = []
        rejected: dict[str, str] = {}
        deadline = time.monotonic() + self.opts.round_timeout
        last_check = time.monotonic()
        while len(included) < need:
            if not self.arrived:
                if not self.jobs or time.monotonic() >= deadline:
                    break
                check = time.monotonic() - last_check > 2.0
                self._collect(dropped, check)
                if check:
                    last_check = time.monotonic()
                if not self.arrived:
                    self.sleep(self.poll_s)
                continue
            job, a = self.arrived.pop(0)
            dropped.pop(job.client_id, None)
            try:
                update, st, vl = _parse_train_reply(a)
            except ValueError as e:
                dropped[job.client_id] = str(e)  # recorded with the aggregator below
                continue
            if vl is not None and 0 < job.base <= len(self.rounds):
                self.rounds[job.base - 1].val_loss = vl
            try:
                self.aggregator.receive(job.client_id, update)
            except UpdateRejected as e:  # the aggregator records it
                rejected[job.client_id] = f"update rejected: {e}"
                continue
            included.append((job, st))
        for cid, why in dropped.items():
            self.aggregator.reject(cid, why)
        dropped.update(rejected)
        dropped.update(self.join_failures)  # not clients yet: reported, not recorded with the aggregator
        agg, summary = self.aggregator.finish_round()  # NotEnoughClients below min-clients
        self.history.append(agg)
        live = sorted((m for m in self.members.values() if m.node_id in alive), key=lambda m: m.client_id)
        if self.cfg.key_mode == "public" and self.encrypted:
            self.releases.append(self._release(v, agg, live))
        stats = [st for _, st in included]
        base = {job.client_id: job.base for job, _ in included}
        busy = {j.client_id for j in self.jobs.values()} | {j.client_id for j, _ in self.arrived}
        staleness = [v - base[c] for c in summary.accepted]
        row = self._row(v, summary, dropped, stats, len(live), t0, staleness, sorted(busy))
        self.rounds.append(row)
        return row

    def drain(self) -> None:
        """After the last version: waits (up to ``round-timeout``) for the trainings still in flight.

        Their updates come too late for any aggregation; they are recorded in
        :attr:`unused` and the clients become idle, so the final evaluation
        reaches them.
        """
        deadline = time.monotonic() + self.opts.round_timeout
        lost: dict[str, str] = {}
        while self.jobs and time.monotonic() < deadline:
            self._collect(lost, check_alive=True)
            if self.jobs:
                self.sleep(self.poll_s)
        for job, _ in self.arrived:
            self.unused[job.client_id] = f"trained from version {job.base}; arrived after the last aggregation"
        self.arrived.clear()
        for cid, why in lost.items():
            self.unused[cid] = why
        for job in self.jobs.values():
            self.unused[job.client_id] = f"still training from version {job.base} at the end of the run"

    def _release(self, r: int, agg: bytes, live: list[_Member]) -> dict[str, bytes]:
        holder = self.members.get(self.key_holder)
        if holder is None:
            raise RuntimeError("public-key mode: the key holder is gone; nobody can decrypt the aggregate")
        msg = {
            "round": r,
            "aggregate": agg,
            "recipients": [m.client_id for m in live],
            "recipient_keys": [m.identity for m in live],
        }
        answers, failures = self.exchange({holder.node_id: ("release", msg)}, self.opts.round_timeout, f"rel-{r}")
        if holder.node_id in failures:
            raise RuntimeError(f"public-key mode: the key holder did not release round {r}: {failures[holder.node_id]}")
        try:
            return _sealed_for(answers[holder.node_id])
        except ValueError as e:
            raise RuntimeError(f"public-key mode: the key holder's release of round {r} is malformed: {e}") from None

    def evaluate(self) -> dict[str, Any]:
        """Sends the last aggregate to every connected client; their validation losses and model digests."""
        alive = set(self.transport.node_ids())
        upto = len(self.history)
        busy = {j.client_id for j in self.jobs.values()}  # async: still training (see drain)
        live = [m for m in self.members.values() if m.node_id in alive and m.client_id not in busy]
        handed = self.handover(live, upto)
        sends = {m.node_id: ("evaluate", self._catch_up(m, upto, handed)) for m in live}
        answers, failures = self.exchange(sends, self.opts.round_timeout, "evaluate")
        out: dict[str, Any] = {"clients": {}, "failed": {c: "still training at the end of the run" for c in busy}}
        for nid, a in answers.items():
            m = self._member_by_node(nid)
            try:
                val_loss, version = float(a["val_loss"]), a["version"]
                if not math.isfinite(val_loss) or isinstance(version, bool) or not isinstance(version, int):
                    raise ValueError(f"val_loss {val_loss!r}, version {version!r:.40}")
                out["clients"][m.client_id if m else str(a["client_id"])] = {
                    "val_loss": val_loss,
                    "version": version,
                    "model_sha256": str(a["model_sha256"]),
                }
            except (KeyError, TypeError, ValueError, OverflowError) as e:
                # One malformed answer must not lose the run's results: record it as failed.
                out["failed"][m.client_id if m else str(nid)] = f"malformed evaluate reply: {type(e).__name__}: {e}"
        for nid, why in failures.items():
            m = self._member_by_node(nid)
            out["failed"][m.client_id if m else str(nid)] = why
        if out["clients"] and self.rounds:
            self.rounds[-1].val_loss = min(c["val_loss"] for c in out["clients"].values())
        self.final = out
        return out

    def run_all(self, on_round: Callable[[DeployRound], None] | None = None) -> dict[str, Any]:
        """Joins, sets up keys, runs every round, evaluates; returns (and writes to ``metrics-file``) the results."""
        t0 = time.perf_counter()
        nodes = self.wait_for_nodes()
        log.info("%d node(s) connected", len(nodes))
        step = self.async_version if self.cfg.sync == "async" else self.train_round
        for r in range(self.cfg.rounds):
            row = step(r)
            if on_round is not None:
                on_round(row)
        if self.cfg.sync == "async":
            self.drain()
        if self.opts.final_evaluate:
            self.evaluate()
        result = self.results(time.perf_counter() - t0)
        if self.opts.metrics_file:
            Path(self.opts.metrics_file).parent.mkdir(parents=True, exist_ok=True)
            Path(self.opts.metrics_file).write_text(json.dumps(result, indent=2))
        return result

    def results(self, wall_s: float) -> dict[str, Any]:
        """Everything the run measured, JSON-ready."""
        return {
            "config": self.cfg.to_dict(),
            "key_mode": self.cfg.key_mode,
            "sync": self.cfg.sync,
            "key_holder": self.key_holder,
            "members": sorted(self.members),
            "rounds": [asdict(r) for r in self.rounds],
            "final": self.final,
            "unused": dict(sorted(self.unused.items())),
            "wall_s": wall_s,
        }


_STAT_FIELDS = ("examples", "loss", "train_seconds", "encrypt_seconds")
_MAX_ID_LEN = 256
_MAX_EXAMPLES = 1 << 40  # as the aggregator's sample-count bound


def _sealed_for(a: Mapping[str, Any]) -> dict[str, bytes]:
    """The key holder's sealed blobs by recipient (``recipients`` and ``sealed``, equal-length lists).

    Raises
    ------
    ValueError
        For a missing field, lists of different lengths, or an entry of the wrong type.
        (The callers decide: fatal for key setup and releases, logged for a handover.)
    """
    recipients, sealed = a.get("recipients"), a.get("sealed")
    if not isinstance(recipients, (list, tuple)) or not isinstance(sealed, (list, tuple)):
        raise ValueError("'recipients' and 'sealed' must be lists")
    if len(recipients) != len(sealed):
        raise ValueError(f"{len(recipients)} recipients but {len(sealed)} sealed blobs")
    if not all(isinstance(c, str) for c in recipients):
        raise ValueError("'recipients' must hold client ids")
    if not all(isinstance(b, (bytes, bytearray, memoryview)) for b in sealed):
        raise ValueError("'sealed' must hold bytes")
    return {c: bytes(b) for c, b in zip(recipients, sealed, strict=True)}


def _parse_hello(a: Mapping[str, Any]) -> tuple[str, bytes, bytes, int, bool]:
    """client id, sealed MAC key, identity, model version and has-key flag of a ``hello`` reply.

    Raises
    ------
    ValueError
        For a missing field or one of the wrong type or range: that node is
        refused and the others join.
    """
    try:
        cid, version, has_key = a["client_id"], a["version"], a["has_key"]
    except KeyError as e:
        raise ValueError(f"malformed hello: no {e}") from None
    if not isinstance(cid, str) or not 0 < len(cid) <= _MAX_ID_LEN:
        raise ValueError(f"malformed hello: client_id {cid!r:.80}")
    try:
        sealed, identity = blob(a, "mac_key"), blob(a, "identity")
    except ValueError as e:
        raise ValueError(f"malformed hello from {cid}: {e}") from None
    if isinstance(version, bool) or not isinstance(version, int) or not 0 <= version < 2**31:
        raise ValueError(f"malformed hello from {cid}: version {version!r:.80}")
    if not isinstance(has_key, bool):
        raise ValueError(f"malformed hello from {cid}: has_key {has_key!r:.80}")
    return cid, sealed, identity, version, has_key


def _parse_train_reply(a: Mapping[str, Any]) -> tuple[bytes, dict[str, Any], float | None]:
    """The update, training stats and validation loss of a ``train`` reply.

    The stats and validation loss travel outside the update's MAC, so they are
    checked here: a reply that lacks a field or carries one of the wrong type
    or a non-finite number is refused with ValueError, and only its client
    misses the aggregation; the server goes on.
    """
    try:
        update = blob(a, "update")
        stats = json.loads(str(a["stats"]))
        if not isinstance(stats, dict):
            raise TypeError("stats is not an object")
        for k in _STAT_FIELDS:
            v = stats[k]
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ValueError(f"stats field {k!r} is {v!r}")
            if k == "examples" and not 0 <= v <= _MAX_EXAMPLES:  # loss * examples must not overflow the mean
                raise ValueError(f"stats field 'examples' is {v!r}")
            v = float(v)  # OverflowError for an integer beyond the float range
            # A loss may be NaN (no step taken), else in [0, 1e6] (the aggregator's bound on the
            # header's loss; 1e308 would overflow the round's mean); the others are finite and >= 0.
            if (k == "loss" and not (math.isnan(v) or 0 <= v <= 1e6)) or (
                k != "loss" and not (math.isfinite(v) and v >= 0)
            ):
                raise ValueError(f"stats field {k!r} is {v!r}")
            if k != "examples":  # an int count stays an int
                stats[k] = v
        eps = stats.get("epsilon")
        if eps is not None and (
            isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(float(eps))
        ):
            raise ValueError(f"stats field 'epsilon' is {eps!r}")
        val = a.get("val_loss")
        val_loss = None if val is None else float(val)
        if val_loss is not None and not math.isfinite(val_loss):
            raise ValueError(f"val_loss is {val_loss!r}")
    except (KeyError, TypeError, ValueError, OverflowError, RecursionError) as e:  # Recursion: nesting too deep
        raise ValueError(f"malformed reply: {type(e).__name__}: {e}") from None
    return update, stats, val_loss
