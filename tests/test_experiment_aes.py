"""``xcloud experiment aes``: the AES-256-GCM vs CKKS encryption-time comparison.

One short-mode run (100 k and 1 M values, one repeat) is shared by the output
tests. Nothing here asserts a time: only the shape of the outputs, the
precision of the decrypted values and the handling of bad options.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import pytest

import xcloud
from xcloud.cli import experiment
from xcloud.cli.main import main
from xcloud.experiments import aes

SECRET_BITS = 26  # fresh secret-key ciphertexts measure about 28.5 bits (README, Parameters and precision)
PUBLIC_BITS = 20  # fresh public-key ciphertexts about 21.5; 20 is the target for a fresh ciphertext
ROWS_PER_SIZE = 14  # AES + 2 modes x 3 variants, for each of encrypt and decrypt


@pytest.fixture(scope="module")
def short_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("experiments")
    assert main(["experiment", "aes", "--short", "--quiet", "--out", str(out)]) == 0
    (run_dir,) = out.iterdir()
    return run_dir


def _csv_rows(run_dir: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(run_dir / "aes.csv", newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def test_short_run_writes_every_output(short_run: Path) -> None:
    names = sorted(p.name for p in short_run.iterdir())

    assert names == ["aes.csv", "aes.json", "aes.png", "report.md"]
    assert short_run.name.endswith("-aes")
    assert (short_run / "aes.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_csv_has_the_columns_and_one_row_per_case_and_size(short_run: Path) -> None:
    columns, rows = _csv_rows(short_run)

    assert columns == list(aes.COLUMNS)
    assert len(rows) == 2 * ROWS_PER_SIZE
    assert sorted({int(r["values"]) for r in rows}) == list(aes.SHORT_SIZES)
    for n in aes.SHORT_SIZES:
        mine = [r for r in rows if int(r["values"]) == n]
        keys = {(r["operation"], r["implementation"], r["mode"], r["variant"]) for r in mine}
        assert len(keys) == ROWS_PER_SIZE
        for op in ("encrypt", "decrypt"):
            assert (op, "AES-256-GCM", "", "") in keys
            for mode in ("secret-key", "public-key"):
                for variant in ("naive", "batched", "block-parallel"):
                    assert (op, "xcloud", mode, variant) in keys
    assert all(r["repeats"] == "1" for r in rows)


def test_ratios_sizes_and_precision_are_consistent(short_run: Path) -> None:
    _, rows = _csv_rows(short_run)

    for r in rows:
        assert float(r["values_per_s"]) > 0
        if r["implementation"] == "AES-256-GCM":
            assert float(r["x_aes"]) == 1.0
            assert 4.0 <= float(r["bytes_per_value"]) < 4.01
            assert float(r["max_abs_error"]) == 0.0 and r["precision_bits"] == ""
            continue
        baseline = next(
            b
            for b in rows
            if b["implementation"] == "AES-256-GCM" and (b["values"], b["operation"]) == (r["values"], r["operation"])
        )
        ratio = float(r["values_per_s"]) / float(baseline["values_per_s"])
        assert float(r["x_aes"]) == pytest.approx(ratio)
        bits = float(r["precision_bits"])
        assert bits == pytest.approx(-float(r["log2_max_abs_error"]))
        if r["mode"] == "secret-key":
            assert bits >= SECRET_BITS
            assert 9.0 <= float(r["bytes_per_value"]) < 9.5
        else:
            assert bits >= PUBLIC_BITS
            assert 18.0 <= float(r["bytes_per_value"]) < 18.6


def test_json_record_has_config_machine_and_load(short_run: Path) -> None:
    rec = json.loads((short_run / "aes.json").read_text())

    assert rec["config"]["short"] is True
    assert rec["config"]["sizes"] == list(aes.SHORT_SIZES)
    assert rec["config"]["repeat"] == 1
    for key in ("cpu_model", "cores", "python", "xcloud", "date_utc"):
        assert rec["machine"][key], key
    assert set(rec["load"]) >= {"loadavg_before", "loadavg_after", "other_cpu_cores_during_run"}
    assert len(rec["rows"]) == 2 * ROWS_PER_SIZE


def test_markdown_section_has_the_table(short_run: Path) -> None:
    text = (short_run / "report.md").read_text()

    assert "## The paper's AES comparison: `xcloud experiment aes`" in text
    header = "| values | operation | implementation | threads | values/s | x AES-256-GCM | bytes/value |"
    assert header in text
    table_rows = [line for line in text.splitlines() if line.startswith("| 100 k ") or line.startswith("| 1 M ")]
    assert len(table_rows) == 2 * ROWS_PER_SIZE
    assert "![values per second](aes.png)" in text


@pytest.mark.parametrize("mode", ["secret-key", "public-key"])
@pytest.mark.parametrize("variant", ["naive", "batched", "block-parallel"])
def test_each_xcloud_case_round_trips_to_the_stated_precision(mode: str, variant: str) -> None:
    # Prepare: a size that leaves a partial last block
    runner = aes.Runner()
    x = aes.payload(3 * 4096 + 123, seed=7)
    threads = 2 if variant == "block-parallel" else 1
    enc = runner.prepare(aes.Case("encrypt", "xcloud", mode, variant, threads), x)
    dec = runner.prepare(aes.Case("decrypt", "xcloud", mode, variant, threads), x)

    # Execute
    ct = enc.run()
    cts = ct if isinstance(ct, list) else [ct]
    y_enc = np.concatenate([xcloud.decrypt_blocks(runner.keys, c, dtype="float64") for c in cts])
    y_dec = dec.run()

    # Assert
    bits = SECRET_BITS if mode == "secret-key" else PUBLIC_BITS
    assert len(cts) == (4 if variant == "naive" else 1)
    assert y_dec.dtype == np.float32 and y_dec.shape == x.shape
    assert np.max(np.abs(y_enc - x.astype(np.float64))) <= 2.0**-bits
    assert np.max(np.abs(y_dec.astype(np.float64) - x.astype(np.float64))) <= 2.0**-bits
    assert enc.check(ct)[1] <= 2.0**-bits


@pytest.mark.parametrize(
    "options, message",
    [
        (["--repeat", "0"], "--repeat"),
        (["--sizes", "0"], "--sizes"),
        (["--sizes", "10", "10"], "duplicate"),
        (["--threads", "0"], "--threads"),
    ],
)
def test_bad_option_values_exit_2_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], message: str
) -> None:
    rc = main(["experiment", "aes", "--quiet", "--out", str(tmp_path / "runs"), *options])

    assert rc == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # nothing written before the options are checked


@pytest.mark.parametrize("options", [["--sizes", "many"], ["--bogus"], ["--repeat"]])
def test_malformed_options_exit_2(tmp_path: Path, options: list[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["experiment", "aes", "--out", str(tmp_path), *options])

    assert e.value.code == 2


def test_out_that_is_a_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "file"
    target.write_text("")

    assert main(["experiment", "aes", "--quiet", "--sizes", "10", "--out", str(target)]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_experiment_without_a_name_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["experiment"]) == 2
    assert "aes" in capsys.readouterr().err


def test_help_explains_the_experiment(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["experiment", "aes", "--help"])

    assert e.value.code == 0
    text = capsys.readouterr().out
    for word in ("AES-256-GCM", "naive", "batched", "block-parallel", "--short", "--out"):
        assert word in text


def test_config_from_args_resolves_short_defaults() -> None:
    ns = argparse.Namespace(short=True, sizes=None, repeat=None, threads=None, seed=1)

    cfg = aes.config_from_args(ns)

    assert cfg.sizes == aes.SHORT_SIZES and cfg.repeat == 1 and cfg.warmup is False


def test_every_registered_experiment_follows_the_contract() -> None:
    names = [m.NAME for m in experiment.EXPERIMENTS]

    assert len(set(names)) == len(names)
    for module in experiment.EXPERIMENTS:
        assert isinstance(module.NAME, str) and isinstance(module.HELP, str) and module.__doc__
        assert callable(module.add_arguments) and callable(module.run)
