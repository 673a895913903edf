"""Writing an experiment's outputs: a run directory with CSV rows, a PNG figure, Markdown and a JSON record.

Every experiment (``xcloud experiment NAME``) writes into one run directory
made by :meth:`RunDirectory.create`::

    runs/20261124-101500-aes/
        aes.csv      one row per measurement (RunDirectory.write_csv)
        aes.png      the figure (RunDirectory.write_figure)
        aes.json     config, machine and load (RunDirectory.write_record)
        report.md    one section per experiment, appended (RunDirectory.append_markdown)

Figures are plain :class:`matplotlib.figure.Figure` objects rendered with the
Agg canvas, so no display and no pyplot global state are involved.
:class:`CpuShare` records how much CPU other processes used while an
experiment ran (bench/ uses it too), since other work on the machine distorts
timings.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import math
import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["CpuShare", "RunDirectory", "cpu_info", "machine_info", "machine_label", "markdown_table", "new_figure"]

_CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512ifma", "aes", "vaes", "vpclmulqdq", "sha_ni", "hypervisor")
"""The /proc/cpuinfo flags worth recording next to a timing (SIMD and crypto extensions, virtualisation)."""


def cpu_info() -> dict[str, Any]:
    """CPU model name and the relevant flags, read from /proc/cpuinfo.

    Returns
    -------
    dict
        ``cpu_model`` (str) and, on Linux, ``cpu_flags`` (the subset of
        ``_CPU_FLAGS`` the first CPU reports). Elsewhere only ``cpu_model``,
        from :mod:`platform`.
    """
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {"cpu_model": platform.processor() or platform.machine()}
    info: dict[str, Any] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "model name" and "cpu_model" not in info:
            info["cpu_model"] = value
        elif key == "flags" and "cpu_flags" not in info:
            flags = set(value.split())
            info["cpu_flags"] = [f for f in _CPU_FLAGS if f in flags]
    info.setdefault("cpu_model", platform.processor() or platform.machine())
    return info


def machine_info() -> dict[str, Any]:
    """What a measurement ran on: CPU, cores, load, Python, numpy, xcloud version and the date (UTC)."""
    import numpy as np

    import xcloud

    info = cpu_info()
    info.update(
        {
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "xcloud": xcloud.__version__,
            "date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        }
    )
    return info


def machine_label(info: dict[str, Any] | None = None) -> str:
    """The short machine description experiments print beside their figures: ``"<CPU model>, <cores> cores"``.

    Parameters
    ----------
    info : dict, optional
        A :func:`machine_info` result; read afresh when omitted.
    """
    info = machine_info() if info is None else info
    return f"{info.get('cpu_model', '?')}, {info.get('cores')} cores"


class CpuShare:
    """CPU time used by other processes since construction, in cores (Linux /proc/stat).

    ``other_cores()`` is (busy CPU time of the whole machine - this process's
    CPU time) / wall time: 0 on an idle machine, up to the number of cores.
    It is None where /proc/stat cannot be read.
    """

    def __init__(self) -> None:
        self._start = self._snapshot()

    @staticmethod
    def _snapshot() -> tuple[float, float, float] | None:
        try:
            with open("/proc/stat") as f:
                fields = f.readline().split()
        except OSError:
            return None
        # cpu user nice system idle iowait irq softirq steal ...
        ticks = [int(v) for v in fields[1:9]]
        busy = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6] + ticks[7]
        hz = os.sysconf("SC_CLK_TCK")
        t = os.times()
        return time.perf_counter(), busy / hz, t.user + t.system

    def other_cores(self) -> float | None:
        end = self._snapshot()
        if self._start is None or end is None:
            return None
        wall = end[0] - self._start[0]
        if wall <= 0:
            return None
        other = (end[1] - self._start[1]) - (end[2] - self._start[2])
        return max(0.0, other / wall)


def new_figure(rows: int = 1, cols: int = 1, size: tuple[float, float] = (9.0, 4.5)) -> tuple[Figure, Any]:
    """A figure that renders without a display (Agg), and its axes (one, or an array as ``Figure.subplots``).

    Returns
    -------
    (Figure, axes)
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=size)
    return fig, fig.subplots(rows, cols, squeeze=True)


def markdown_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Mapping[str, str],
    formats: Mapping[str, Callable[[Any], str]] | None = None,
) -> str:
    """A Markdown table.

    Parameters
    ----------
    rows : sequence of mappings
        One mapping per table row.
    columns : mapping
        Row key -> column heading, in column order.
    formats : mapping, optional
        Row key -> function turning the value into the cell text; the default
        is ``str``, with None (or NaN) shown as ``-``.
    """
    formats = formats or {}

    def cell(key: str, value: Any) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        return formats.get(key, str)(value)

    lines = ["| " + " | ".join(columns.values()) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        lines.append("| " + " | ".join(cell(k, r.get(k)) for k in columns) + " |")
    return "\n".join(lines) + "\n"


class RunDirectory:
    """One run's output directory.

    Parameters
    ----------
    path : path-like
        The directory (made if missing).
    """

    REPORT = "report.md"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    @classmethod
    def create(cls, root: str | os.PathLike[str], name: str) -> RunDirectory:
        """A new directory ``root/<YYYYmmdd-HHMMSS>-<name>`` (``-1``, ``-2``... appended if it exists).

        Raises
        ------
        ValueError
            If ``root`` exists and is not a directory.
        """
        base = Path(root)
        if base.exists() and not base.is_dir():
            raise ValueError(f"--out {base} is not a directory")
        base.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for i in range(1000):
            d = base / (f"{stamp}-{name}" + (f"-{i}" if i else ""))
            try:
                d.mkdir()
            except FileExistsError:
                continue
            return cls(d)
        raise RuntimeError(f"cannot create a run directory under {base}")

    def write_csv(self, name: str, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> Path:
        """Writes ``rows`` to ``name`` with exactly ``columns`` as the header (missing values left empty)."""
        path = self.path / name
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
            w.writeheader()
            for r in rows:
                w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in columns})
        return path

    def write_figure(self, name: str, fig: Figure, dpi: int = 110) -> Path:
        """Saves ``fig`` as a PNG under ``name``."""
        path = self.path / name
        fig.savefig(path, dpi=dpi, format="png")
        return path

    def write_record(self, name: str, config: Mapping[str, Any], **extra: Any) -> Path:
        """Writes ``{"config": config, "machine": machine_info(), **extra}`` as JSON under ``name``."""
        path = self.path / name
        record = {"config": dict(config), "machine": machine_info(), **extra}
        path.write_text(json.dumps(record, indent=2, default=str) + "\n")
        return path

    def append_markdown(self, title: str, body: str) -> Path:
        """Appends a ``## title`` section to ``report.md`` (created with a heading if new)."""
        path = self.path / self.REPORT
        new = not path.exists()
        with open(path, "a") as f:
            if new:
                f.write(f"# xcloud experiments: {self.path.name}\n")
            f.write(f"\n## {title}\n\n{body.rstrip()}\n")
        return path
