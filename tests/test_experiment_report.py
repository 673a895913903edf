"""The run-directory helper every ``xcloud experiment`` writes its outputs with."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest

from xcloud.experiments import report
from xcloud.experiments.report import RunDirectory


def test_create_makes_a_new_stamped_directory_each_time(tmp_path: Path) -> None:
    first = RunDirectory.create(tmp_path / "runs", "demo")
    second = RunDirectory.create(tmp_path / "runs", "demo")

    assert first.path.is_dir() and second.path.is_dir()
    assert first.path != second.path
    assert first.path.parent == tmp_path / "runs"
    assert first.path.name.endswith("-demo")
    assert time.strftime("%Y%m%d") in first.path.name


def test_create_refuses_a_file_as_root(tmp_path: Path) -> None:
    not_dir = tmp_path / "file"
    not_dir.write_text("x")

    with pytest.raises(ValueError, match="not a directory"):
        RunDirectory.create(not_dir, "demo")


def test_write_csv_uses_exactly_the_given_columns(tmp_path: Path) -> None:
    out = RunDirectory(tmp_path)
    rows = [{"a": 1, "b": 2.5, "ignored": "x"}, {"a": 3, "b": None}]

    path = out.write_csv("t.csv", rows, ["a", "b"])

    with open(path, newline="") as f:
        got = list(csv.reader(f))
    assert got == [["a", "b"], ["1", "2.5"], ["3", ""]]


def test_write_figure_writes_a_png(tmp_path: Path) -> None:
    out = RunDirectory(tmp_path)
    fig, ax = report.new_figure()
    ax.plot([0, 1], [1, 0])

    path = out.write_figure("f.png", fig)

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_write_record_holds_config_and_machine(tmp_path: Path) -> None:
    out = RunDirectory(tmp_path)

    path = out.write_record("r.json", {"sizes": [1, 2]}, load={"loadavg_before": [0.1]})

    rec = json.loads(path.read_text())
    assert rec["config"] == {"sizes": [1, 2]}
    assert rec["load"] == {"loadavg_before": [0.1]}
    for key in ("cpu_model", "cores", "python", "xcloud", "date_utc"):
        assert rec["machine"][key], key


def test_append_markdown_adds_sections_under_one_heading(tmp_path: Path) -> None:
    out = RunDirectory(tmp_path)

    out.append_markdown("first", "one\n")
    path = out.append_markdown("second", "two")

    text = path.read_text()
    assert path.name == "report.md"
    assert text.count("\n# ") + text.startswith("# ") == 1
    assert text.index("## first") < text.index("one") < text.index("## second") < text.index("two")


def test_markdown_table_formats_cells_and_marks_missing_values() -> None:
    rows = [{"x": 1.23456, "y": None}, {"x": 2.0, "y": "b"}]

    text = report.markdown_table(rows, {"x": "X", "y": "Y"}, {"x": lambda v: f"{v:.2f}"})

    assert text.splitlines() == ["| X | Y |", "|---|---|", "| 1.23 | - |", "| 2.00 | b |"]


def test_cpu_share_is_none_or_a_nonnegative_core_count() -> None:
    share = report.CpuShare()
    sum(range(10_000))

    other = share.other_cores()

    assert other is None or other >= 0.0
