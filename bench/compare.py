#!/usr/bin/env python3
"""xcloud against AES-256-GCM, xcloud scalar, TenSEAL and OpenFHE: one table, one JSON, one chart.

Usage::

    python bench/compare.py [--sizes 1000000 10000000] [--out DIR] [--repeat 5] [--passes 3]

Times every registered implementation (bench/benchlib.py) on the same float32
payload in one process with ``time.perf_counter``: one warm-up call, then the
best of at least ``--repeat`` calls (more for fast calls, until ``--min-time``
seconds are spent); the fast cases are timed again in ``--passes`` passes
over the whole list, interleaved, and keep their best pass (see run_all).
Also measures the machine's memory copy bandwidth, so
aggregation throughput (GB/s of ciphertext consumed) can be read against it.

Prints a Markdown table and writes into ``--out`` (default bench/results/):
``compare-<UTC timestamp>.json`` (results + machine info), ``.md`` (the table)
and ``.png`` (bar chart of values/s).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from xcloud.experiments.report import cpu_info

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl  # noqa: E402

HERE = Path(__file__).resolve().parent


# -- machine -------------------------------------------------------------------


def _meminfo_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / (1 << 20)
    except OSError:
        pass
    return None


def _git_head() -> str | None:
    try:  # read-only
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=HERE, capture_output=True, text=True, timeout=10, check=True
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _xcloud_build() -> dict[str, Any]:
    """Which native module was timed: the installed build can differ from the tree's HEAD."""
    try:
        import hashlib

        import xcloud._native as native
    except ImportError:
        return {}
    path = Path(native.__file__)
    st = path.stat()
    return {
        "xcloud_native": str(path),
        "xcloud_native_sha256": hashlib.sha256(path.read_bytes()).hexdigest()[:16],
        "xcloud_native_mtime_utc": _dt.datetime.fromtimestamp(st.st_mtime, _dt.timezone.utc).isoformat(
            timespec="seconds"
        ),
    }


ENV_RECORDED = ("OPENSSL_ia32cap", "XCLOUD_FORCE_SCALAR", "XCLOUD_BUFFER_POOL", "OMP_NUM_THREADS")


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = cpu_info()
    info.update(
        {
            "cores": os.cpu_count(),
            "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "memory_GiB": _meminfo_gib(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "git_head": _git_head(),
            # Settings that change what a row measures (OpenSSL's CPU paths, xcloud's dispatch and buffer cache).
            "environment": {k: os.environ[k] for k in ENV_RECORDED if k in os.environ},
        }
    )
    try:
        import matplotlib

        info["matplotlib"] = matplotlib.__version__
    except ImportError:
        pass
    for cls in bl.REGISTRY:
        info.update(cls.versions())
    info.update(_xcloud_build())
    return info


# -- timing --------------------------------------------------------------------


def time_call(
    prep: bl.Prepared, repeat: int, min_time: float, max_repeat: int = 1000
) -> tuple[float, list[float], Any]:
    """One warm-up call, then at least ``repeat`` timed calls (until ``min_time`` s). Returns best, all, last result."""
    result = prep.run()
    times: list[float] = []
    while len(times) < repeat or (sum(times) < min_time and len(times) < max_repeat):
        t0 = time.perf_counter()
        result = prep.run()
        times.append(time.perf_counter() - t0)
    return min(times), times, result


# Cases whose best call took longer than this are timed in the first pass only.
PASS_LIMIT_S = 1.0


def run_all(
    sizes: list[int], repeat: int, min_time: float, only: list[str] | None, passes: int = 1
) -> tuple[list[dict], list[dict]]:
    """Times every case; with ``passes`` > 1 the whole list again, per size.

    The rows of this VM's clock move by up to 30% within a minute (frequency
    and neighbours), which a block of calls per row cannot average out: a
    baseline timed in a slow minute and a kernel in a fast one give a ratio
    neither would give side by side. Later passes time each case again (those
    whose best call took under ``PASS_LIMIT_S``: AES-GCM and xcloud, not the
    slow peers), interleaved with all the others, and a row keeps its best
    pass (its ``times_s`` holds every pass's calls, ``best_pass`` which won).
    """
    rows: list[dict[str, Any]] = []
    unavailable: list[dict[str, Any]] = []
    for n in sizes:
        by_case: dict[str, dict[str, Any]] = {}
        for p in range(passes):
            for case in bl.all_cases():
                if only and case.impl.name not in only:
                    continue
                key = case.ident(n)
                seen = by_case.get(key)
                if p > 0 and (seen is None or seen["self_timed"] or seen["seconds"] > PASS_LIMIT_S):
                    continue
                try:
                    prep = case.prepare(n)
                except bl.Unavailable as e:
                    if not any(u["implementation"] == case.impl.name for u in unavailable):
                        unavailable.append({"implementation": case.impl.name, "reason": str(e)})
                    continue
                share = bl.CpuShare()
                if prep.seconds is not None:  # the peer timed itself (out of process)
                    result = prep.run()
                    best, times = prep.seconds, list(prep.times_s or [prep.seconds])
                else:
                    best, times, result = time_call(prep, repeat, min_time)
                other = share.other_cores()
                if seen is not None and best >= seen["seconds"]:
                    seen["times_s"] += times
                    del result, prep
                    continue
                m = bl.metrics(case, prep, n, best, result)
                del result
                row = {
                    "operation": case.op,
                    "group": case.group(n),
                    "size": n,
                    "inputs": case.inputs,
                    "implementation": case.label,
                    "impl": case.impl.name,
                    "baseline": case.is_baseline,
                    "threads": case.threads_used,
                    "times_s": (seen["times_s"] if seen else []) + times,
                    "best_pass": p + 1,
                    "other_cpu_cores": other,
                    **m,
                }
                by_case[key] = row  # a replaced row keeps its place (the first pass's order)
                del prep  # before the next case prepares its inputs (10 x 10 M ciphertexts for aggregation)
                print(
                    f"  pass {p + 1}/{passes} {row['group']:<18} {row['implementation']:<30} t={row['threads']:<2} "
                    f"{row['values_per_s'] / 1e6:10.2f} M values/s  ({len(times)} runs, other load "
                    f"{(other if other is not None else float('nan')):.2f} cores)",
                    file=sys.stderr,
                    flush=True,
                )
        rows += by_case.values()
        bl.release_all()
    # Side by side: per size, encrypt / decrypt / aggregate, baseline first, then run order.
    order = {op: i for i, op in enumerate(("encrypt", "decrypt", "aggregate"))}
    rows = [
        r
        for _, r in sorted(
            enumerate(rows),
            key=lambda ir: (ir[1]["size"], order.get(ir[1]["operation"], 9), not ir[1]["baseline"], ir[0]),
        )
    ]
    # Ratios against the baseline, same operation and size.
    base = {(r["operation"], r["size"]): r["values_per_s"] for r in rows if r["baseline"]}
    for r in rows:
        b = base.get((r["operation"], r["size"]))
        r["ratio_to_aes"] = r["values_per_s"] / b if b else None
    return rows, unavailable


# -- output --------------------------------------------------------------------


def _fmt_rate(v: float) -> str:
    return f"{v / 1e6:,.1f} M"


BUSY_CORES = 0.25
"""Rows timed while other processes used more than this many cores are flagged."""


def parameter_sets(rows: list[dict]) -> str:
    """One line per implementation in ``rows``: its parameter set (all 128-bit secure HE sets)."""
    seen: list[str] = []
    for r in rows:
        if r["impl"] not in seen:
            seen.append(r["impl"])
    by_name = {cls.name: cls for cls in bl.REGISTRY}
    lines = [f"- {name}: {by_name[name].param_set()}" for name in seen if name in by_name]
    return "Parameter sets:\n" + "\n".join(lines) + "\n" if lines else ""


def markdown_table(rows: list[dict], bandwidth: dict[str, float]) -> str:
    head = (
        "| operation | implementation | threads | values/s | × AES-256-GCM | bytes/value | precision bits "
        "| ct GB/s wire / in memory (× copy bw) |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|\n"
    )
    lines = []
    for r in rows:
        ratio = "1 (baseline)" if r["baseline"] else (f"{r['ratio_to_aes']:.4f}" if r["ratio_to_aes"] else "—")
        prec = "exact" if r["exact"] else f"{r['precision_bits']:.1f}"
        gbps = "—"
        if r["operation"] == "aggregate" and "consumed_GBps" in r:
            gbps = f"{r['consumed_GBps']:.2f} ({r['consumed_GBps'] / bandwidth['copy_GBps']:.2f}×)"
            if "consumed_memory_GBps" in r:
                mem = r["consumed_memory_GBps"]
                gbps += f" / {mem:.2f} ({mem / bandwidth['copy_GBps']:.2f}×)"
        busy = r.get("other_cpu_cores")
        flag = f" ⚠{busy:.1f}" if busy is not None and busy > BUSY_CORES else ""
        mark = " †" if r.get("self_timed") else ""
        lines.append(
            f"| {r['group']} | {r['implementation']}{mark} | {r['threads']} "
            f"| {_fmt_rate(r['values_per_s'])}{flag} | {ratio} "
            f"| {r['bytes_per_value']:.2f} | {prec} | {gbps} |"
        )
    foot = (
        f"\nMemory copy bandwidth (np.copyto, {bandwidth['bytes'] / (1 << 20):.0f} MiB float64, best of runs): "
        f"{bandwidth['copy_GBps']:.2f} GB/s copied ({bandwidth['read_write_GBps']:.2f} GB/s read+write).\n"
        "values/s: payload values per second (aggregation: values of all inputs). bytes/value: ciphertext bytes "
        "per payload value (decryption: of the ciphertext read; aggregation: of the output). precision bits: "
        "-log2(max abs error) of a float64 decryption. ct GB/s: bytes of the input ciphertexts read per second, "
        "counted at their wire size and at "
        "their in-memory size (u64 residues; seeds for secret-key c1), against the copy bandwidth.\n"
        "†: timed by the peer itself, in its own process (OpenFHE under CPython 3.10), best of its runs.\n"
        f"⚠x: while this row was timed, other processes used x cores on average (flagged above {BUSY_CORES}).\n"
    )
    return head + "\n".join(lines) + "\n" + foot


def bar_chart(rows: list[dict], machine: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['group']}  {r['implementation']} ×{r['threads']}" for r in rows]
    values = [r["values_per_s"] for r in rows]
    impls = sorted({r["implementation"] for r in rows}, key=lambda s: (s != bl.BASELINE, s))
    cmap = plt.get_cmap("tab10")
    colour = {name: cmap(i % 10) for i, name in enumerate(impls)}
    fig, ax = plt.subplots(figsize=(10, 0.32 * len(rows) + 1.8))
    y = np.arange(len(rows))[::-1]
    ax.barh(
        y,
        values,
        color=[colour[r["implementation"]] for r in rows],
        edgecolor=["black" if r["threads"] > 1 else "none" for r in rows],
    )
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("values per second (log scale; outlined bars: all threads)")
    for yi, r in zip(y, rows, strict=True):
        txt = f"{r['values_per_s'] / 1e6:.3g} M/s"
        if r.get("ratio_to_aes") and not r["baseline"]:
            txt += f"  ({r['ratio_to_aes']:.3g}× AES)"
        ax.text(r["values_per_s"] * 1.05, yi, txt, va="center", fontsize=6)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colour[name]) for name in impls]
    ax.legend(handles, impls, fontsize=7, loc="lower right")
    ax.set_title(
        f"xcloud vs AES-256-GCM and peers, float32 payload — {machine.get('cpu_model', '?')}, "
        f"{machine.get('cores')} cores",
        fontsize=9,
    )
    ax.set_xlim(min(values) / 2, max(values) * 20)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def wait_idle(limit_s: float, quiet_s: float = 10.0, window_s: float = 2.0) -> float:
    """Waits until other processes used under BUSY_CORES for ``quiet_s`` in a row, or ``limit_s`` passes."""
    t0 = time.perf_counter()
    quiet = 0.0
    while time.perf_counter() - t0 < limit_s and quiet < quiet_s:
        share = bl.CpuShare()
        time.sleep(window_s)
        other = share.other_cores()
        if other is None:
            break
        quiet = quiet + window_s if other < BUSY_CORES else 0.0
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=list(bl.SIZES), help="payload sizes (values)")
    ap.add_argument("--out", type=Path, default=HERE / "results", help="output folder (default bench/results/)")
    ap.add_argument("--repeat", type=int, default=5, help="timed calls per case, at least (best is reported)")
    ap.add_argument("--min-time", type=float, default=0.5, help="keep timing fast cases until this many seconds")
    ap.add_argument("--only", nargs="+", help="implementation names to run (default all registered)")
    ap.add_argument(
        "--passes",
        type=int,
        default=3,
        help=f"time the cases this many times, interleaved, keeping each row's best pass (cases slower than "
        f"{PASS_LIMIT_S:g} s per call: the first pass only)",
    )
    ap.add_argument("--no-plot", action="store_true", help="skip the PNG chart")
    ap.add_argument(
        "--wait-idle",
        type=float,
        default=0.0,
        metavar="S",
        help=f"first wait up to S seconds for 10 s in which other processes use under {BUSY_CORES} cores",
    )
    args = ap.parse_args(argv)
    if any(n < 1 for n in args.sizes) or args.repeat < 1 or args.passes < 1:
        ap.error("sizes, --repeat and --passes must be positive")

    if args.wait_idle > 0:
        waited = wait_idle(args.wait_idle)
        print(f"waited {waited:.0f} s for an idle machine", file=sys.stderr)
    machine = machine_info()
    load_before = os.getloadavg()
    print(
        f"machine: {machine.get('cpu_model')}, {machine.get('cores')} cores, load {load_before[0]:.2f}", file=sys.stderr
    )
    bw_before = bl.memcopy_bandwidth()
    t_start = time.perf_counter()
    run_share = bl.CpuShare()
    rows, unavailable = run_all(args.sizes, args.repeat, args.min_time, args.only, args.passes)
    bw_after = bl.memcopy_bandwidth()
    bandwidth = max(bw_before, bw_after, key=lambda b: b["copy_GBps"])
    load_after = os.getloadavg()
    machine["other_cpu_cores_during_run"] = run_share.other_cores()
    machine["loadavg_before"] = list(load_before)
    machine["loadavg_after"] = list(load_after)

    table = markdown_table(rows, bandwidth)
    header = (
        f"Machine: {machine.get('cpu_model')} ({machine.get('cores')} cores, "
        f"{machine.get('memory_GiB') or 0:.0f} GiB, flags {' '.join(machine.get('cpu_flags', []))}); "
        f"Python {machine['python']}, numpy {machine['numpy']}, cryptography {machine.get('cryptography', '?')} "
        f"({machine.get('openssl', '?')}), xcloud {machine.get('xcloud', '?')} (native module sha256 "
        f"{machine.get('xcloud_native_sha256', '?')}, built {machine.get('xcloud_native_mtime_utc', '?')}; "
        f"tree HEAD {str(machine.get('git_head'))[:12]}); "
        + "".join(f"{k}={v}; " for k, v in machine.get("environment", {}).items())
        + f"{machine['date_utc']}; load average {load_before[0]:.2f} before, {load_after[0]:.2f} after; "
        f"other processes used {machine['other_cpu_cores_during_run'] or 0:.2f} cores on average during the run.\n"
        f"Payload: float32 uniform in [-1, 1], "
        f"numpy seed {bl.PAYLOAD_SEED}; aggregation sums {bl.AGG_INPUTS} ciphertexts of the size shown.\n"
        + parameter_sets(rows)
        + "\n"
    )
    for u in unavailable:
        header += f"Not run: {u['implementation']}: {u['reason']}\n"
    print()
    print(header + table)

    args.out.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    base = args.out / f"compare-{stamp}"
    result = {
        "machine": machine,
        "settings": {
            "sizes": args.sizes,
            "repeat": args.repeat,
            "passes": args.passes,
            "min_time_s": args.min_time,
            "payload_seed": bl.PAYLOAD_SEED,
            "aggregate_inputs": bl.AGG_INPUTS,
            "wall_s": time.perf_counter() - t_start,
        },
        "memory_bandwidth": {"before": bw_before, "after": bw_after, "reported": bandwidth},
        "unavailable": unavailable,
        "results": rows,
    }
    base.with_suffix(".json").write_text(json.dumps(result, indent=2, default=_json_default) + "\n")
    base.with_suffix(".md").write_text(header + table)
    written = [base.with_suffix(".json"), base.with_suffix(".md")]
    if not args.no_plot and rows:
        bar_chart(rows, machine, base.with_suffix(".png"))
        written.append(base.with_suffix(".png"))
    print("wrote " + ", ".join(str(p) for p in written), file=sys.stderr)
    return 0


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, float) and not math.isfinite(o):
        return None
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


if __name__ == "__main__":
    sys.exit(main())
