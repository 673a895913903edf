"""``xcloud experiment leakage --short``: the CI-sized run writes its tables, figure and report."""

from __future__ import annotations

import csv

import pytest

from xcloud.cli.main import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_short_experiment_writes_outputs(tmp_path, capsys):
    assert main(["experiment", "leakage", "--short", "--quiet", "--out", str(tmp_path)]) == 0
    run_dir = tmp_path / capsys.readouterr().out.strip().splitlines()[-1].split("/")[-1]
    for name in ("leakage.csv", "leakage_knob.csv", "leakage_epsilon.csv", "leakage_models.csv", "leakage.png"):
        assert (run_dir / name).stat().st_size > 0, name
    with open(run_dir / "leakage.csv") as f:
        rows = list(csv.DictReader(f))
    rate = {
        m: [float(r["rate"]) for r in rows if r["method"] == m and r["observer"] == "server"] for m in ("fedavg", "he")
    }
    assert min(rate["fedavg"]) > 0.8 and max(rate["he"]) < 0.2
    report = (run_dir / "report.md").read_text()
    assert "Privacy, measured" in report and "| fedavg |" in report


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--rounds", "0"], "--rounds"),
        (["--fractions", "0,2"], "--fractions"),
        (["--epsilons", "x"], "--epsilons"),
        (["--candidates", "0"], "--candidates"),
    ],
)
def test_bad_options_raise_value_error(tmp_path, argv, message):
    import argparse

    from xcloud.experiments import leakage

    p = argparse.ArgumentParser()
    p.add_argument("--short", action="store_true")
    leakage.add_arguments(p)
    args = p.parse_args(["--short", *argv])
    args.out, args.quiet = str(tmp_path), True
    with pytest.raises(ValueError, match=message):
        leakage.run(args)
