"""The deployed protocol in one process (LoopbackTransport): equality with the simulation, keys, faults.

The same server and client code runs under Flower (tests/test_deploy_flower.py);
here the transport is direct calls, so faults can be switched on exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xcloud.deploy.config import run_config_from_flower, to_flower_config
from xcloud.deploy.loopback import LoopbackTransport
from xcloud.deploy.server import DeployServer
from xcloud.fl.config import RunConfig
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
    models = final_models(tmp_path, 3)
    assert len(models) == 3
    for v in models.values():
        assert np.array_equal(v, models["cloud-0"])
        assert np.abs(v - ref).max() <= PRECISION
    for row, sim in zip(result["rounds"], sim_rows, strict=True):
        assert row["accepted"] == ["cloud-0", "cloud-1", "cloud-2"] and row["dropped"] == {}
        assert row["weights"] == pytest.approx(sim.weights)
        assert row["val_loss"] == pytest.approx(sim.val_loss, abs=1e-4)
    assert result["key_holder"] == "cloud-0"
    kinds = [k for _, k in transport.sent]
    assert kinds.count("keygen") == 1 and kinds.count("train") == 6


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


def test_restarted_node_rejoins_and_catches_up(tmp_path: Path) -> None:
    # Prepare
    cfg = tiny(rounds=3)
    server, transport, _ = deployed(cfg, tmp_path)
    server.wait_for_nodes()
    server.train_round(0)
    # Execute: cloud-1's SuperNode dies (state lost) and comes back as a new node.
    transport.remove_node(2)
    r1 = server.train_round(1)
    transport.add_node({"partition-id": 1})
    r2 = server.train_round(2)
    server.evaluate()
    # Assert
    assert r1.accepted == ["cloud-0", "cloud-2"] and "offline" in r1.dropped["cloud-1"]
    assert r2.accepted == ["cloud-0", "cloud-1", "cloud-2"]
    kinds = [k for _, k in transport.sent]
    assert kinds.count("keygen") == 2  # the setup, then a reseal for the newcomer
    digests = {c["model_sha256"] for c in server.final["clients"].values()}
    assert len(digests) == 1 and len(server.final["clients"]) == 3


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
