"""Communication and computation cost against link bandwidth (the paper's Figures 2 and 3).

For each method (fedavg, he, dp, xcloud) and each bandwidth (default 10, 50,
100, 500 and 1000 Mbit/s, the same for every cloud, both directions, 20 ms
one-way latency, no jitter or loss), runs a short federated training on the
emulated links and records, per round: the bytes each cloud sends and
receives, the time those transfers take on the simulated clock, and the
round's simulated time split along its critical path into local training,
encryption, aggregation, decryption and waiting (network transfer and idle
time). Compute is measured on this machine; only the network is emulated.

The xcloud method runs with its communication savings: 8-bit quantization of
the plain part with error feedback in both directions and the compact CKKS
preset (one 47-bit prime, 5.9 bytes per encrypted value); the others send
float32 plain parts and use the default CKKS parameters. Where TenSEAL is
installed, a "conventional HE" row encrypts the
same update with NVIDIA FLARE's published TenSEAL parameters (N=8192, moduli
[60, 40, 40], scale 2^40) and charges its measured encryption, aggregation and
decryption times and its ciphertext bytes on the same links.

Outputs: bandwidth.csv (one row per method, bandwidth and round),
bandwidth-communication.png (Figure 2), bandwidth-computation.png
(Figure 3), bandwidth.json and a report.md section.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from xcloud.experiments.report import CpuShare, RunDirectory, machine_info, machine_label, markdown_table, new_figure
from xcloud.fl.config import PLAIN_FEDAVG, RunConfig
from xcloud.fl.simulation import FederatedRun

__all__ = ["BANDWIDTHS", "COLUMNS", "HELP", "METHODS", "NAME", "add_arguments", "measure", "run"]

NAME = "bandwidth"
HELP = "Figures 2 and 3: bytes, transfer time and round time split by stage, against bandwidth (10-1000 Mbit/s)"

BANDWIDTHS = (10.0, 50.0, 100.0, 500.0, 1000.0)
METHODS = ("fedavg", "he", "dp", "xcloud")
LATENCY_MS = 20.0
CONVENTIONAL = "conventional HE (TenSEAL, NVFlare set)"

# Per-method settings of the experiment beyond `--method`: xcloud with its savings.
METHOD_OPTIONS: dict[str, dict[str, Any]] = {
    "xcloud": {"compression": "q8", "downlink_compression": "q8", "ckks": "compact"}
}

# A smaller model and fewer notes for --short (CI): every code path, seconds not minutes.
SHORT_OVERRIDES: dict[str, Any] = {
    "clouds": 3,
    "local_steps": 2,
    "batch_size": 8,
    "notes_per_hospital": 30,
    "vocab_size": 400,
    "block_size": 32,
    "n_layer": 1,
    "n_head": 2,
    "n_embd": 16,
    "dp_epsilon": 50.0,
}

COLUMNS = (
    "method",
    "bandwidth_mbps",
    "round",
    "bytes_up_per_cloud",
    "bytes_down_per_cloud",
    "bytes_per_cloud",
    "transfer_s",
    "round_s",
    "train_s",
    "encrypt_s",
    "aggregate_s",
    "decrypt_s",
    "wait_s",
    "val_ppl",
)
STAGES = (
    ("train_s", "local training"),
    ("encrypt_s", "encryption"),
    ("aggregate_s", "aggregation"),
    ("decrypt_s", "decryption"),
    ("wait_s", "waiting (network + idle)"),
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The experiment's options (``--out``, ``--short`` and ``--quiet`` come from the command)."""
    p.add_argument(
        "--bandwidths",
        type=float,
        nargs="+",
        metavar="MBPS",
        default=None,
        help="link bandwidths in Mbit/s (default: 10 50 100 500 1000; with --short: 10 1000)",
    )
    p.add_argument("--methods", nargs="+", choices=METHODS, default=None, help="methods to run (default: all four)")
    p.add_argument("--rounds", type=int, default=None, help="rounds per run (default: 2; with --short: 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of data, model and links (default: 0)")


def _config(args: argparse.Namespace) -> tuple[RunConfig, list[float], list[str]]:
    short = bool(getattr(args, "short", False))
    bandwidths = list(args.bandwidths) if args.bandwidths else ([10.0, 1000.0] if short else list(BANDWIDTHS))
    methods = list(args.methods) if args.methods else list(METHODS)
    rounds = args.rounds if args.rounds is not None else (1 if short else 2)
    if rounds < 1:
        raise ValueError(f"--rounds must be at least 1, got {rounds}")
    if any(not (np.isfinite(b) and b > 0) for b in bandwidths):
        raise ValueError(f"--bandwidths must be positive numbers, got {bandwidths}")
    # Ten local steps per round, as the figures were first measured with (the main job's default is five).
    base = RunConfig(
        rounds=rounds,
        local_steps=10,
        batch_size=16,  # batch and data as first measured (the main job's default changed on 2026-12-02)
        notes_per_hospital=300,
        seed=int(args.seed),
        probe_links=False,
        min_clients=2,
        **PLAIN_FEDAVG,
    )
    if short:
        base = replace(base, **SHORT_OVERRIDES)
    base.validate()
    return base, bandwidths, methods


def _rows_of(run: FederatedRun, method: str, bw: float) -> list[dict[str, Any]]:
    k = len(run.clients)
    rows = []
    for m in run.metrics:
        up, down = m.bytes_up / max(m.accepted, 1), m.bytes_down / k
        rows.append(
            {
                "method": method,
                "bandwidth_mbps": bw,
                "round": m.round,
                "bytes_up_per_cloud": int(up),
                "bytes_down_per_cloud": int(down),
                "bytes_per_cloud": int(up + down),
                "transfer_s": m.sim_upload_s + m.sim_download_s,
                "round_s": m.sim_round_s,
                "train_s": m.sim_train_s,
                "encrypt_s": m.sim_encrypt_s,
                "aggregate_s": m.sim_aggregate_s,
                "decrypt_s": m.sim_decrypt_s,
                "wait_s": m.sim_wait_s + m.sim_upload_s + m.sim_download_s,
                "val_ppl": m.val_ppl,
            }
        )
    return rows


def _conventional_rows(
    he_rows: Sequence[dict[str, Any]], n_values: int, clouds: int, bandwidths: Sequence[float]
) -> list[dict[str, Any]]:
    """The same rounds as the he method, with TenSEAL (NVFlare's parameters) as the encryption; [] without it."""
    try:
        import tenseal as ts  # type: ignore[import-not-found]
    except ImportError:
        return []
    ctx = ts.context(ts.SCHEME_TYPE.CKKS, poly_modulus_degree=8192, coeff_mod_bit_sizes=[60, 40, 40])
    ctx.global_scale = 2**40
    x = np.random.default_rng(0).uniform(-0.01, 0.01, n_values)
    t0 = time.perf_counter()
    ct = ts.ckks_vector(ctx, x.tolist()) if n_values <= 4096 else None
    if ct is None:  # one ckks_vector per 4096 slots, as NVFlare's model encryption does per tensor chunk
        chunks = [ts.ckks_vector(ctx, x[i : i + 4096].tolist()) for i in range(0, n_values, 4096)]
    else:
        chunks = [ct]
    enc_s = time.perf_counter() - t0
    blob = sum(len(c.serialize()) for c in chunks)
    t0 = time.perf_counter()
    total = [c * (1.0 / clouds) for c in chunks]
    for _ in range(clouds - 1):
        total = [a + c * (1.0 / clouds) for a, c in zip(total, chunks, strict=True)]
    agg_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for c in total:
        c.decrypt()
    dec_s = time.perf_counter() - t0
    rows = []
    for bw in bandwidths:
        for r in (r for r in he_rows if r["bandwidth_mbps"] == bw):
            transfer = 2 * (blob * 8 / (bw * 1e6) + LATENCY_MS / 1000)
            row = dict(
                r,
                method=CONVENTIONAL,
                bytes_up_per_cloud=blob,
                bytes_down_per_cloud=blob,
                bytes_per_cloud=2 * blob,
                encrypt_s=enc_s,
                aggregate_s=agg_s,
                decrypt_s=dec_s,
                transfer_s=transfer,
                wait_s=transfer,
                val_ppl=None,
            )
            row["round_s"] = row["train_s"] + enc_s + agg_s + dec_s + transfer
            rows.append(row)
    return rows


def measure(
    base: RunConfig, bandwidths: Sequence[float], methods: Sequence[str], work: Path, progress: bool = True
) -> list[dict[str, Any]]:
    """Runs every (method, bandwidth) pair and returns one row per round (see :data:`COLUMNS`).

    Raises
    ------
    ValueError
        With drift correction (its conventional-FL byte counts assume model-sized updates).
    """
    if base.scaffold:
        raise ValueError("the bandwidth experiment measures updates without drift correction")
    rows: list[dict[str, Any]] = []
    pairs = [(m, bw) for m in methods for bw in bandwidths]
    n_values = 0
    # One discarded round first: the first training in a process pays one-time
    # start-up costs that would otherwise land on the first row.
    FederatedRun(replace(base, method="fedavg", links=["1000:1000:1"]), work / "warm-up").run_round(0)
    shutil.rmtree(work / "warm-up", ignore_errors=True)
    for method, bw in tqdm(pairs, desc="bandwidth runs", disable=not progress):
        link = f"{bw:g}:{bw:g}:{LATENCY_MS:g}"
        cfg = replace(base, method=method, links=[link], **METHOD_OPTIONS.get(method, {}))
        run_dir = work / f"{method}-{bw:g}"
        run = FederatedRun(cfg, run_dir)
        for r in range(cfg.rounds):
            run.run_round(r)
        n_values = run.layout.total
        rows.extend(_rows_of(run, method, bw))
        shutil.rmtree(run_dir, ignore_errors=True)
    if "he" in methods:
        rows.extend(_conventional_rows([r for r in rows if r["method"] == "he"], n_values, base.clouds, bandwidths))
    return rows


def _mean_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (method, bandwidth): the mean over rounds."""
    keys: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for r in rows:
        keys.setdefault((r["method"], r["bandwidth_mbps"]), []).append(r)
    out = []
    for (method, bw), group in keys.items():
        row: dict[str, Any] = {"method": method, "bandwidth_mbps": bw}
        for col in COLUMNS[3:]:
            vals = [g[col] for g in group if g[col] is not None]
            row[col] = statistics.fmean(vals) if vals else None
        out.append(row)
    return out


def _figures(means: Sequence[dict[str, Any]], out: RunDirectory, where: str) -> None:
    methods = list(dict.fromkeys(r["method"] for r in means))
    fig, (ax_b, ax_t) = new_figure(1, 2, size=(12.0, 4.5))
    styles = ["o-", "s--", "^:", "D-.", "v-"]  # distinct, so equal-byte methods (fedavg, dp) stay visible
    for i, method in enumerate(methods):
        rs = sorted((r for r in means if r["method"] == method), key=lambda r: r["bandwidth_mbps"])
        bws = [r["bandwidth_mbps"] for r in rs]
        style = styles[i % len(styles)]
        ax_b.plot(bws, [r["bytes_per_cloud"] / 1e6 for r in rs], style, label=method, mfc="none")
        ax_t.plot(bws, [r["transfer_s"] for r in rs], style, label=method, mfc="none")
    for ax, ylabel in ((ax_b, "MB per cloud per round (up + down)"), (ax_t, "transfer seconds per round")):
        ax.set_xscale("log")
        ax.set_xlabel("link bandwidth (Mbit/s)")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
    ax_t.set_yscale("log")
    ax_b.set_yscale("log")
    ax_b.legend(fontsize=8)
    fig.suptitle(f"Communication cost vs bandwidth (Figure 2), {LATENCY_MS:g} ms links - {where}", fontsize=9)
    fig.tight_layout()
    out.write_figure(f"{NAME}-communication.png", fig)

    bandwidths = sorted({r["bandwidth_mbps"] for r in means})
    fig, axes = new_figure(1, len(bandwidths), size=(3.2 * len(bandwidths), 4.8))
    axes = np.atleast_1d(axes)
    for ax, bw in zip(axes, bandwidths, strict=True):
        rs = [
            next(r for r in means if r["method"] == m and r["bandwidth_mbps"] == bw)
            for m in methods
            if any(r["method"] == m and r["bandwidth_mbps"] == bw for r in means)
        ]
        bottom = np.zeros(len(rs))
        for key, label in STAGES:
            vals = np.array([r[key] or 0.0 for r in rs])
            ax.bar(range(len(rs)), vals, bottom=bottom, label=label)
            bottom += vals
        ax.set_xticks(range(len(rs)), [r["method"].split(" ")[0] for r in rs], rotation=30, fontsize=8)
        ax.set_title(f"{bw:g} Mbit/s", fontsize=9)
        ax.set_yscale("linear")
    axes[0].set_ylabel("simulated seconds per round")
    axes[-1].legend(fontsize=7)
    fig.suptitle(f"Computation cost vs bandwidth (Figure 3): round time by stage - {where}", fontsize=9)
    fig.tight_layout()
    out.write_figure(f"{NAME}-computation.png", fig)


def _ratio_sentence(means: Sequence[dict[str, Any]]) -> str:
    at = {r["method"]: r for r in means if r["bandwidth_mbps"] == 100.0}
    if "xcloud" not in at or "fedavg" not in at:
        return ""
    x, f = at["xcloud"], at["fedavg"]
    return (
        f"At 100 Mbit/s the xcloud method moves {x['bytes_per_cloud'] / 1e6:.2f} MB per cloud and round against "
        f"plain fedavg's {f['bytes_per_cloud'] / 1e6:.2f} MB ({x['bytes_per_cloud'] / f['bytes_per_cloud']:.2f}x), "
        f"in {x['transfer_s']:.3f} s of transfers against {f['transfer_s']:.3f} s."
    )


def run(args: argparse.Namespace) -> Path:
    """Runs the experiment and writes its outputs; returns the run directory.

    Raises
    ------
    ValueError
        For bad options.
    """
    base, bandwidths, methods = _config(args)
    out = RunDirectory.create(args.out, NAME)
    progress = not getattr(args, "quiet", False)
    started = time.perf_counter()
    share = CpuShare()
    rows = measure(base, bandwidths, methods, out.path / "work", progress=progress)
    other = share.other_cores()
    shutil.rmtree(out.path / "work", ignore_errors=True)
    wall = time.perf_counter() - started
    means = _mean_rows(rows)
    out.write_csv(f"{NAME}.csv", rows, COLUMNS)
    out.write_record(
        f"{NAME}.json",
        base.to_dict(),
        bandwidths=bandwidths,
        methods=methods,
        wall_s=wall,
        latency_ms=LATENCY_MS,
        method_options=METHOD_OPTIONS,
        other_cpu_cores=other,
    )
    machine = machine_info()
    where = machine_label(machine)
    _figures(means, out, where)
    mb = {
        "bytes_per_cloud": lambda v: f"{v / 1e6:.3f}",
        "bytes_up_per_cloud": lambda v: f"{v / 1e6:.3f}",
        "bytes_down_per_cloud": lambda v: f"{v / 1e6:.3f}",
    }
    secs = {
        k: (lambda v: f"{v:.3f}")
        for k in ("transfer_s", "round_s", "train_s", "encrypt_s", "aggregate_s", "decrypt_s", "wait_s")
    }
    table = markdown_table(
        means,
        {
            "method": "method",
            "bandwidth_mbps": "Mbit/s",
            "bytes_up_per_cloud": "MB up",
            "bytes_down_per_cloud": "MB down",
            "transfer_s": "transfer s",
            "round_s": "round s",
            "train_s": "training s",
            "encrypt_s": "encryption s",
            "aggregate_s": "aggregation s",
            "decrypt_s": "decryption s",
            "wait_s": "waiting s",
        },
        {**mb, **secs, "bandwidth_mbps": lambda v: f"{v:g}"},
    )
    conventional = any(r["method"] == CONVENTIONAL for r in rows)
    body = (
        f"{base.clouds} clouds, {base.rounds} round(s) of {base.local_steps} local steps per run, every link "
        f"BW:BW:{LATENCY_MS:g} ms (no jitter or loss), the default model unless --short; means over rounds, per "
        f"cloud. Simulated seconds: measured compute on {where} plus emulated transfers; other processes used "
        f"{other or 0.0:.2f} cores on average during the run"
        f"{', which inflates and scatters the compute stages' if (other or 0.0) > 0.25 else ''}. "
        f"{_ratio_sentence(means)}"
        f"{'' if conventional else ' TenSEAL is not installed, so the conventional-HE row is absent.'}\n\n"
        f"{table}\n![Figure 2]({NAME}-communication.png)\n\n![Figure 3]({NAME}-computation.png)\n\n"
        f"Raw rows: `{NAME}.csv`. Wall time of the experiment: {wall:.0f} s.\n"
    )
    report = out.append_markdown("Cost against bandwidth: `xcloud experiment bandwidth` (Figures 2 and 3)", body)
    if progress:
        print(table, end="")
        print(f"run directory: {out.path} (report: {report})", file=sys.stderr)
    return out.path
