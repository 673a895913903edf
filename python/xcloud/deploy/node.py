"""The client side of a deployed run: what a SuperNode's ClientApp does with each message.

Handlers take and return plain dicts whose values Flower's ``ConfigRecord``
can hold (bytes, str, int, float, bool and lists of them); :mod:`xcloud.deploy.app`
wraps them in Flower messages, tests call them directly. A ClientApp runs in
a fresh process for every message, so everything a client keeps between
messages (its X25519 identity, its MAC key, its CKKS keys, the global model
it holds with the state of the global step, its DP accountant,
compression residual and, with drift correction, its own and the federation's
SCAFFOLD control variates) lives in ``state``,
which Flower keeps on the node (Flower's ``Context.state``), never on the server.

A node trains on its shard of the simulation's partition, rebuilt from the
run config, unless its node config names a ``data-dir`` of its own
(:mod:`xcloud.deploy.local_data`).

Messages (the server's, in order): ``hello`` (join: the client answers with
its identity and its MAC key sealed to the server), ``keygen`` (key holder
only: make the CKKS keys, or reseal them for newcomers), ``train`` (apply the
aggregates the client lacks, train, answer with the protected update),
``release`` (public-key mode, key holder only: decrypt an aggregate and seal
the flooded result to every client), ``handover`` (public-key mode, key
holder only: seal its global model to clients that lost theirs, so a
restarted client catches up) and ``evaluate`` (apply the last aggregate and
report the validation loss).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from xcloud.crypto import CkksContext, KeySet
from xcloud.deploy.config import DeployOptions, build_run, run_config_from_flower
from xcloud.deploy.fields import blob
from xcloud.deploy.keys import NodeIdentity, open_sealed, open_secret_key, seal, seal_mac_key, share_secret_key
from xcloud.deploy.local_data import local_data_dir, use_local_data
from xcloud.errors import IntegrityError
from xcloud.fl.global_step import GlobalOptimizer, global_step_config

__all__ = ["HANDLERS", "client_id_of", "handle", "release_label", "state_label"]

FLOOD_SIGMA = 2.0**-20  # as the simulation's key holder (xcloud.fl.simulation.FLOOD_SIGMA)

# Setups built in this process, by (configuration, work dir), with their DP accountants' initial
# state. Under Flower every message gets a fresh process, so this only spares repeated builds
# where one process serves many messages (the loopback transport); all that a client keeps
# between messages is restored from its state on every message all the same.
_RUNS: dict[tuple[str, str], tuple[Any, dict[str, Any]]] = {}


def client_id_of(node_config: Mapping[str, Any], clouds: int) -> str:
    """The client id of a SuperNode: ``cloud-<partition-id>``.

    Raises
    ------
    ValueError
        If the node config has no ``partition-id`` in ``[0, clouds)``.
    """
    pid = node_config.get("partition-id")
    if isinstance(pid, bool) or not isinstance(pid, int) or not 0 <= pid < clouds:
        raise ValueError(f"node config needs partition-id in [0, {clouds}), got {pid!r}")
    return f"cloud-{pid}"


def release_label(client_id: str, round_id: int, aggregate: bytes) -> bytes:
    """Associated data of a released (decrypted, flooded) aggregate part sealed to ``client_id``."""
    return b"release\0" + client_id.encode() + b"\0" + str(round_id).encode() + hashlib.sha256(aggregate).digest()


def state_label(client_id: str, version: int, session: bytes) -> bytes:
    """Associated data of a global model (version ``version``) handed over to ``client_id`` in ``session``."""
    return b"global-state\0" + client_id.encode() + b"\0" + str(version).encode() + b"\0" + bytes(session)


class _Node:
    """One message's view of a client: its configuration, persistent state and the rebuilt setup."""

    def __init__(self, state: dict[str, Any], run_config: Mapping[str, Any], node_config: Mapping[str, Any]) -> None:
        self.state = state
        self.cfg = run_config_from_flower(run_config)
        self.opts = DeployOptions(run_config)
        self.node_config = node_config
        self.client_id = client_id_of(node_config, self.cfg.clouds)
        self.k = int(self.client_id.split("-")[1])
        self.ctx = CkksContext.preset(self.cfg.ckks)
        root = str(node_config.get("work-dir", "")) or self.opts.work_dir
        self.work_dir = Path(root or Path(tempfile.gettempdir()) / "xcloud-deploy") / self.client_id
        self._run: Any = None
        self._dp_initial: dict[str, Any] = {}

    @property
    def run(self) -> Any:
        if self._run is None:
            data_dir = local_data_dir(self.node_config)
            key = (json.dumps(self.cfg.to_dict(), sort_keys=True), str(self.work_dir), str(data_dir or ""))
            if key not in _RUNS:
                run = build_run(self.cfg, self.work_dir / "setup")
                if data_dir is not None:  # this node's own notes instead of its rebuilt shard
                    use_local_data(run, self.k, data_dir, self.work_dir)
                _RUNS[key] = (run, {cid: dp.state_dict() for cid, dp in run.dp.items()})
            self._run, self._dp_initial = _RUNS[key]
        return self._run

    def identity(self) -> NodeIdentity:
        return NodeIdentity.from_private_bytes(self.state["identity"])

    def keys(self) -> KeySet | None:
        raw = self.state.get("keys", b"")
        return KeySet.from_bytes(self.ctx, raw) if raw else None

    def server_key(self) -> Ed25519PublicKey:
        return Ed25519PublicKey.from_public_bytes(self.state["server_sign"])


# -- handlers -------------------------------------------------------------------


def _hello(node: _Node, msg: dict[str, Any]) -> dict[str, Any]:
    st = node.state
    if st.get("session") != msg["session"]:
        # A new server session (or a fresh node): a new identity and MAC key, no model yet.
        st.clear()
        st["session"] = msg["session"]
        st["identity"] = NodeIdentity().private_bytes()
        st["mac_key"] = os.urandom(32)
        st["version"] = 0
    st["server_sign"] = bytes(msg["server_sign"])
    st["server_id"] = bytes(msg["server_id"])
    return {
        "client_id": node.client_id,
        "identity": node.identity().public_bytes,
        "mac_key": seal_mac_key(st["server_id"], node.client_id, st["mac_key"]),
        "version": int(st["version"]),
        "has_key": bool(st.get("keys")),
    }


def _keygen(node: _Node, msg: dict[str, Any]) -> dict[str, Any]:
    """Key holder: makes the CKKS key set (or reuses it) and seals its secret key to the recipients."""
    keys = node.keys()
    if keys is None or not keys.has_secret:
        if msg.get("reseal"):
            raise ValueError(f"{node.client_id} holds no secret key to reseal")
        keys = node.ctx.keygen()
        node.state["keys"] = keys.secret_bytes()
    recipients = dict(zip(list(msg["recipients"]), [bytes(b) for b in msg["recipient_keys"]], strict=True))
    sealed = share_secret_key(keys, recipients) if node.cfg.key_mode == "shared" else {}
    return {
        "key_id": keys.key_id,
        "public_key": keys.public_bytes(),
        "recipients": list(sealed),
        "sealed": list(sealed.values()),
    }


def _install_keys(node: _Node, msg: dict[str, Any]) -> None:
    if node.state.get("keys"):
        return
    key_id = blob(msg, "key_id", default=b"")
    if msg.get("sealed_key"):
        keys = open_secret_key(node.identity(), node.client_id, blob(msg, "sealed_key"), node.ctx, key_id)
        node.state["keys"] = keys.secret_bytes()
    elif msg.get("public_key"):
        keys = KeySet.from_bytes(node.ctx, blob(msg, "public_key"))
        if keys.key_id != key_id:
            raise IntegrityError("the relayed public key is not the announced key")
        node.state["keys"] = keys.public_bytes()


def _install_state(node: _Node, msg: dict[str, Any]) -> None:
    """Public-key mode: takes the global model the key holder sealed to this client, if it is newer than its own."""
    if not msg.get("state"):
        return
    version = int(msg["state_version"])
    if version <= int(node.state.get("version", 0)):
        return
    raw = open_sealed(node.identity(), bytes(msg["state"]), state_label(node.client_id, version, node.state["session"]))
    model_bytes = 4 * node.run.layout.total
    opt_bytes = _optimizer(node, b"").state_nbytes
    control_bytes = model_bytes if node.run.scaffold else 0
    if len(raw) != model_bytes + opt_bytes + control_bytes:
        raise IntegrityError("handed-over global model has the wrong size")
    _optimizer(node, raw[model_bytes : model_bytes + opt_bytes])  # checks it loads
    node.state["global"] = raw[:model_bytes]
    node.state["global_opt"] = raw[model_bytes : model_bytes + opt_bytes]
    if control_bytes:  # a zero variate before the first aggregate acts as none (update_federation starts at 0)
        node.state["control_fed"] = raw[model_bytes + opt_bytes :]
    node.state["version"] = version


def _optimizer(node: _Node, raw: bytes) -> GlobalOptimizer:
    """The run's global step (:mod:`xcloud.fl.global_step`) with the state saved in ``raw`` ("" : a fresh one)."""
    opt = GlobalOptimizer(global_step_config(node.cfg), node.run.layout.total)
    if raw:
        opt.load_bytes(raw)
    return opt


def _global(node: _Node) -> tuple[np.ndarray, GlobalOptimizer]:
    run = node.run
    if node.state.get("global"):
        vec = np.frombuffer(node.state["global"], dtype=np.float32).copy()
        if vec.size != run.layout.total:
            raise ValueError("the stored global model does not match the run's layout")
        return vec, _optimizer(node, bytes(node.state.get("global_opt", b"")))
    return run.layout.flatten(run.global_state), _optimizer(node, b"")


def _apply(node: _Node, msg: dict[str, Any]) -> np.ndarray:
    """Applies, in order, the aggregates this client has not applied yet; returns the global vector."""
    from xcloud.fl.client import open_aggregate  # torch: only the handlers that train import it
    from xcloud.fl.messages import unpack_aggregate

    run, cfg = node.run, node.cfg
    vec, opt = _global(node)
    version = int(node.state.get("version", 0))
    aggs = [bytes(a) for a in msg.get("aggregates", [])]
    rounds = [int(r) for r in msg.get("aggregate_rounds", [])]
    releases = [bytes(b) for b in msg.get("releases", [])]
    if len(rounds) != len(aggs) or (releases and len(releases) != len(aggs)):
        raise ValueError("aggregates, their rounds and releases do not line up")
    mask = run.plan.mask()
    for i, (r, agg) in enumerate(zip(rounds, aggs, strict=True)):
        if r < version:
            continue  # applied already (the server did not see this client's last answer)
        if r != version:
            raise ValueError(f"{node.client_id} holds version {version} but got the aggregate of round {r}")
        if cfg.key_mode == "public" and run.plan.encrypted:
            header, plain, _ = unpack_aggregate(agg, node.server_key(), node.ctx, n_plain=int((~mask).sum()))
            if header.round_id != r or header.plan != run.plan.digest().hex():
                raise IntegrityError("aggregate is for another round or plan")
            if not releases:
                raise ValueError("public-key mode: the key holder's release is missing")
            enc = np.frombuffer(
                open_sealed(node.identity(), releases[i], release_label(node.client_id, r, agg)), dtype="<f4"
            )
            if enc.size != int(mask.sum()):
                raise IntegrityError("released part has the wrong size")
            delta = np.zeros(mask.size, dtype=np.float32)
            delta[~mask] = plain
            delta[mask] = enc
        else:
            header, delta, _ = open_aggregate(
                agg,
                ctx=node.ctx,
                keys=node.keys(),
                plan=run.plan,
                server_key=node.server_key(),
                round_id=r,
                threads=cfg.threads or None,
            )
        if run.scaffold:  # the aggregate also carries the increment of the federation's control variate
            from xcloud.fl.drift import split_update, update_federation  # torch: only with drift correction

            delta, increment = split_update(delta, run.layout.total)
            fed = update_federation(_control(node, "control_fed"), increment, len(header.clients), cfg.clouds)
            node.state["control_fed"] = np.ascontiguousarray(fed, np.float32).tobytes()
            if node.client_id in header.clients and node.state.get("control_pending"):
                node.state["control_own"] = node.state.pop("control_pending")  # its increment arrived
        vec = opt.step(vec, delta)  # the simulation's global step, the same float32 operations
        version = r + 1
    node.state["global"] = np.ascontiguousarray(vec, dtype=np.float32).tobytes()
    node.state["global_opt"] = opt.to_bytes()
    node.state["version"] = version
    return vec


def _control(node: _Node, key: str) -> np.ndarray | None:
    """A control variate kept in the node's state (None before it exists)."""
    raw = node.state.get(key, b"")
    if not raw:
        return None
    vec = np.frombuffer(raw, dtype=np.float32).copy()
    if vec.size != node.run.layout.total:
        raise ValueError(f"the stored {key} does not match the run's layout")
    return vec


def _validate(node: _Node, vec: np.ndarray) -> float:
    from xcloud.models import evaluate, load_trainable_state

    run = node.run
    load_trainable_state(run.model, run.layout.unflatten(vec, run.global_state))
    return float(evaluate(run.model, run.val_set, batch_size=128))


def _fault(node: _Node, round_id: int) -> None:
    """The run config's test fault (``fault = "CLIENT:ROUND:SECONDS"``): a marker file, then a stall."""
    if node.opts.fault is None:
        return
    cid, r, seconds = node.opts.fault
    if cid == node.client_id and r == round_id:
        node.work_dir.mkdir(parents=True, exist_ok=True)
        (node.work_dir / f"stalled-round-{round_id}").write_text(str(os.getpid()))
        time.sleep(seconds)


def _train(node: _Node, msg: dict[str, Any]) -> dict[str, Any]:
    from xcloud.fl.simulation import derive_seed

    _install_keys(node, msg)
    _install_state(node, msg)
    r = int(msg["round"])
    vec = _apply(node, msg)
    if int(node.state["version"]) != r:
        raise ValueError(f"{node.client_id} holds version {node.state['version']}, cannot train round {r}")
    run, cfg = node.run, node.cfg
    out: dict[str, Any] = {"client_id": node.client_id}
    if msg.get("validate"):
        out["val_loss"] = _validate(node, vec)
    client = run.clients[node.k]
    client.keys = node.keys() if run.plan.encrypted else None
    if cfg.key_mode == "public" and client.keys is not None and client.keys.has_secret:
        client.keys = client.keys.public_only()  # the key holder encrypts like everyone else
    client.mac_key = node.state["mac_key"]
    fb = node.state.get("feedback", b"")
    client.feedback.residual = np.frombuffer(fb, dtype=np.float32).copy() if fb else None
    dp = run.dp.get(node.client_id)
    if dp is not None:
        if node.state.get("dp"):
            dp.load_state_dict(json.loads(node.state["dp"]))
        else:
            dp.load_state_dict(_restarted_dp_state(node._dp_initial[node.client_id], msg, dp.steps_per_round))
    if run.scaffold:
        client.control.own = _control(node, "control_own")
        client.control.pending = None
        client.federation_control = _control(node, "control_fed")
    _fault(node, r)
    global_state = dict(run.global_state)
    global_state.update(run.layout.unflatten(vec, run.global_state))
    update, stats = client.fit(global_state, r, seed=derive_seed(cfg.seed, "train", r, node.client_id))
    if run.scaffold:  # its own c_i changes once an aggregate includes this update (_apply)
        node.state["control_pending"] = np.ascontiguousarray(client.control.pending, np.float32).tobytes()
    if dp is not None:
        node.state["dp"] = json.dumps(dp.state_dict())
    residual = client.feedback.residual
    node.state["feedback"] = b"" if residual is None else np.ascontiguousarray(residual, np.float32).tobytes()
    out.update(
        {
            "update": update,
            "version": r,
            "stats": json.dumps(stats.__dict__),
        }
    )
    return out


def _release(node: _Node, msg: dict[str, Any]) -> dict[str, Any]:
    """Key holder, public-key mode: decrypts one aggregate, floods it and seals it to each recipient."""
    from xcloud.fl.client import flood, open_aggregate

    keys = node.keys()
    if keys is None or not keys.has_secret:
        raise ValueError(f"{node.client_id} is not the key holder")
    r, agg = int(msg["round"]), bytes(msg["aggregate"])
    _, delta, _ = open_aggregate(
        agg,
        ctx=node.ctx,
        keys=keys,
        plan=node.run.plan,
        server_key=node.server_key(),
        round_id=r,
        threads=node.cfg.threads or None,
    )
    enc = flood(delta[node.run.plan.mask()], FLOOD_SIGMA).astype("<f4").tobytes()
    recipients = list(msg["recipients"])
    pubs = [bytes(b) for b in msg["recipient_keys"]]
    return {
        "recipients": recipients,
        "sealed": [seal(p, enc, release_label(c, r, agg)) for c, p in zip(recipients, pubs, strict=True)],
    }


def _handover(node: _Node, msg: dict[str, Any]) -> dict[str, Any]:
    """Key holder, public-key mode: brings its global model to ``version`` and seals it to each recipient.

    A client that lost its state (a restarted SuperNode) has a new identity,
    so it cannot open the releases of the rounds it missed; the key holder,
    which holds the same global model as every client, hands it over instead.
    """
    keys = node.keys()
    if keys is None or not keys.has_secret:
        raise ValueError(f"{node.client_id} is not the key holder")
    vec = _apply(node, msg)
    version = int(msg["version"])
    if int(node.state["version"]) != version:
        raise ValueError(f"{node.client_id} holds version {node.state['version']}, not {version}")
    raw = np.ascontiguousarray(vec, np.float32).tobytes() + bytes(node.state["global_opt"])
    if node.run.scaffold:  # the federation's control variate too (the recipient's own is lost with its state)
        fed = node.state.get("control_fed", b"")
        raw += fed if fed else np.zeros(node.run.layout.total, np.float32).tobytes()
    recipients = list(msg["recipients"])
    pubs = [bytes(b) for b in msg["recipient_keys"]]
    session = node.state["session"]
    return {
        "recipients": recipients,
        "sealed": [seal(p, raw, state_label(c, version, session)) for c, p in zip(recipients, pubs, strict=True)],
    }


def _evaluate(node: _Node, msg: dict[str, Any]) -> dict[str, Any]:
    _install_state(node, msg)
    vec = _apply(node, msg)
    out: dict[str, Any] = {
        "client_id": node.client_id,
        "version": int(node.state["version"]),
        "model_sha256": hashlib.sha256(vec.tobytes()).hexdigest(),
        "val_loss": _validate(node, vec),
    }
    if node.opts.save_model:
        node.work_dir.mkdir(parents=True, exist_ok=True)
        np.save(node.work_dir / "final_model.npy", vec)
    return out


HANDLERS = {
    "hello": _hello,
    "keygen": _keygen,
    "train": _train,
    "release": _release,
    "handover": _handover,
    "evaluate": _evaluate,
}


def handle(
    kind: str,
    msg: dict[str, Any],
    state: dict[str, Any],
    run_config: Mapping[str, Any],
    node_config: Mapping[str, Any],
) -> dict[str, Any]:
    """Runs the handler of ``kind`` on one message; ``state`` is updated in place.

    Raises
    ------
    ValueError
        For an unknown kind or a message the client cannot act on
        (:class:`~xcloud.errors.IntegrityError`, a subclass, for a tampered one).
    """
    fn = HANDLERS.get(kind)
    if fn is None:
        raise ValueError(f"unknown message kind {kind!r}")
    node = _Node(state, run_config, node_config)
    if kind != "hello" and "identity" not in state:
        raise ValueError(f"{node.client_id} has not joined this session (no hello yet)")
    return fn(node, msg)


def _restarted_dp_state(initial: dict[str, Any], msg: Mapping[str, Any], steps_per_round: int) -> dict[str, Any]:
    """The accountant of a node without DP state: fresh, or charged for the trainings it did before a restart.

    A restarted SuperNode has lost its accountant. The server counts every
    training it sent to this client id (``prior_trainings``), and each is
    charged in full, even one cut short by the restart: the epsilon then
    reported is an upper bound, never less than what was spent.
    """
    prior = int(msg.get("prior_trainings", 0))
    if prior < 0:
        raise ValueError(f"prior_trainings must be >= 0, got {prior}")
    state = dict(initial)
    if prior:
        charged = [initial["noise_multiplier"], initial["sample_rate"], prior * steps_per_round]
        state["history"] = [*initial["history"], charged]
    return state
