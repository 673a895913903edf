"""The deployed protocol in one process (LoopbackTransport): equality with the simulation, keys, faults.

The same server and client code runs under Flower (tests/test_deploy_flower.py);
here the transport is direct calls, so faults can be switched on exactly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xcloud.deploy.config import run_config_from_flower, to_flower_config
from xcloud.deploy.loopback import LoopbackTransport
from xcloud.deploy.server import DeployServer
from xcloud.fl.config import PLAIN_FEDAVG, RunConfig
from xcloud.fl.errors import NotEnoughClients
from xcloud.fl.simulation import FederatedRun

pytestmark = pytest.mark.deploy

PRECISION = 2.0**-16  # the kernel's guarantee for a weighted aggregate


def tiny(**kw: Any) -> RunConfig:
    base: dict[str, Any] = {
        "method": "he",
        "clouds": 3,
        "rounds": 2,
        "local_steps": 2,
        "batch_size": 4,
        "notes_per_hospital": 30,
        "n_layer": 1,
        "n_head": 2,
        "n_embd": 16,
        "block_size": 32,
        "vocab_size": 200,
        "threads": 1,
        "min_clients": 2,
        "device": "cpu",
        **PLAIN_FEDAVG,  # the tests that want drift correction, momentum or a schedule say so
    }
    base.update(kw)
    return RunConfig(**base)


def deployed(cfg: RunConfig, tmp: Path, **deploy: Any) -> tuple[DeployServer, LoopbackTransport, dict[str, Any]]:
    rc = to_flower_config(cfg, work_dir=str(tmp), save_model=True, join_timeout=1.0, round_timeout=1.0, **deploy)
    transport = LoopbackTransport(rc, [{"partition-id": k} for k in range(cfg.clouds)])
    server = DeployServer(transport, rc, sleep=lambda s: None)
    return server, transport, rc


def final_models(tmp: Path, clouds: int) -> dict[str, np.ndarray]:
    return {f"cloud-{k}": np.load(p) for k in range(clouds) if (p := tmp / f"cloud-{k}" / "final_model.npy").exists()}


def assert_one_model_equal_to(tmp: Path, clouds: int, ref: np.ndarray) -> None:
    """Every client saved its final model; all are the same and equal ``ref`` within the kernel's precision."""
    models = final_models(tmp, clouds)
    assert len(models) == clouds
    for v in models.values():
        assert np.array_equal(v, models["cloud-0"])
        assert np.abs(v - ref).max() <= PRECISION


def simulated(cfg: RunConfig, tmp: Path) -> tuple[np.ndarray, list[Any]]:
    sim = FederatedRun(cfg, tmp / "sim")
    rows = [sim.run_round(r) for r in range(cfg.rounds)]
    return sim.layout.flatten(sim.global_state), rows


def test_run_config_round_trip() -> None:
    cfg = tiny(links=["same-region", "edge"], slowdowns=[1.0, 3.0], key_mode="public")
    rc = to_flower_config(cfg, round_timeout=5.0)
    assert run_config_from_flower(rc) == cfg
    assert rc["links"] == "same-region,edge" and rc["round-timeout"] == 5.0
    with pytest.raises(ValueError, match="unknown"):
        run_config_from_flower({**rc, "no-such-option": 1})
    with pytest.raises(ValueError, match="unknown deployment key"):
        to_flower_config(cfg, nonsense=1)


def test_deployed_run_equals_simulation(tmp_path: Path) -> None:
    # Prepare
    cfg = tiny()
    server, transport, _ = deployed(cfg, tmp_path)
    # Execute
    result = server.run_all()
    ref, sim_rows = simulated(cfg, tmp_path)
    # Assert: every client holds the same model, equal to the simulation's within the kernel's precision.
    assert_one_model_equal_to(tmp_path, 3, ref)
    for row, sim in zip(result["rounds"], sim_rows, strict=True):
        assert row["accepted"] == ["cloud-0", "cloud-1", "cloud-2"] and row["dropped"] == {}
        assert row["weights"] == pytest.approx(sim.weights)
        assert row["val_loss"] == pytest.approx(sim.val_loss, abs=1e-4)
    assert result["key_holder"] == "cloud-0"
    kinds = [k for _, k in transport.sent]
    assert kinds.count("keygen") == 1 and kinds.count("train") == 6


def test_scaffold_deployed_run_equals_simulation(tmp_path: Path) -> None:
    """Drift correction on the deployed path: each node keeps its own control variate between messages."""
    cfg = tiny(rounds=3, drift_correction="scaffold")
    server, _, _ = deployed(cfg, tmp_path)
    result = server.run_all()
    ref, sim_rows = simulated(cfg, tmp_path)
    assert_one_model_equal_to(tmp_path, 3, ref)
    for row, sim in zip(result["rounds"], sim_rows, strict=True):
        assert row["val_loss"] == pytest.approx(sim.val_loss, abs=1e-4)
    plain, _ = simulated(tiny(rounds=3), tmp_path / "plain")
    assert np.abs(plain - ref).max() > 100 * PRECISION  # the correction did change the training


def test_scaffold_public_key_restart_gets_the_federation_control_variate(tmp_path: Path) -> None:
    cfg = tiny(rounds=3, key_mode="public", drift_correction="scaffold")
    server, transport, _ = deployed(cfg, tmp_path)
    server.wait_for_nodes()
    server.train_round(0)
    server.train_round(1)
    transport.remove_node(2)
    transport.add_node({"partition-id": 1})  # same client id, new identity, lost state
    r2 = server.train_round(2)
    server.evaluate()
    assert r2.accepted == ["cloud-0", "cloud-1", "cloud-2"] and r2.dropped == {}
    assert [k for _, k in transport.sent].count("handover") == 1
    final = server.final["clients"]
    assert len(final) == 3 and len({c["model_sha256"] for c in final.values()}) == 1
    # The federation's control variate accumulates every round's increments: the restarted node,
    # which could open none of the earlier releases, holds the same one because the handover carried it.
    feds = {state["control_fed"] for _, state in transport.nodes.values()}
    assert len(feds) == 1 and any(np.frombuffer(next(iter(feds)), np.float32))


def test_server_never_holds_the_secret_key(tmp_path: Path) -> None:
    # Prepare: record every answer the server receives.
    cfg = tiny(rounds=1)
    server, transport, _ = deployed(cfg, tmp_path, final_evaluate=False)
    seen: list[bytes] = []

    def record(nid: int, kind: str, out: dict[str, Any]) -> dict[str, Any]:
        for v in out.values():
            seen.extend(v if isinstance(v, list) else [v])
        return out

    transport.tamper = record
    # Execute
    server.run_all()
    # Assert: the clients' secret key appears in nothing the server got.
    _, state = transport.nodes[1]
    secret = bytes(state["keys"])
    assert len(secret) > 1000
    for v in seen:
        if isinstance(v, bytes):
            assert secret not in v
    assert server.aggregator.key_id == server.key_id


def test_lost_node_is_left_out_and_reported(tmp_path: Path) -> None:
    # Prepare: cloud-2 (node 3) stops answering from round 1 on, like a killed SuperNode.
    cfg = tiny()
    server, transport, _ = deployed(cfg, tmp_path)
    # Execute
    server.wait_for_nodes()
    r0 = server.train_round(0)
    transport.lost.add(3)
    r1 = server.train_round(1)
    server.evaluate()
    # Assert
    assert r0.accepted == ["cloud-0", "cloud-1", "cloud-2"]
    assert r1.accepted == ["cloud-0", "cloud-1"]
    assert "no answer within" in r1.dropped["cloud-2"]
    assert len(r1.weights) == 2 and sum(r1.weights) == pytest.approx(1.0)
    assert sorted(server.final["clients"]) == ["cloud-0", "cloud-1"]
    models = final_models(tmp_path, 3)
    assert np.array_equal(models["cloud-0"], models["cloud-1"]) and "cloud-2" not in models


def test_too_few_clients_fails_the_round(tmp_path: Path) -> None:
    cfg = tiny(min_clients=3)
    server, transport, _ = deployed(cfg, tmp_path)
    server.wait_for_nodes()
    server.train_round(0)
    transport.lost.add(2)
    with pytest.raises(NotEnoughClients):
        server.train_round(1)


@pytest.mark.parametrize("key_mode", ["shared", "public"])
def test_restarted_node_rejoins_and_catches_up(tmp_path: Path, key_mode: str) -> None:
    # Prepare
    cfg = tiny(rounds=3, key_mode=key_mode)
    server, transport, _ = deployed(cfg, tmp_path)
    server.wait_for_nodes()
    server.train_round(0)
    # Execute: cloud-1's SuperNode dies (state and identity lost) and comes back as a new node.
    transport.remove_node(2)
    r1 = server.train_round(1)
    transport.add_node({"partition-id": 1})
    r2 = server.train_round(2)
    server.evaluate()
    # Assert: it trains in round 2 from the model the others hold, and ends on the same model.
    assert r1.accepted == ["cloud-0", "cloud-2"] and "offline" in r1.dropped["cloud-1"]
    assert r2.accepted == ["cloud-0", "cloud-1", "cloud-2"] and r2.dropped == {}
    kinds = [k for _, k in transport.sent]
    if key_mode == "shared":
        assert kinds.count("keygen") == 2  # the setup, then a reseal for the newcomer
        assert "handover" not in kinds
    else:  # it cannot open releases sealed to its old identity: the key holder hands the model over
        assert kinds.count("keygen") == 1 and kinds.count("handover") == 1
    final = server.final["clients"]
    assert len(final) == 3 and len({c["model_sha256"] for c in final.values()}) == 1
    assert {c["version"] for c in final.values()} == {3}


def test_public_key_restart_between_rounds_gets_a_handover(tmp_path: Path) -> None:
    """A SuperNode restarted between two rounds is never offline in a round, yet its old releases are useless."""
    cfg = tiny(rounds=3, key_mode="public")
    server, transport, _ = deployed(cfg, tmp_path)
    server.wait_for_nodes()
    server.train_round(0)
    transport.remove_node(2)
    transport.add_node({"partition-id": 1})  # same client id, new identity, before round 1
    r1 = server.train_round(1)
    r2 = server.train_round(2)
    server.evaluate()
    assert r1.accepted == r2.accepted == ["cloud-0", "cloud-1", "cloud-2"]
    assert r1.dropped == r2.dropped == {}
    assert [k for _, k in transport.sent].count("handover") == 1
    final = server.final["clients"]
    assert len(final) == 3 and len({c["model_sha256"] for c in final.values()}) == 1


def _spoiling(kind: str, changes: dict[str, Any]) -> Any:
    """A transport tamper hook: node 2's (cloud-1's) replies of ``kind`` get ``changes`` (None deletes the field)."""

    def spoil(nid: int, reply_kind: str, out: dict[str, Any]) -> dict[str, Any]:
        if reply_kind == kind and nid == 2:
            out = dict(out)
            for k, v in changes.items():
                if v is None:
                    del out[k]
                else:
                    out[k] = v
        return out

    return spoil


@pytest.mark.parametrize("sync", ["sync", "async"])
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("stats", "not json"),
        ("stats", '{"examples": "many"}'),
        ("val_loss", "nan"),
        ("update", None),
        # Beyond the float range (OverflowError, not ValueError) and nested too deeply (RecursionError):
        ("stats", '{"examples": ' + "1" * 400 + ', "loss": 1, "train_seconds": 1, "encrypt_seconds": 1}'),
        ("stats", '{"examples": 10, "loss": 1e308, "train_seconds": 1, "encrypt_seconds": 1}'),
        ("stats", "[" * 100_000),
        ("val_loss", 10**400),
        ("update", 2**62),  # bytes(2**62) would try to allocate 4 EiB
        ("update", [1, 2, 3]),
    ],
)
def test_malformed_reply_drops_only_that_client(tmp_path: Path, sync: str, field: str, value: Any) -> None:
    """Fields outside the update's MAC are checked: a bad one costs its client the round, never the server."""
    extra = {"sync": "async", "buffer_size": 3} if sync == "async" else {}
    cfg = tiny(rounds=1, **extra)
    server, transport, _ = deployed(cfg, tmp_path, final_evaluate=False)

    transport.tamper = _spoiling("train", {field: value})
    row = server.run_all()["rounds"][0]
    assert row["accepted"] == ["cloud-0", "cloud-2"]
    assert "malformed reply" in row["dropped"]["cloud-1"]


@pytest.mark.parametrize(
    "change",
    [{"mac_key": None}, {"version": "x"}, {"mac_key": 2**62}, {"has_key": "yes"}, {"client_id": 7}],
    ids=["no-mac-key", "version-str", "mac-key-int", "has-key-str", "client-id-int"],
)
def test_a_malformed_hello_refuses_only_that_node(tmp_path: Path, change: dict[str, Any]) -> None:
    cfg = tiny(rounds=1)
    server, transport, _ = deployed(cfg, tmp_path, final_evaluate=False)

    transport.tamper = _spoiling("hello", change)
    row = server.run_all()["rounds"][0]
    assert row["accepted"] == ["cloud-0", "cloud-2"]  # the run goes on without the node that could not join
    assert list(row["dropped"]) == ["node 2"]  # it has no client id yet
    assert row["dropped"]["node 2"].startswith("refused at join: malformed hello")


def _failing_hello(nid: int, kind: str, out: dict[str, Any]) -> dict[str, Any]:
    """A transport tamper hook: node 2's ``hello`` handler fails (the loopback turns it into an error reply)."""
    if kind == "hello" and nid == 2:
        raise RuntimeError("no hello today")
    return out


@pytest.mark.parametrize("sync", ["sync", "async"])
def test_a_failed_hello_is_listed_in_dropped(tmp_path: Path, sync: str) -> None:
    extra = {"sync": "async", "buffer_size": 2} if sync == "async" else {}
    cfg = tiny(rounds=1, **extra)
    server, transport, _ = deployed(cfg, tmp_path, final_evaluate=False)

    transport.tamper = _failing_hello
    row = server.run_all()["rounds"][0]
    assert row["accepted"] == ["cloud-0", "cloud-2"]
    assert row["dropped"] == {"node 2": "did not join: client failed: RuntimeError: no hello today"}
    assert sorted(server.members) == ["cloud-0", "cloud-2"]


def test_no_node_joining_an_encrypted_run_is_a_clear_error(tmp_path: Path) -> None:
    cfg = tiny(rounds=1)
    server, transport, _ = deployed(cfg, tmp_path, final_evaluate=False)

    transport.tamper = lambda nid, kind, out: _failing_hello(2, kind, out)  # every node's hello fails
    expected = r"no client has joined, .*\(node 1 did not join: client failed.*node 3 did not join"
    with pytest.raises(NotEnoughClients, match=expected):
        server.run_all()


def test_a_hello_without_answer_is_listed_in_dropped(tmp_path: Path) -> None:
    cfg = tiny()
    server, transport, _ = deployed(cfg, tmp_path, final_evaluate=False)
    server.wait_for_nodes()

    transport.lost.add(2)  # connected, but it never answers its hello
    r0 = server.train_round(0)
    transport.remove_node(2)  # then it leaves: nothing to report about it any more
    r1 = server.train_round(1)
    assert r0.accepted == r1.accepted == ["cloud-0", "cloud-2"]
    assert list(r0.dropped) == ["node 2"] and "did not join: no answer within" in r0.dropped["node 2"]
    assert r1.dropped == {}


@pytest.mark.parametrize("sync", ["sync", "async"])
def test_a_node_that_joins_later_is_no_longer_listed(tmp_path: Path, sync: str) -> None:
    extra = {"sync": "async", "buffer_size": 2} if sync == "async" else {}
    cfg = tiny(rounds=2, **extra)
    server, transport, _ = deployed(cfg, tmp_path)

    def heal(row: Any) -> None:
        transport.tamper = None  # node 2 says hello properly from the next round on

    transport.tamper = _failing_hello
    result = server.run_all(on_round=heal)
    r0, r1 = result["rounds"]
    assert r0["accepted"] == ["cloud-0", "cloud-2"] and list(r0["dropped"]) == ["node 2"]
    assert "cloud-1" in r1["accepted"] and r1["dropped"] == {}
    final = result["final"]["clients"]
    assert len(final) == 3 and len({c["model_sha256"] for c in final.values()}) == 1


def test_a_malformed_evaluate_reply_is_recorded_and_the_results_are_kept(tmp_path: Path) -> None:
    cfg = tiny(rounds=1)
    server, transport, _ = deployed(cfg, tmp_path)

    transport.tamper = _spoiling("evaluate", {"val_loss": None})
    result = server.run_all()
    assert sorted(result["final"]["clients"]) == ["cloud-0", "cloud-2"]
    assert "malformed evaluate reply" in result["final"]["failed"]["cloud-1"]


def test_tampered_update_is_rejected_and_round_goes_on(tmp_path: Path) -> None:
    cfg = tiny(rounds=1)
    server, transport, _ = deployed(cfg, tmp_path, final_evaluate=False)

    def flip(nid: int, kind: str, out: dict[str, Any]) -> dict[str, Any]:
        if kind == "train" and nid == 2:
            blob = bytearray(out["update"])
            blob[len(blob) // 2] ^= 1
            out["update"] = bytes(blob)
        return out

    transport.tamper = flip
    result = server.run_all()
    row = result["rounds"][0]
    assert row["accepted"] == ["cloud-0", "cloud-2"]
    assert "update rejected" in row["dropped"]["cloud-1"]


def test_public_key_mode_and_xcloud_method(tmp_path: Path) -> None:
    # Prepare: hybrid encryption, dynamic weights, record-level DP; clients hold only the public key.
    cfg = tiny(method="xcloud", key_mode="public", clouds=2)
    server, transport, _ = deployed(cfg, tmp_path)
    # Execute
    result = server.run_all()
    # Assert: the key holder kept the secret key; the others got the public key; all hold one model.
    states = {transport.nodes[n][0]["partition-id"]: transport.nodes[n][1] for n in transport.nodes}
    import xcloud

    ctx = xcloud.CkksContext()
    assert xcloud.KeySet.from_bytes(ctx, states[0]["keys"]).has_secret
    assert not xcloud.KeySet.from_bytes(ctx, states[1]["keys"]).has_secret
    models = final_models(tmp_path, 2)
    assert len(models) == 2 and np.array_equal(models["cloud-0"], models["cloud-1"])
    assert all(len(r["weights"]) == 2 for r in result["rounds"])
    assert result["rounds"][-1]["epsilon"] is not None


@pytest.mark.parametrize(
    ("key_mode", "kind", "message"),
    [("shared", "keygen", "key setup failed"), ("public", "release", "release of round 0 is malformed")],
)
def test_a_malformed_key_holder_answer_is_a_clear_runtime_error(
    tmp_path: Path, key_mode: str, kind: str, message: str
) -> None:
    """Without the key holder's answer nobody can decrypt: the run stops, with a RuntimeError that says why."""
    cfg = tiny(key_mode=key_mode, rounds=1)
    server, transport, _ = deployed(cfg, tmp_path, final_evaluate=False)

    def spoil(nid: int, reply_kind: str, out: dict[str, Any]) -> dict[str, Any]:
        return {**out, "sealed": 5} if reply_kind == kind else out  # not a list of sealed blobs

    transport.tamper = spoil
    with pytest.raises(RuntimeError, match=message):
        server.run_all()


def test_async_full_buffer_equals_the_simulations_async_run(tmp_path: Path) -> None:
    # Prepare: FedBuff with K = every cloud and nobody slow: each version takes all three fresh updates.
    cfg = tiny(sync="async", buffer_size=3)
    server, _, _ = deployed(cfg, tmp_path)
    # Execute
    result = server.run_all()
    ref, sim_rows = simulated(cfg, tmp_path)
    # Assert
    assert_one_model_equal_to(tmp_path, 3, ref)
    for row, sim in zip(result["rounds"], sim_rows, strict=True):
        assert row["accepted"] == sim.clients and row["staleness"] == sim.staleness == [0, 0, 0]
        assert row["weights"] == pytest.approx(sim.weights)
    assert result["sync"] == "async" and result["unused"] == {}


@pytest.mark.parametrize("key_mode", ["shared", "public"])
def test_async_slow_node_is_aggregated_late_with_discounted_weight(tmp_path: Path, key_mode: str) -> None:
    # Prepare: K = 2 of 3; cloud-2 (node 3) answers only on the second poll after each message.
    cfg = tiny(sync="async", buffer_size=2, rounds=3, staleness_exponent=1.0, key_mode=key_mode)
    server, transport, _ = deployed(cfg, tmp_path)
    transport.slow[3] = 2
    # Execute
    result = server.run_all()
    rows = result["rounds"]
    # Assert: version 0 closes without the slow node, whose update joins version 1 one version late.
    assert rows[0]["accepted"] == ["cloud-0", "cloud-1"] and rows[0]["in_flight"] == ["cloud-2"]
    assert rows[1]["accepted"] == ["cloud-0", "cloud-2"] and rows[1]["staleness"] == [0, 1]
    assert rows[2]["accepted"] == ["cloud-0", "cloud-1"] and rows[2]["staleness"] == [0, 1]
    # FedAvg weights by sample count, then (1 + s)^-1 for the stale one.
    w0, w2 = rows[1]["weights"]
    n = {c: len(server.run.train_sets[int(c[-1])]) for c in ("cloud-0", "cloud-2")}
    assert w2 / w0 == pytest.approx(0.5 * n["cloud-2"] / n["cloud-0"], rel=1e-3)
    # cloud-2's last training came after the last aggregation; everyone ends on one model.
    assert "cloud-2" in result["unused"]
    digests = {c["model_sha256"] for c in result["final"]["clients"].values()}
    assert len(result["final"]["clients"]) == 3 and len(digests) == 1
    assert all(c["version"] == 3 for c in result["final"]["clients"].values())


def _write_local_notes(root: Path, n: int) -> Path:
    root.mkdir(parents=True)
    text = "patient {} admitted with chest pain, troponin negative, discharged day {}"
    lines = [json.dumps({"text": text.format(i, i % 5)}) for i in range(n)]
    (root / "notes.jsonl").write_text("\n".join(lines) + "\n")
    (root / "more.txt").write_text("follow up in clinic.\n\nno fever overnight, stable on room air.\n")
    return root


def test_node_with_its_own_data_trains_on_it(tmp_path: Path) -> None:
    # Prepare: cloud-1's SuperNode points at a directory that exists only there; the others rebuild their shards.
    cfg = tiny(method="fedavg", rounds=1)
    local = _write_local_notes(tmp_path / "cloud-1-notes", 40)
    rc = to_flower_config(cfg, work_dir=str(tmp_path / "work"), save_model=True, join_timeout=1.0, round_timeout=1.0)
    nodes = [{"partition-id": 0}, {"partition-id": 1, "data-dir": str(local)}, {"partition-id": 2}]
    server = DeployServer(LoopbackTransport(rc, nodes), rc, sleep=lambda s: None)
    # Execute
    result = server.run_all()
    ref = FederatedRun(cfg, tmp_path / "sim")
    # Assert: cloud-1 trained on its 42 local notes (split as a shard is), verified through a manifest.
    manifest = json.loads((tmp_path / "work" / "cloud-1" / "local-shard" / "client_000" / "manifest.json").read_text())
    assert manifest["num_notes"] == 42
    row = result["rounds"][0]
    assert row["accepted"] == ["cloud-0", "cloud-1", "cloud-2"]
    sizes = [len(ref.train_sets[0]), 42 - round(cfg.val_fraction * 42), len(ref.train_sets[2])]
    assert row["weights"] == pytest.approx([s / sum(sizes) for s in sizes], rel=1e-6)
    models = final_models(tmp_path / "work", 3)
    assert len(models) == 3 and all(np.array_equal(v, models["cloud-0"]) for v in models.values())


def test_local_data_recalibrates_that_clouds_dp_accountant(tmp_path: Path) -> None:
    """A node's own notes replace its training set; its DP-SGD accountant follows their count, at the DP batch."""
    from xcloud.deploy.local_data import use_local_data

    run = FederatedRun(tiny(method="dp", rounds=1, dp_batch_size=6), tmp_path / "run")
    before = run.dp["cloud-1"]
    use_local_data(run, 1, _write_local_notes(tmp_path / "notes", 40), tmp_path / "work")
    n = len(run.train_sets[1])
    assert n == 42 - round(run.cfg.val_fraction * 42) and run.dp["cloud-1"] is not before
    assert run.dp["cloud-1"].expected_batch_size == 6 and run.dp["cloud-1"].sample_rate == pytest.approx(6 / n)
    assert run.dp["cloud-0"].sample_rate == pytest.approx(6 / len(run.train_sets[0]))  # the others keep theirs


def test_missing_local_data_fails_that_client_only(tmp_path: Path) -> None:
    cfg = tiny(method="fedavg", rounds=1)
    rc = to_flower_config(cfg, work_dir=str(tmp_path), final_evaluate=False, join_timeout=1.0, round_timeout=1.0)
    nodes = [{"partition-id": 0}, {"partition-id": 1}, {"partition-id": 2, "data-dir": str(tmp_path / "nowhere")}]
    result = DeployServer(LoopbackTransport(rc, nodes), rc, sleep=lambda s: None).run_all()
    row = result["rounds"][0]
    assert row["accepted"] == ["cloud-0", "cloud-1"]
    assert "FileNotFoundError" in row["dropped"]["cloud-2"] and "nowhere" in row["dropped"]["cloud-2"]


def test_handed_over_model_for_another_client_is_refused(tmp_path: Path) -> None:
    # Prepare: as above, but the relayed handover blob is swapped for one sealed to another client.
    cfg = tiny(key_mode="public", rounds=2)
    server, transport, _ = deployed(cfg, tmp_path, final_evaluate=False)
    server.wait_for_nodes()
    server.train_round(0)
    transport.remove_node(2)
    transport.add_node({"partition-id": 1})

    def swap(nid: int, kind: str, out: dict[str, Any]) -> dict[str, Any]:
        if kind == "handover":
            out["recipients"] = ["cloud-1"]
            out["sealed"] = [out["sealed"][0][:-1] + bytes([out["sealed"][0][-1] ^ 1])]
        return out

    transport.tamper = swap
    # Execute
    r1 = server.train_round(1)
    # Assert: the newcomer refuses the blob (its round fails, reported); the others go on.
    assert r1.accepted == ["cloud-0", "cloud-2"]
    assert "IntegrityError" in r1.dropped["cloud-1"]


def test_overhead_measurement_in_process(tmp_path: Path) -> None:
    from xcloud.deploy.overhead import measure_overhead

    out = measure_overhead(tiny(), tmp_path, flower=False)
    assert "flower" not in out
    for path in ("simulation", "loopback"):
        assert len(out[path]["round_s"]) == 2 and all(t > 0 for t in out[path]["round_s"])
        assert out[path]["later_mean_s"] == pytest.approx(out[path]["round_s"][1])
        assert len(out[path]["load_before"]) == 3


def test_deploy_table_shows_staleness() -> None:
    from xcloud.cli.deploy import _table

    row = {"round": 3, "train_loss": 5.0, "val_loss": None, "bytes_up": 10**6, "bytes_down": 2 * 10**6}
    row.update({"round_s": 1.5, "accepted": ["cloud-0", "cloud-2"], "staleness": [0, 2], "dropped": {}})
    header, line = _table({"rounds": [row]}).splitlines()
    assert header.split()[-3:] == ["stale", "left", "out"]
    assert line.split()[-2:] == ["2", "-"]


def test_adam_global_step_equals_the_simulation(tmp_path: Path) -> None:
    # The clients apply the global step themselves; FedAdam keeps two moments in each client's state.
    cfg = tiny(server_optimizer="adam", server_lr=0.01, server_momentum=0.9)
    server, _, _ = deployed(cfg, tmp_path)
    server.run_all()
    ref, _ = simulated(cfg, tmp_path)
    assert_one_model_equal_to(tmp_path, 3, ref)


def test_app_template_config_is_a_valid_run_config() -> None:
    import tomllib

    from xcloud.deploy.config import DeployOptions
    from xcloud.deploy.launcher import TEMPLATE

    config = tomllib.loads(TEMPLATE.read_text())["tool"]["flwr"]["app"]["config"]
    cfg = run_config_from_flower(config)  # every key known, every value of the right type
    DeployOptions(config)
    assert cfg.sync == "sync" and "buffer-size" in config and "max-staleness" in config
    assert (cfg.drift_correction, cfg.server_momentum) == ("auto", 0.5)  # as xcloud run
    # DP-SGD on the template's own batch of 16 at 0.01 over its 300 notes per hospital, constant rates over its
    # three rounds and 15% held out (xcloud run's default: 256 at 0.007, a late cosine, 2% of 30,000 notes).
    assert (cfg.dp_batch_size, cfg.dp_lr, cfg.lr_schedule, cfg.val_fraction) == (0, 0.01, "constant", 0.15)
    assert cfg.notes_per_hospital == 300


def test_restarted_node_is_charged_for_the_trainings_before_its_restart() -> None:
    """A restarted SuperNode lost its accountant; the server's count of its trainings is charged in full."""
    from xcloud.deploy.node import _restarted_dp_state
    from xcloud.privacy import RecordDP, RecordDPConfig

    def fresh() -> RecordDP:
        return RecordDP(
            RecordDPConfig(target_epsilon=8.0), dataset_size=200, batch_size=16, steps_per_round=5, total_rounds=4
        )

    initial = fresh().state_dict()
    trained = fresh()
    for _ in range(2 * 5):  # two local rounds before the restart
        trained.accountant.step(noise_multiplier=trained.noise_multiplier, sample_rate=trained.sample_rate)
    restarted = fresh()
    restarted.load_state_dict(_restarted_dp_state(initial, {"prior_trainings": 2}, 5))
    assert restarted.steps == 10
    assert restarted.epsilon() == pytest.approx(trained.epsilon(), rel=1e-9)
    untouched = fresh()
    untouched.load_state_dict(_restarted_dp_state(initial, {}, 5))
    assert untouched.steps == 0
    with pytest.raises(ValueError, match="prior_trainings"):
        _restarted_dp_state(initial, {"prior_trainings": -1}, 5)
