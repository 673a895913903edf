"""``xcloud experiment bandwidth`` and ``xcloud experiment sync`` in short mode: outputs, shapes and bad options.

Nothing here asserts a wall-clock time. Byte counts do not depend on the
machine, so the communication figures are checked against each other.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from xcloud.cli.main import main
from xcloud.experiments import bandwidth, sync


def _rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


@pytest.fixture(scope="module")
def bandwidth_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bw")
    args = ["experiment", "bandwidth", "--short", "--quiet", "--out", str(out), "--methods", "fedavg", "xcloud"]
    assert main(args + ["--bandwidths", "10", "100"]) == 0
    (run_dir,) = out.iterdir()
    return run_dir


def test_bandwidth_writes_figures_csv_and_report(bandwidth_run: Path) -> None:
    names = sorted(p.name for p in bandwidth_run.iterdir())
    assert names == [
        "bandwidth-communication.png",
        "bandwidth-computation.png",
        "bandwidth.csv",
        "bandwidth.json",
        "report.md",
    ]
    columns, rows = _rows(bandwidth_run / "bandwidth.csv")
    assert columns == list(bandwidth.COLUMNS)
    assert {(r["method"], float(r["bandwidth_mbps"])) for r in rows} == {
        (m, b) for m in ("fedavg", "xcloud") for b in (10.0, 100.0)
    }
    report = (bandwidth_run / "report.md").read_text()
    assert "Figures 2 and 3" in report and "![Figure 2]" in report and "At 100 Mbit/s the xcloud method" in report


def test_bandwidth_transfer_time_follows_the_link(bandwidth_run: Path) -> None:
    _, rows = _rows(bandwidth_run / "bandwidth.csv")
    for method in ("fedavg", "xcloud"):
        slow = next(r for r in rows if r["method"] == method and float(r["bandwidth_mbps"]) == 10.0)
        fast = next(r for r in rows if r["method"] == method and float(r["bandwidth_mbps"]) == 100.0)
        # Bytes do not depend on the link (up to the digits of the loss in the JSON header).
        assert int(slow["bytes_per_cloud"]) == pytest.approx(int(fast["bytes_per_cloud"]), rel=1e-3)
        up, down = int(slow["bytes_up_per_cloud"]), int(slow["bytes_down_per_cloud"])
        expected = (up + down) * 8 / 10e6 + 2 * bandwidth.LATENCY_MS / 1000
        assert float(slow["transfer_s"]) == pytest.approx(expected, rel=0.05)
        assert float(fast["transfer_s"]) < float(slow["transfer_s"])
        stages = sum(float(slow[k]) for k, _ in bandwidth.STAGES)
        assert stages == pytest.approx(float(slow["round_s"]), rel=1e-6)


def test_sync_short_run_compares_the_four_policies(tmp_path: Path) -> None:
    assert main(["experiment", "sync", "--short", "--quiet", "--out", str(tmp_path), "--method", "fedavg"]) == 0
    (run_dir,) = tmp_path.iterdir()
    assert sorted(p.name for p in run_dir.iterdir()) == ["report.md", "sync.csv", "sync.json", "sync.png"]
    columns, rows = _rows(run_dir / "sync.csv")
    assert columns == list(sync.COLUMNS)
    assert {r["policy"] for r in rows} == set(sync.POLICIES)
    synced = [r for r in rows if r["policy"] == "sync"]
    assert len(synced) == 3 and all(r["accepted"] == "4" for r in synced)
    asyncs = [r for r in rows if r["policy"] == "async"]
    assert all(r["accepted"] == "2" for r in asyncs)  # half the clouds per aggregation
    # The slow cloud's updates reach the async aggregations late, or are still in flight.
    times = [float(r["sim_time_s"]) for r in asyncs]
    assert times == sorted(times)
    assert "simulated s to target" in (run_dir / "report.md").read_text()


@pytest.mark.parametrize(
    "args, match",
    [
        (["bandwidth", "--rounds", "0"], "--rounds"),
        (["bandwidth", "--bandwidths", "-5"], "--bandwidths"),
        (["sync", "--slowdown", "0.5"], "--slowdown"),
        (["sync", "--target", "-1"], "--target"),
    ],
)
def test_bad_options_exit_2(args: list[str], match: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["experiment", *args, "--short", "--quiet", "--out", str(tmp_path)]) == 2
    assert match in capsys.readouterr().err


def test_time_to_target_is_the_first_hit() -> None:
    rows = [
        {"sim_time_s": 1.0, "val_loss": 3.0},
        {"sim_time_s": 2.0, "val_loss": 2.0},
        {"sim_time_s": 3.0, "val_loss": 1.9},
    ]
    assert sync.time_to_target(rows, 2.0) == 2.0
    assert sync.time_to_target(rows, 1.0) is None
