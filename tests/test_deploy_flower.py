"""End to end on Flower: a real SuperLink and three SuperNodes as separate processes, TLS on loopback.

Two encrypted rounds of a tiny model must give the in-process simulation's
model for the same seeds and data (within the kernel's 2^-16); a SuperNode
killed during a round must be left out, reported, and the round completed
by the others. Select with ``-m deploy``; skipped without the ``[deploy]``
extra (flwr).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("flwr", reason="the Flower end-to-end tests need the [deploy] extra: pip install '.[deploy]'")

from test_deploy_protocol import PRECISION, final_models, simulated, tiny  # noqa: E402

from xcloud.deploy.launcher import LocalFederation  # noqa: E402

pytestmark = pytest.mark.deploy


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFederation]:
    fed = LocalFederation(tmp_path_factory.mktemp("federation"), nodes=3, node_auth=True, limit_s=600)
    try:
        fed.start()
        yield fed
    finally:
        fed.stop()


def test_two_encrypted_rounds_equal_the_simulation(federation: LocalFederation, tmp_path: Path) -> None:
    # Prepare
    cfg = tiny()
    work = tmp_path / "work"
    # Execute
    result = federation.run_app(cfg, timeout=420, work_dir=str(work), save_model=True, round_timeout=240.0)
    ref, sim_rows = simulated(cfg, tmp_path)
    # Assert
    assert [r["accepted"] for r in result["rounds"]] == [["cloud-0", "cloud-1", "cloud-2"]] * 2
    models = final_models(work, 3)
    assert len(models) == 3
    for v in models.values():
        assert np.array_equal(v, models["cloud-0"])
        assert np.abs(v - ref).max() <= PRECISION
    for row, sim in zip(result["rounds"], sim_rows, strict=True):
        assert row["weights"] == pytest.approx(sim.weights)
    assert result["final"]["failed"] == {}


def test_supernode_killed_mid_round_is_left_out(federation: LocalFederation, tmp_path: Path) -> None:
    # Prepare: cloud-2 stalls in round 0 (after writing a marker file), so it is mid-round when killed.
    cfg = tiny(rounds=1)
    work = tmp_path / "work"
    marker = work / "cloud-2" / "stalled-round-0"
    # Execute: run in a thread; kill cloud-2's SuperNode (and its ClientApp) once it is mid-round.
    out: dict[str, object] = {}

    def go() -> None:
        try:
            out["result"] = federation.run_app(
                cfg, timeout=420, work_dir=str(work), round_timeout=45.0, final_evaluate=False, fault="cloud-2:0:600"
            )
        except Exception as e:  # noqa: BLE001 - reported by the assertion below
            out["error"] = e

    t = threading.Thread(target=go)
    t.start()
    deadline = time.monotonic() + 300
    while not marker.exists() and time.monotonic() < deadline and t.is_alive():
        time.sleep(0.5)
    assert marker.exists(), f"cloud-2 never started round 0: {out}"
    federation.kill_node(2)
    t.join(timeout=420)
    # Assert
    assert "error" not in out, out
    row = out["result"]["rounds"][0]  # type: ignore[index]
    assert row["accepted"] == ["cloud-0", "cloud-1"]
    assert "cloud-2" in row["dropped"]
    assert len(row["weights"]) == 2
    assert out["result"]["final"] == {}  # type: ignore[index]
