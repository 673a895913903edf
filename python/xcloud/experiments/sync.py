"""Synchronous against asynchronous aggregation with one slow cloud: time to a target validation loss.

Four clouds train the default model, one of them computing five times slower
than the others (``--slowdown``), on emulated cross-cloud links. Four
synchronisation policies run on the same data, model and links:

- ``sync``: every round waits for every cloud (FedAvg as usually deployed);
- ``sync+deadline drop``: rounds close at 2x the median cloud's predicted
  round time (from the probed links, equation 7), late updates are dropped;
- ``sync+deadline carry``: the same deadline, late updates join the next
  round with staleness 1;
- ``async``: buffered asynchronous aggregation (FedBuff) with half the clouds
  per aggregation and staleness-discounted weights (equation 8).

Each policy's validation loss is recorded against simulated time: one local
round costs what a calibration run measured on this machine (times the
cloud's slowdown), plus the emulated transfers. The target loss is
the one plain ``sync`` reaches after ``--rounds`` rounds, unless ``--target``
is given; the report states the simulated time each policy needs to reach it.
All of this runs under encryption (``--method he`` by default): every
aggregation is a weighted sum of ciphertexts.

Outputs: sync.csv (one row per policy and aggregation), sync.png, sync.json
and a report.md section.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from xcloud.experiments.report import CpuShare, RunDirectory, machine_info, machine_label, markdown_table, new_figure
from xcloud.fl.config import PLAIN_FEDAVG, RunConfig
from xcloud.fl.simulation import FederatedRun

__all__ = ["COLUMNS", "HELP", "NAME", "POLICIES", "add_arguments", "measure", "run", "time_to_target"]

NAME = "sync"
HELP = "synchronous vs asynchronous (FedBuff) aggregation with one 5x slower cloud: time to a target loss"

POLICIES: dict[str, dict[str, Any]] = {
    "sync": {"sync": "sync"},
    "sync+deadline drop": {"sync": "sync", "deadline_factor": 2.0, "stragglers": "drop"},
    "sync+deadline carry": {"sync": "sync", "deadline_factor": 2.0, "stragglers": "carry"},
    "async": {"sync": "async", "buffer_size": 0},
}
LINKS = ["cross-cloud"]
COLUMNS = ("policy", "aggregation", "sim_time_s", "val_loss", "val_ppl", "accepted", "staleness", "stragglers")

SHORT_OVERRIDES: dict[str, Any] = {
    "clouds": 4,
    "local_steps": 2,
    "batch_size": 8,
    "notes_per_hospital": 30,
    "vocab_size": 400,
    "block_size": 32,
    "n_layer": 1,
    "n_head": 2,
    "n_embd": 16,
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The experiment's options (``--out``, ``--short`` and ``--quiet`` come from the command)."""
    p.add_argument("--method", choices=("fedavg", "he", "xcloud"), default="he", help="method (default: he)")
    p.add_argument("--rounds", type=int, default=None, help="synchronous rounds (default: 10; with --short: 3)")
    p.add_argument("--slowdown", type=float, default=5.0, help="how many times slower the last cloud is (default: 5)")
    p.add_argument("--target", type=float, default=None, help="target validation loss (default: sync's final loss)")
    p.add_argument(
        "--partition",
        default="iid",
        choices=("iid", "natural", "dirichlet", "quantity"),
        help="data split (default: iid, so the comparison isolates synchronisation from data skew)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed (default: 0)")


def _config(args: argparse.Namespace) -> RunConfig:
    short = bool(getattr(args, "short", False))
    rounds = args.rounds if args.rounds is not None else (3 if short else 10)
    if rounds < 1:
        raise ValueError(f"--rounds must be at least 1, got {rounds}")
    if not (math.isfinite(args.slowdown) and args.slowdown >= 1.0):
        raise ValueError(f"--slowdown must be >= 1, got {args.slowdown}")
    if args.target is not None and not (math.isfinite(args.target) and args.target > 0):
        raise ValueError(f"--target must be a positive loss, got {args.target}")
    base = RunConfig(
        method=args.method,
        rounds=rounds,
        # Steps, batch and data as the experiment was first measured (the main job's default
        # is now five steps of 64 over 30,000 notes per hospital).
        local_steps=10,
        batch_size=16,
        notes_per_hospital=300,
        weight_alpha=0.5,  # --method xcloud's dynamic weights as first measured (the default is 0.1 since 2026-12-03)
        seed=int(args.seed),
        partition=args.partition,
        links=LINKS,
        min_clients=2,
        **PLAIN_FEDAVG,
    )
    if short:
        base = replace(base, **SHORT_OVERRIDES)
    base = replace(base, slowdowns=[1.0] * (base.clouds - 1) + [float(args.slowdown)])
    base.validate()
    return base


def calibrate(base: RunConfig, work: Path) -> float:
    """Measured seconds of one local round (training + encryption) of a warm cloud on this machine.

    Two synchronous rounds of ``base``; the mean per cloud of the second (the
    first pays one-time start-up costs). Every policy then runs on a clock
    that charges this much per local round (times the cloud's slowdown), so
    the policies are compared on the same compute, not on timing noise.
    """
    cfg = replace(base, rounds=2, slowdowns=[1.0])
    run = FederatedRun(cfg, work)
    run.run_round(0)
    m = run.run_round(1)
    shutil.rmtree(work, ignore_errors=True)
    return (m.train_s + m.encrypt_s) / max(m.accepted, 1)


def time_to_target(rows: Sequence[dict[str, Any]], target: float) -> float | None:
    """Simulated time of the first aggregation whose validation loss is at most ``target`` (None if never)."""
    hits = [r["sim_time_s"] for r in rows if r["val_loss"] <= target]
    return min(hits) if hits else None


def measure(
    base: RunConfig, work: Path, target: float | None, progress: bool = True
) -> tuple[list[dict[str, Any]], float]:
    """Runs every policy; returns its rows and the target loss used.

    ``sync`` runs ``base.rounds`` rounds and fixes the target (unless given);
    the other policies run until they reach it or until their simulated time
    is three times sync's (async: at most ``4 * rounds`` aggregations).
    """
    rows: list[dict[str, Any]] = []
    horizon = math.inf
    compute_s = calibrate(base, work / "calibration")
    for policy, options in tqdm(POLICIES.items(), desc="policies", disable=not progress):
        limit = base.rounds if policy == "sync" else 4 * base.rounds
        cfg = replace(base, rounds=limit, sim_compute_s=compute_s, **options)
        run_dir = work / policy.replace(" ", "-").replace("+", "-")
        run = FederatedRun(cfg, run_dir)
        for r in range(limit):
            m = run.run_round(r)
            rows.append(
                {
                    "policy": policy,
                    "aggregation": r,
                    "sim_time_s": m.sim_time_s,
                    "val_loss": m.val_loss,
                    "val_ppl": m.val_ppl,
                    "accepted": m.accepted,
                    "staleness": " ".join(str(s) for s in m.staleness),
                    "stragglers": " ".join(m.stragglers),
                }
            )
            if policy != "sync" and (m.val_loss <= target or m.sim_time_s > horizon):  # type: ignore[operator]
                break
        if policy == "sync":
            target = target if target is not None else rows[-1]["val_loss"]
            horizon = 3.0 * rows[-1]["sim_time_s"]
        shutil.rmtree(run_dir, ignore_errors=True)
    assert target is not None
    return rows, float(target), compute_s


def _figure(rows: Sequence[dict[str, Any]], target: float, out: RunDirectory, where: str, slowdown: float) -> None:
    fig, ax = new_figure(size=(8.0, 4.5))
    styles = ["o-", "s--", "^:", "D-."]  # distinct, so policies that coincide stay visible
    for style, policy in zip(styles, POLICIES, strict=True):
        rs = [r for r in rows if r["policy"] == policy]
        ax.plot([r["sim_time_s"] for r in rs], [r["val_loss"] for r in rs], style, ms=4, mfc="none", label=policy)
    ax.axhline(target, color="grey", ls="--", lw=1, label=f"target {target:.3f}")
    ax.set_xlabel("simulated seconds")
    ax.set_ylabel("validation loss (nats)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"One cloud {slowdown:g}x slower: loss against time - {where}", fontsize=9)
    fig.tight_layout()
    out.write_figure(f"{NAME}.png", fig)


def run(args: argparse.Namespace) -> Path:
    """Runs the experiment and writes its outputs; returns the run directory.

    Raises
    ------
    ValueError
        For bad options.
    """
    base = _config(args)
    out = RunDirectory.create(args.out, NAME)
    progress = not getattr(args, "quiet", False)
    started = time.perf_counter()
    share = CpuShare()
    rows, target, compute_s = measure(base, out.path / "work", args.target, progress=progress)
    shutil.rmtree(out.path / "work", ignore_errors=True)
    wall = time.perf_counter() - started
    other = share.other_cores()
    summary = []
    for policy in POLICIES:
        rs = [r for r in rows if r["policy"] == policy]
        t = time_to_target(rs, target)
        summary.append(
            {
                "policy": policy,
                "aggregations": len(rs),
                "time_to_target_s": t,
                "final_loss": rs[-1]["val_loss"],
                "final_time_s": rs[-1]["sim_time_s"],
            }
        )
    out.write_csv(f"{NAME}.csv", rows, COLUMNS)
    out.write_record(
        f"{NAME}.json",
        base.to_dict(),
        policies=POLICIES,
        target=target,
        summary=summary,
        wall_s=wall,
        local_round_s=compute_s,
        other_cpu_cores=other,
    )
    machine = machine_info()
    where = machine_label(machine)
    slowdown = base.slowdowns[-1]
    _figure(rows, target, out, where, slowdown)
    table = markdown_table(
        summary,
        {
            "policy": "policy",
            "aggregations": "aggregations",
            "time_to_target_s": "simulated s to target",
            "final_loss": "last val loss",
            "final_time_s": "last simulated s",
        },
        {
            "time_to_target_s": lambda v: f"{v:.1f}",
            "final_loss": lambda v: f"{v:.4f}",
            "final_time_s": lambda v: f"{v:.1f}",
        },
    )
    sync_t = summary[0]["time_to_target_s"]
    async_t = summary[-1]["time_to_target_s"]
    verdict = (
        f"Async reaches the target in {async_t:.1f} s against sync's {sync_t:.1f} s ({sync_t / async_t:.2f}x faster)."
        if async_t and sync_t
        else "Async did not reach the target within its budget."
    )
    origin = "given" if args.target is not None else "reached by sync after its last round"
    body = (
        f"Method `{base.method}`, {base.clouds} clouds on `{LINKS[0]}` links, the last {slowdown:g}x slower; "
        f"partition `{base.partition}`, {base.local_steps} local steps per round, seed {base.seed}. Target "
        f"validation loss {target:.4f} ({origin}). {verdict} Simulated time: {compute_s:.3f} s per local round as "
        f"measured on {where} by a calibration run (the slow cloud's times {slowdown:g}) plus emulated transfers; "
        f"wall time of the experiment {wall:.0f} s, during which other processes used {other or 0.0:.2f} cores "
        "(the calibration, and so every policy's clock, is only as quiet as the machine was).\n\n"
        f"{table}\n![loss against time]({NAME}.png)\n\nRaw rows: `{NAME}.csv`.\n"
    )
    report = out.append_markdown("Synchronous vs asynchronous: `xcloud experiment sync`", body)
    if progress:
        print(table, end="")
        print(f"run directory: {out.path} (report: {report})", file=sys.stderr)
    return out.path
