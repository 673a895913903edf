"""bench/compare.py's passes: later passes re-time the fast cases, interleaved, and a row keeps its best pass."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

import benchlib as bl  # noqa: E402
import compare  # noqa: E402


class FakeCase:
    """A case whose calls take the times of a script, one per call (read by a fake clock)."""

    def __init__(self, name: str, op: str, baseline: bool, per_pass: list[float], self_timed: float | None = None):
        self.impl = type("Impl", (), {"name": name})()
        self.op, self.inputs, self.label, self.is_baseline, self.threads_used = op, 1, name, baseline, 1
        self.per_pass, self.self_timed, self.prepared = per_pass, self_timed, 0

    def ident(self, n: int) -> str:
        return f"{self.op}-{self.label}"

    def group(self, n: int) -> str:
        return f"{self.op}-{n}"

    def prepare(self, n: int) -> bl.Prepared:
        seconds = self.per_pass[self.prepared]
        self.prepared += 1
        prep = bl.Prepared(run=lambda: CLOCK.spend(seconds), values=n, output_bytes=lambda r: 4 * n)
        if self.self_timed is not None:
            prep.seconds = self.self_timed
        return prep


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def spend(self, s: float) -> bytes:
        self.now += s
        return b""

    def perf_counter(self) -> float:
        return self.now


CLOCK = Clock()


@pytest.fixture
def cases(monkeypatch: pytest.MonkeyPatch) -> list[FakeCase]:
    made = [
        FakeCase("AES", "encrypt", True, [0.010, 0.004, 0.008]),  # best in pass 2
        FakeCase("kernel", "encrypt", False, [0.020, 0.030, 0.016]),  # best in pass 3
        FakeCase("slow peer", "encrypt", False, [2.0, 0.5, 0.5]),  # over the limit: pass 1 only
        FakeCase("self-timed peer", "encrypt", False, [0.1, 0.1, 0.1], self_timed=0.7),  # pass 1 only
    ]
    monkeypatch.setattr(bl, "all_cases", lambda: made)
    monkeypatch.setattr(bl, "release_all", lambda: None)
    monkeypatch.setattr(compare.time, "perf_counter", CLOCK.perf_counter)
    return made


def test_rows_keep_their_best_pass_and_ratios_use_the_best_rows(cases: list[FakeCase]) -> None:
    rows, unavailable = compare.run_all([1000], repeat=2, min_time=0.0, only=None, passes=3)
    by = {r["implementation"]: r for r in rows}
    assert not unavailable and len(rows) == 4
    assert by["AES"]["seconds"] == pytest.approx(0.004) and by["AES"]["best_pass"] == 2
    assert by["kernel"]["seconds"] == pytest.approx(0.016) and by["kernel"]["best_pass"] == 3
    assert len(by["kernel"]["times_s"]) == 3 * 2  # every pass's calls are kept
    assert by["kernel"]["ratio_to_aes"] == pytest.approx(0.004 / 0.016)
    # Slow and self-timed cases are prepared once.
    assert [c.prepared for c in cases] == [3, 3, 1, 1]
    assert by["slow peer"]["seconds"] == pytest.approx(2.0) and by["slow peer"]["best_pass"] == 1
    assert by["self-timed peer"]["seconds"] == pytest.approx(0.7)


def test_one_pass_is_the_old_behaviour(cases: list[FakeCase]) -> None:
    rows, _ = compare.run_all([1000], repeat=2, min_time=0.0, only=None, passes=1)
    assert [r["best_pass"] for r in rows] == [1, 1, 1, 1]
    assert [c.prepared for c in cases] == [1, 1, 1, 1]
    assert {r["implementation"]: r["seconds"] for r in rows}["kernel"] == pytest.approx(0.020)
